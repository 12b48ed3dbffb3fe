"""The contract of a source: read one folder's secrets; write them back for imports."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from reconciler.model import SecretValue, SourceSecret


class Source(Protocol):
    writable: bool

    def read(self, environment: str, secret_path: str) -> list[SourceSecret]: ...

    def write(self, environment: str, secret_path: str, updates: Mapping[str, SecretValue]) -> None:
        """Create or overwrite these keys in one folder, all or nothing."""
        ...
