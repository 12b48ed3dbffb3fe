"""Plain data shared by every layer: secret values, folders, observed and desired entries,
connections (what a plan is made of lives in :mod:`reconciler.changes`).

Everything here is a frozen value. Secret values travel only inside :class:`SecretValue`,
whose ``repr``/``str`` never reveal the plaintext, so an accidental f-string, log call or
exception message cannot leak one.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

REDACTED: Final = "<redacted>"

#: Ownership markers written wherever the destination has tags or metadata.
OWNER_TAG: Final = "managed-by"
OWNER_VALUE: Final = "reconciler"
SYNC_TAG: Final = "reconciler-sync"


class SecretValue:
    """A secret's plaintext. Only :meth:`reveal` gives it out; ``repr``/``str`` are redacted."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("SecretValue holds text")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def is_empty(self) -> bool:
        return self._value == ""

    def size(self) -> int:
        """Size in UTF-8 bytes, which is what destinations limit."""
        return len(self._value.encode("utf-8"))

    def __repr__(self) -> str:
        return f"SecretValue({REDACTED})"

    def __str__(self) -> str:
        return REDACTED

    def __format__(self, spec: str) -> str:
        return REDACTED

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretValue):
            return NotImplemented
        import hmac  # here: hashlib's OpenSSL binding is slow to load, and `validate` compares none

        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> str | tuple[object, ...]:  # never pickle a value by accident
        raise TypeError("SecretValue cannot be pickled")


class Fingerprinter:
    """Keyed fingerprints (HMAC-SHA256) of values: comparable, stored, never reversible."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("fingerprint key too short")
        self._key = key

    def __call__(self, value: SecretValue) -> str:
        import hashlib
        import hmac

        return hmac.new(self._key, value.reveal().encode("utf-8"), hashlib.sha256).hexdigest()[:32]

    def __repr__(self) -> str:
        return "Fingerprinter(<key>)"


def frozen_map(data: Mapping[str, str] | None = None) -> Mapping[str, str]:
    return MappingProxyType(dict(data or {}))


@dataclass(frozen=True)
class Folder:
    """Where a sync reads from: one environment and secret path (of one KMS project)."""

    environment: str
    secret_path: str
    project_id: str | None = None
    recursive: bool = False


@dataclass(frozen=True)
class SourceSecret:
    """One secret read from a source (Hanzo KMS folder or local file)."""

    key: str
    value: SecretValue
    comment: str = ""
    metadata: Mapping[str, str] = field(default_factory=frozen_map)


class Lifecycle(enum.Enum):
    ACTIVE = "active"
    #: soft-deleted / scheduled for deletion: the name is reserved and can be restored
    PENDING_DELETION = "pending-deletion"
    #: exists but must not be touched (Azure disabled secret, OCI transitional states)
    DISABLED = "disabled"


@dataclass(frozen=True)
class ObservedEntry:
    """One destination key as listed.

    ``version`` is the destination's cheap change marker (AWS current version id, Key Vault
    ``attributes.updated``, ...). ``fingerprint`` is set when the value is known: either read
    now, or taken from state because ``version`` equals the version recorded after our last
    write. ``properties`` are the destination-managed attributes (tags as ``tag:<k>``, KMS
    key as ``kms``), already normalised by the destination module.
    """

    key: str
    version: str | None = None
    fingerprint: str | None = None
    lifecycle: Lifecycle = Lifecycle.ACTIVE
    owner: str | None = None  # value of the reconciler-sync marker, if any
    properties: Mapping[str, str] = field(default_factory=frozen_map)


@dataclass(frozen=True)
class DesiredEntry:
    """What one destination key should hold after apply."""

    key: str
    value: SecretValue
    fingerprint: str
    properties: Mapping[str, str] = field(default_factory=frozen_map)
    #: source keys this entry was rendered from (several for many-to-one)
    source_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class InventoryEntry:
    """What state remembers of a key this sync wrote."""

    key: str
    fingerprint: str | None
    version: str | None
    properties: Mapping[str, str] = field(default_factory=frozen_map)


@dataclass(frozen=True)
class ConnectionInfo:
    """A Connection with its credential references resolved (secret fields as SecretValue):
    what a source or a destination session is opened with (engine/connect.py builds it)."""

    name: str
    app: str
    settings: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    method: str | None = None
    credentials: Mapping[str, str | SecretValue] = field(default_factory=lambda: MappingProxyType({}))
    #: the local file a file-backed connection reads (a file source's secrets file)
    path: Path | None = None

    def secret(self, name: str) -> str | None:
        v = self.credentials.get(name)
        if v is None:
            return None
        return v.reveal() if isinstance(v, SecretValue) else v
