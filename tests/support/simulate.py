"""A model destination for planner property tests.

``apply_plan`` executes a plan the way a strict destination would (AWS semantics: no
write to a key scheduled for deletion, no create over an existing name) and records the
inventory with the engine's own bookkeeping. ``observe`` is the engine's listing step: it trusts the
inventory's fingerprint when the version marker has not moved.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import NamedTuple, TypeVar

from reconciler.changes import Action, Change, ChangeResult, Plan
from reconciler.model import (
    DesiredEntry,
    Fingerprinter,
    InventoryEntry,
    Lifecycle,
    ObservedEntry,
    SecretValue,
    SourceSecret,
)
from reconciler.planning.inventory import after_apply
from reconciler.planning.vouch import vouch_all

_versions = itertools.count(1)
_E = TypeVar("_E", DesiredEntry, ObservedEntry, InventoryEntry, SourceSecret)


class SimulationError(AssertionError):
    """The plan asked the destination for something it would refuse."""


class Applied(NamedTuple):
    observed: dict[str, ObservedEntry]
    inventory: dict[str, InventoryEntry]
    writes: int


def _props(current: Mapping[str, str], change: Change) -> Mapping[str, str]:
    merged = {**current, **change.set_properties}
    for name in change.unset_properties:
        merged.pop(name, None)
    return MappingProxyType(merged)


def observe(
    observed: Mapping[str, ObservedEntry], inventory: Mapping[str, InventoryEntry]
) -> dict[str, ObservedEntry]:
    """What the engine hands the planner: unknown values vouched for by an unmoved version."""
    return vouch_all(observed, inventory)


def _execute(
    dest: dict[str, ObservedEntry],
    c: Change,
    fingerprint: Callable[[SecretValue], str],
    sync: str,
    soft_delete: bool,
) -> str | None:
    """Run one change against ``dest``; returns the version marker afterwards."""
    o = dest.get(c.key)
    if c.action is Action.CREATE:
        if o is not None:
            raise SimulationError(f"create over existing {c.key!r}")
        if c.value is None:
            raise SimulationError(f"create without a value {c.key!r}")
        version = f"sim-{next(_versions)}"
        props = MappingProxyType(dict(c.set_properties))
        dest[c.key] = ObservedEntry(c.key, version, fingerprint(c.value), Lifecycle.ACTIVE, sync, props)
        return version
    if o is None:
        raise SimulationError(f"{c.action.value} of missing {c.key!r}")
    if c.action is Action.RESTORE:
        if o.lifecycle is not Lifecycle.PENDING_DELETION:
            raise SimulationError(f"restore of {o.lifecycle.value} {c.key!r}")
        dest[c.key] = dataclasses.replace(o, lifecycle=Lifecycle.ACTIVE)
        return o.version
    if o.lifecycle is not Lifecycle.ACTIVE:
        raise SimulationError(f"{c.action.value} of {o.lifecycle.value} {c.key!r}")
    if c.action is Action.DELETE:
        if c.value is not None:
            raise SimulationError(f"delete carries a value {c.key!r}")
        if soft_delete:
            dest[c.key] = dataclasses.replace(o, lifecycle=Lifecycle.PENDING_DELETION, fingerprint=None)
        else:
            del dest[c.key]
        return None
    if c.action is Action.UPDATE:
        new = dataclasses.replace(o, properties=_props(o.properties, c), owner=sync)
        unchanged = c.compare_first and c.value is not None and o.fingerprint == fingerprint(c.value)
        if c.value_changed and not unchanged:
            if c.value is None:
                raise SimulationError(f"update without a value {c.key!r}")
            new = dataclasses.replace(new, fingerprint=fingerprint(c.value), version=f"sim-{next(_versions)}")
        dest[c.key] = new
        return new.version
    raise SimulationError(f"a destination cannot {c.action.value} ({c.key!r})")


def apply_plan(
    observed: Mapping[str, ObservedEntry],
    plan: Plan,
    fingerprint: Callable[[SecretValue], str],
    *,
    inventory: Mapping[str, InventoryEntry] | None = None,
    soft_delete: bool = False,
) -> Applied:
    """Execute ``plan.changes`` (never ``plan.drift``); the inventory afterwards is the
    engine's own pure bookkeeping (:func:`reconciler.planning.inventory.after_apply`)."""
    dest = dict(observed)
    results: list[ChangeResult] = []
    writes = 0
    for c in plan.changes:
        version = _execute(dest, c, fingerprint, plan.sync, soft_delete)
        writes += 1
        results.append(ChangeResult(c, True, version=version))
    return Applied(dest, after_apply(inventory or {}, plan, results), writes)


# -- builders for planner tests ------------------------------------------------------------------

#: the fingerprinter every planner test uses (keyed, like the real one)
FINGERPRINT = Fingerprinter(b"planner-tests-fingerprint-key")


def fp(value: str) -> str:
    return FINGERPRINT(SecretValue(value))


def want(key: str, value: str = "v1", props: Mapping[str, str] | None = None) -> DesiredEntry:
    return DesiredEntry(key, SecretValue(value), fp(value), MappingProxyType(dict(props or {})))


def seen(
    key: str,
    value: str | None = "v1",
    *,
    version: str | None = "1",
    lifecycle: Lifecycle = Lifecycle.ACTIVE,
    owner: str | None = "s",
    props: Mapping[str, str] | None = None,
) -> ObservedEntry:
    """An observed entry; ``value=None`` = value unknown."""
    fingerprint = None if value is None else fp(value)
    return ObservedEntry(key, version, fingerprint, lifecycle, owner, MappingProxyType(dict(props or {})))


def recorded(
    key: str, value: str | None = "v1", *, version: str | None = "1", props: Mapping[str, str] | None = None
) -> InventoryEntry:
    fingerprint = None if value is None else fp(value)
    return InventoryEntry(key, fingerprint, version, MappingProxyType(dict(props or {})))


def by_key(*entries: _E) -> dict[str, _E]:
    return {e.key: e for e in entries}
