"""The inventory after an apply: a pure function of (inventory, plan, results).

The engine records each result as it lands (an interrupted apply never loses what it
wrote) by applying :func:`after_result`; the tests' model of a destination uses the same
functions, so the two can never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from reconciler.changes import Action, ChangeResult, Plan
from reconciler.model import InventoryEntry

Update = tuple[dict[str, InventoryEntry], list[str]]  # (entries to put, keys to drop)


def after_result(inventory: Mapping[str, InventoryEntry], result: ChangeResult) -> Update:
    """What one landed (or failed) change does to the inventory.

    - A DELETE that landed forgets the key; RESTORE and IMPORT record nothing (a restore
      writes no value: what state knew of the key still holds).
    - A CREATE/UPDATE records the entry the planner attached (``Change.record``), with the
      version the destination reported when the recorded value is the one just written.
    - A failed change whose value landed anyway (a later step such as tagging failed)
      records the value with the old properties, so the next plan retries the properties.
    """
    c = result.change
    if not result.ok:
        if result.version is not None and c.value_changed and c.fingerprint is not None:
            old = inventory.get(c.key)
            props = old.properties if old else {}
            return {c.key: InventoryEntry(c.key, c.fingerprint, result.version, props)}, []
        return {}, []
    if c.action is Action.DELETE:
        return {}, [c.key]
    rec = c.record
    if rec is None or c.action not in (Action.CREATE, Action.UPDATE):
        return {}, []
    version = rec.version
    if rec.fingerprint is not None and rec.fingerprint == c.fingerprint:
        version = result.version or rec.version
    return {c.key: InventoryEntry(c.key, rec.fingerprint, version, rec.properties)}, []


def after_plan(plan: Plan) -> Update:
    """The bookkeeping an apply records besides its changes (adopted and forgotten keys)."""
    return {e.key: e for e in plan.adopt}, list(plan.forget)


def apply_updates(inventory: Mapping[str, InventoryEntry], updates: Iterable[Update]) -> dict[str, InventoryEntry]:
    out = dict(inventory)
    for put, drop in updates:
        out.update(put)
        for key in drop:
            out.pop(key, None)
    return out


def after_apply(
    inventory: Mapping[str, InventoryEntry], plan: Plan, results: Iterable[ChangeResult]
) -> dict[str, InventoryEntry]:
    """The whole inventory after an apply of ``plan`` that produced ``results``."""
    out = dict(inventory)
    for r in results:
        out = apply_updates(out, [after_result(inventory, r)])
    return apply_updates(out, [after_plan(plan)])
