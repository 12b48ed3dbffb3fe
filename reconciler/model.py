"""Plain data shared by every layer: secret values, observed and desired entries, plans.

Everything here is a frozen value. Secret values travel only inside :class:`SecretValue`,
whose ``repr``/``str`` never reveal the plaintext, so an accidental f-string, log call or
exception message cannot leak one.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
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


class Action(enum.Enum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    RESTORE = "restore"
    #: write a destination value back into the source (initial import / `reconciler import`)
    IMPORT = "import"

    @property
    def symbol(self) -> str:
        return {"create": "+", "update": "~", "delete": "-", "restore": "^", "import": "<"}[self.value]


@dataclass(frozen=True)
class Change:
    """One step of a plan. ``apply`` executes it; it never re-decides."""

    action: Action
    key: str
    reason: str = ""
    #: the value to write: destination value for CREATE/UPDATE, source value for IMPORT
    value: SecretValue | None = None
    fingerprint: str | None = None
    #: the value itself changes (UPDATE may change only properties)
    value_changed: bool = True
    #: properties to set, and property names to remove
    set_properties: Mapping[str, str] = field(default_factory=frozen_map)
    unset_properties: tuple[str, ...] = ()
    #: the key is in scope but was not created by reconciler (adoption / foreign key)
    unowned: bool = False
    #: the change corrects an out-of-band edit at the destination
    drift: bool = False
    #: write only if the destination does not already hold the value: it could not be known
    #: when planned (a secret being restored); the write is then skipped, not re-decided
    compare_first: bool = False
    #: what the inventory says of the key once this change lands (the version comes from the
    #: result when the destination reports one); None: nothing to record
    record: InventoryEntry | None = None
    #: every property the key carries once this change lands, ours and others' (a destination
    #: whose write replaces the whole set sends this; None for changes that write none)
    properties_after: Mapping[str, str] | None = None
    #: the version marker the plan was made against (None: the key was not there). A session
    #: may apply without having listed — several syncs share one listing — so what it needs
    #: from the listing travels in the change.
    base_version: str | None = None


@dataclass(frozen=True)
class PlanIssue:
    """A problem found while planning: an error blocks that key (or the deletes), a warning not."""

    message: str
    key: str | None = None
    severity: str = "error"  # error | warning


@dataclass(frozen=True)
class PlanBasis:
    """What a plan was computed from, without a value: the version marker and lifecycle of
    every in-scope destination key listed, and the fingerprint of every desired entry. Two
    plans with equal changes but different bases were made against different worlds, so a
    saved plan is stale when a re-plan's basis differs."""

    #: (key, version marker or "", lifecycle)
    observed: tuple[tuple[str, str, str], ...] = ()
    #: (key, fingerprint)
    desired: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Plan:
    sync: str
    destination: str
    changes: tuple[Change, ...] = ()
    #: drift seen but not corrected (drift: report)
    drift: tuple[Change, ...] = ()
    issues: tuple[PlanIssue, ...] = ()
    unchanged: int = 0
    #: inventory bookkeeping an apply records besides its changes: in-sync keys adopted
    #: (so the next run trusts their version) and keys gone from source and listing alike
    adopt: tuple[InventoryEntry, ...] = ()
    forget: tuple[str, ...] = ()
    #: the destination's place for people (the descriptor's ``describe``); "" when unknown
    target: str = ""
    basis: PlanBasis = PlanBasis()

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    @property
    def errors(self) -> tuple[PlanIssue, ...]:
        return tuple(i for i in self.issues if i.severity == "error")

    def count(self, action: Action) -> int:
        return sum(1 for c in self.changes if c.action is action)


@dataclass(frozen=True)
class ChangeResult:
    change: Change
    ok: bool
    #: destination version marker after the write (None when unknown / deleted)
    version: str | None = None
    error: str | None = None
    #: properties as they stand after the write (for the inventory)
    properties: Mapping[str, str] = field(default_factory=frozen_map)
    #: the destination asked us to wait this long before trying again (throttling)
    retry_after: float | None = None


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
