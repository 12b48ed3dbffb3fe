"""The contract of a source: read one folder's secrets; write them back for imports; say
cheaply whether a folder changed (the daemon's poll)."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable, Mapping
from typing import Protocol

from reconciler.model import Folder, SecretValue, SourceSecret

__all__ = ["Folder", "Source", "content_token"]

#: keys content tokens for this process only: a token is never a hash anyone could brute-force
#: back to a value, even if it ended up somewhere it should not
_TOKEN_KEY = os.urandom(32)


class Source(Protocol):
    writable: bool

    def read(self, folder: Folder) -> list[SourceSecret]: ...

    def write(self, folder: Folder, updates: Mapping[str, SecretValue]) -> None:
        """Create or overwrite these keys in one folder, all or nothing."""
        ...

    def change_token(self, folder: Folder) -> str:
        """An opaque token that differs whenever the folder's secrets differ (cheap to get;
        compared, never shown)."""
        ...

    def close(self) -> None: ...


def content_token(secrets: Iterable[SourceSecret]) -> str:
    """A keyed digest of keys, values, comments and metadata, independent of order."""
    mac = hmac.new(_TOKEN_KEY, digestmod=hashlib.sha256)
    for s in sorted(secrets, key=lambda s: s.key):
        for part in (s.key, s.value.reveal(), s.comment, *sorted(f"{k}={v}" for k, v in s.metadata.items())):
            mac.update(part.encode("utf-8"))
            mac.update(b"\0")
        mac.update(b"\1")
    return mac.hexdigest()
