"""A plan as canonical, value-free data, and its digest: what a saved plan stores and what a
re-plan is compared with.

Everything ``apply`` acts on is here (actions, keys, fingerprints, property changes, the
inventory records) plus what the plan rests on (:class:`~reconciler.model.PlanBasis`), so two
plans with equal digests do exactly the same thing to the same world. A ``SecretValue`` is
never read: only its fingerprint, which is an HMAC under the state's key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from reconciler.changes import Change, Plan
from reconciler.model import InventoryEntry


def _record(e: InventoryEntry | None) -> dict[str, Any] | None:
    if e is None:
        return None
    return {"key": e.key, "fingerprint": e.fingerprint, "version": e.version, "properties": dict(e.properties)}


def _change(c: Change) -> dict[str, Any]:
    return {
        "action": c.action.value,
        "key": c.key,
        "reason": c.reason,
        "fingerprint": c.fingerprint,
        "value_changed": c.value_changed,
        "set_properties": dict(c.set_properties),
        "unset_properties": list(c.unset_properties),
        "unowned": c.unowned,
        "drift": c.drift,
        "compare_first": c.compare_first,
        "record": _record(c.record),
    }


def canonical(plan: Plan) -> dict[str, Any]:
    """The plan as JSON-ready data, without a value."""
    return {
        "name": plan.sync,
        "destination": plan.destination,
        "target": plan.target,
        "changes": [_change(c) for c in plan.changes],
        "drift": [_change(c) for c in plan.drift],
        "issues": [{"severity": i.severity, "key": i.key, "message": i.message} for i in plan.issues],
        "unchanged": plan.unchanged,
        "adopt": [_record(e) for e in plan.adopt],
        "forget": list(plan.forget),
        "basis": {
            "observed": [list(t) for t in plan.basis.observed],
            "desired": [list(t) for t in plan.basis.desired],
        },
    }


def dumps(data: Mapping[str, Any] | list[Any]) -> str:
    """The one serialisation digests are taken over (sorted keys, no whitespace)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(data: Mapping[str, Any]) -> str:
    """SHA-256 of canonical data (a plan's :func:`canonical`, or a spec digest's input)."""
    return hashlib.sha256(dumps(data).encode("utf-8")).hexdigest()
