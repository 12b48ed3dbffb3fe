"""The planner: desired + observed + inventory -> Plan. Pure functions, no I/O.

``apply`` executes ``Plan.changes`` and never re-decides (Terraform ``internal/plans``), so
every judgement lives here, once. Decisions on edge cases are listed in each docstring.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

from reconciler.changes import Action, Change, Plan, PlanIssue
from reconciler.model import DesiredEntry, InventoryEntry, Lifecycle, ObservedEntry
from reconciler.planning.diff import diff_present, split_update
from reconciler.planning.guards import guard_deletes
from reconciler.planning.importing import plan_import
from reconciler.planning.options import PlanOptions, in_scope

__all__ = ["PlanOptions", "in_scope", "plan", "plan_import", "plan_remove"]

_ORDER = {Action.IMPORT: 0, Action.RESTORE: 1, Action.CREATE: 2, Action.UPDATE: 3, Action.DELETE: 4}


def _sorted(changes: list[Change]) -> tuple[Change, ...]:
    """By key; for one key RESTORE before UPDATE (the key must exist to be written)."""
    return tuple(sorted(changes, key=lambda c: (c.key, _ORDER[c.action])))


def _after_restore(change: Change, o: ObservedEntry) -> Change:
    """The write behind a RESTORE of a value nobody could read: compare first, so undoing a
    delete never makes a new version of an unchanged value."""
    if change.value_changed and o.fingerprint is None:
        return dataclasses.replace(change, compare_first=True, reason=change.reason + " (compared after restore)")
    return change


def _record(c: Change, d: DesiredEntry, o: ObservedEntry | None, inv: InventoryEntry | None) -> Change:
    """What the inventory will say of the key once ``c`` lands.

    A value write records the desired fingerprint. A properties-only update vouches for the
    version only when the value is known to be the desired one; otherwise it keeps what we
    knew (so withheld value drift stays visible), or records nothing known.
    """
    if c.value_changed or (o is not None and o.fingerprint == d.fingerprint):
        rec = InventoryEntry(c.key, d.fingerprint, None if c.value_changed or o is None else o.version,
                             d.properties)
    elif inv is not None:
        rec = InventoryEntry(c.key, inv.fingerprint, inv.version, d.properties)
    else:
        rec = InventoryEntry(c.key, None, None, d.properties)
    return dataclasses.replace(c, record=rec)


def _unowned(key: str, o: ObservedEntry, inventory: Mapping[str, InventoryEntry], sync: str) -> bool:
    """A label for the reviewer: in scope, yet neither in our inventory nor marked as ours."""
    return key not in inventory and o.owner != sync


class _Builder:
    """Accumulates one plan; exists only to keep :func:`plan` readable."""

    def __init__(self, inventory: Mapping[str, InventoryEntry], options: PlanOptions) -> None:
        self.inventory = inventory
        self.options = options
        self.changes: list[Change] = []
        self.drift: list[Change] = []
        self.issues: list[PlanIssue] = []
        self.unchanged = 0

    def route(self, change: Change | None, *, withheld: bool) -> None:
        if change is not None:
            (self.drift if withheld else self.changes).append(change)

    def create(self, key: str, d: DesiredEntry) -> None:
        """Absent key: CREATE. If the inventory remembers it, it was deleted out of band; that
        is drift-only (reportable) when the source still matches what we wrote."""
        inv = self.inventory.get(key)
        drift = inv is not None
        change = Change(
            Action.CREATE,
            key,
            reason="deleted outside reconciler" if drift else "new",
            value=d.value,
            fingerprint=d.fingerprint,
            set_properties=MappingProxyType(dict(d.properties)),
            drift=drift,
        )
        drift_only = (
            inv is not None
            and inv.fingerprint == d.fingerprint
            and all(inv.properties.get(p) == v for p, v in d.properties.items())
        )
        self.route(change, withheld=drift_only and self.options.report_drift)

    def active(self, key: str, d: DesiredEntry, o: ObservedEntry) -> None:
        inv = self.inventory.get(key)
        diff = diff_present(d, o, inv, self.options.unreadable_drift)
        if not diff:
            self.unchanged += 1
            return
        unowned = _unowned(key, o, self.inventory, self.options.sync)
        applied, withheld = split_update(key, d, diff, report=self.options.report_drift, unowned=unowned,
                                         labels=self.options.property_names)
        self.route(applied, withheld=False)
        self.route(withheld, withheld=True)

    def pending(self, key: str, d: DesiredEntry, o: ObservedEntry) -> None:
        """Scheduled for deletion but desired: RESTORE, then UPDATE what still differs.

        A key in our inventory was deleted out of band: the restore is drift, and with
        ``drift: report`` and nothing from the source to write, the whole repair is reported."""
        inv = self.inventory.get(key)
        unowned = _unowned(key, o, self.inventory, self.options.sync)
        diff = diff_present(d, o, inv, self.options.unreadable_drift)
        restore = Change(
            Action.RESTORE,
            key,
            reason="deleted outside reconciler; scheduled for deletion" if inv else "scheduled for deletion",
            unowned=unowned,
            drift=inv is not None,
        )
        report, labels = self.options.report_drift, self.options.property_names
        # an unknown value (pending secrets are rarely readable) is not a source change
        source_moved = inv is None or inv.fingerprint != d.fingerprint or bool(diff.set_source or diff.unset)
        if not source_moved:
            # the whole repair undoes an out-of-band delete, even an "unknown value" write
            whole, _ = split_update(key, d, diff, report=False, unowned=unowned, labels=labels)
            self.route(restore, withheld=report)
            self.route(whole and _after_restore(dataclasses.replace(whole, drift=True), o), withheld=report)
            return
        self.route(restore, withheld=False)
        applied, withheld = split_update(key, d, diff, report=report, unowned=unowned, labels=labels)
        self.route(applied and _after_restore(applied, o), withheld=False)
        self.route(withheld, withheld=True)

    def warn(self, key: str, message: str) -> None:
        self.issues.append(PlanIssue(message, key=key, severity="warning"))

    def error(self, key: str | None, message: str) -> None:
        self.issues.append(PlanIssue(message, key=key, severity="error"))


def plan(
    desired: Mapping[str, DesiredEntry],
    observed: Mapping[str, ObservedEntry],
    inventory: Mapping[str, InventoryEntry],
    options: PlanOptions,
    *,
    protected: frozenset[str] = frozenset(),
) -> Plan:
    """Decide what one sync must change at its destination.

    Decisions beyond the one-line rules:
    - Observed keys out of scope are invisible: never changed, never counted.
    - A desired key whose rendered name is out of scope is an error and is not written: we
      could never see it again to update or prune it.
    - An empty value where the destination cannot store one is treated as absent (upstream
      deletes such keys), with a warning; an oversize value is an error and its key is
      neither written nor deleted (never truncated).
    - DISABLED keys are left alone with a warning, desired or not; PENDING_DELETION keys that
      are not desired are already on their way out: nothing to do.
    - ``unchanged`` counts in-scope desired keys that are in sync; keys with only withheld
      drift, disabled keys and blocked keys are not "unchanged".
    - Deletes pass :func:`guard_deletes` as a block: all or none.
    - ``protected`` keys (their source key could not be rendered: a bad name, a tag over the
      limit) are never deleted for it: an error in one key is not a reason to remove it.
    - Every written change carries the inventory ``record`` it leaves, and the plan the
      bookkeeping of untouched keys (``adopt``/``forget``), so apply decides nothing.
    """
    b = _Builder(inventory, options)
    label = options.label
    observed_in = {k: o for k, o in observed.items() if in_scope(k, options)}
    effective: dict[str, DesiredEntry] = {}
    blocked_keys: set[str] = set(protected)
    for key in sorted(desired):
        d = desired[key]
        if not in_scope(key, options):
            b.error(key, "rendered name is outside this sync's key scope; not written")
            continue
        if d.value.is_empty() and not options.allows_empty:
            b.warn(key, f"empty value: {label} cannot store an empty value; treated as absent")
            continue
        size = d.value.size()
        if options.max_value_bytes is not None and size > options.max_value_bytes:
            b.error(
                key,
                f"value is {size} bytes; {label} allows at most {options.max_value_bytes}; "
                "not written and not deleted",
            )
            blocked_keys.add(key)
            continue
        effective[key] = d

    for key, d in effective.items():
        o = observed_in.get(key)
        if o is None:
            b.create(key, d)
        elif o.lifecycle is Lifecycle.ACTIVE:
            b.active(key, d, o)
        elif o.lifecycle is Lifecycle.PENDING_DELETION:
            b.pending(key, d, o)
        else:
            b.warn(key, "disabled at destination; left alone")

    deletes: list[Change] = []
    for key in sorted(observed_in):
        o = observed_in[key]
        if key in effective or key in blocked_keys:
            continue
        if o.lifecycle is Lifecycle.DISABLED:
            b.warn(key, "disabled at destination and not in source; left alone")
        elif o.lifecycle is Lifecycle.ACTIVE:
            reason = "empty in source" if key in desired else "not in source"
            deletes.append(
                Change(Action.DELETE, key, reason=reason, unowned=_unowned(key, o, inventory, options.sync))
            )
    written: list[Change] = []
    for c in b.changes:
        want = effective.get(c.key)
        if want is None or c.action not in (Action.CREATE, Action.UPDATE):
            written.append(c)
            continue
        o = observed_in.get(c.key)
        after = _final_properties(c, o)
        problems = options.property_problems(after)
        if problems:
            b.error(c.key, "; ".join(problems) + "; not written")
            continue
        written.append(dataclasses.replace(_record(c, want, o, inventory.get(c.key)),
                                           properties_after=MappingProxyType(dict(after))))
    blocked = {i.key for i in b.issues if i.severity == "error" and i.key} & set(effective)
    written = [c for c in written if c.key not in blocked]
    active_count = sum(1 for o in observed_in.values() if o.lifecycle is Lifecycle.ACTIVE)
    arriving = sum(1 for c in written if c.action in (Action.CREATE, Action.RESTORE))
    allowed, guard_issues = guard_deletes(
        deletes, in_scope_count=active_count, arriving=arriving, inventory_count=len(inventory), options=options
    )
    b.issues.extend(guard_issues)
    changes = _sorted([_based(c, observed_in.get(c.key)) for c in [*written, *allowed]])
    adopt, forget = _bookkeeping(effective, observed, inventory, options, {c.key for c in [*changes, *b.drift]})
    return Plan(
        sync=options.sync,
        destination=options.destination,
        changes=changes,
        drift=_sorted(b.drift),
        issues=tuple(b.issues),
        unchanged=b.unchanged,
        adopt=adopt,
        forget=forget,
    )


def _based(c: Change, o: ObservedEntry | None) -> Change:
    return dataclasses.replace(c, base_version=o.version) if o is not None and o.version is not None else c


def _final_properties(c: Change, o: ObservedEntry | None) -> Mapping[str, str]:
    """The property set a key carries after ``c`` (what the destination's limits apply to)."""
    merged = dict(o.properties) if o is not None and c.action is Action.UPDATE else {}
    for name in c.unset_properties:
        merged.pop(name, None)
    merged.update(c.set_properties)
    return merged


def _bookkeeping(
    desired: Mapping[str, DesiredEntry],
    observed: Mapping[str, ObservedEntry],
    inventory: Mapping[str, InventoryEntry],
    options: PlanOptions,
    touched: set[str],
) -> tuple[tuple[InventoryEntry, ...], tuple[str, ...]]:
    """In-sync keys nobody touches are adopted (the next run trusts their version instead of
    re-reading); inventory keys gone from source and listing alike are forgotten. Keys outside
    the scope are warned about once, in the plan that changes the schema, and left alone."""
    adopt: list[InventoryEntry] = []
    for key in sorted(desired):
        d, o = desired[key], observed.get(key)
        if key in touched or o is None or o.lifecycle is not Lifecycle.ACTIVE or not in_scope(key, options):
            continue
        if o.fingerprint != d.fingerprint or o.version is None:
            continue
        entry = InventoryEntry(key, d.fingerprint, o.version, d.properties)
        if inventory.get(key) != entry:
            adopt.append(entry)
    forget = tuple(sorted(k for k in inventory if k not in desired and k not in observed))
    return tuple(adopt), forget


def plan_remove(
    desired: Mapping[str, DesiredEntry],
    observed: Mapping[str, ObservedEntry],
    options: PlanOptions,
    inventory: Mapping[str, InventoryEntry] | None = None,
) -> Plan:
    """The seeds' "remove secrets": DELETE every in-scope ACTIVE key the source maps to.

    It is an explicit user action, so ``maxDeletes`` and ``disableSecretDeletion`` do not
    apply. Keys already scheduled for deletion are skipped; disabled ones get a warning.
    ``unowned`` is labelled only when an inventory is given (without one we cannot tell).
    """
    changes: list[Change] = []
    issues: list[PlanIssue] = []
    for key in sorted(desired):
        o = observed.get(key)
        if o is None or not in_scope(key, options):
            continue
        if o.lifecycle is Lifecycle.ACTIVE:
            unowned = inventory is not None and _unowned(key, o, inventory, options.sync)
            changes.append(Change(Action.DELETE, key, reason="remove", unowned=unowned))
        elif o.lifecycle is Lifecycle.DISABLED:
            issues.append(PlanIssue("disabled at destination; left alone", key=key, severity="warning"))
    return Plan(options.sync, options.destination, changes=tuple(changes), issues=tuple(issues))
