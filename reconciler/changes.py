"""What a plan is: its changes, their results, the issues found and the basis it was made
against — frozen values, like :mod:`reconciler.model` (apart from it: validating specs needs
none of these).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from reconciler.model import InventoryEntry, SecretValue, frozen_map


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
