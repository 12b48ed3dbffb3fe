"""``reconciler status DIR``: every sync of the specs with a state a person reads at a glance.

It joins three things nobody else joins: the specs (what should exist, also never-run and
invalid syncs), the state store (the seeds' status fields of the last runs) and, while a
daemon runs, its ``daemon.json`` (next run, next retry, last run even when it changed
nothing). It never contacts a source or a destination: ``plan`` is for the live truth, so
"out of sync" here means only what the last run reported (drift left in place under
``drift: report``) or that the sync now points at another target than the one it last ran on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from reconciler.engine.outcome import DRIFT_NOTE
from reconciler.engine.reconcile import Reconciler
from reconciler.errors import ReconcilerError
from reconciler.printable import one_line
from reconciler.specs.model import SecretSync, SpecSet
from reconciler.state.backend import StateBackend

STATES: Final = ("synced", "out of sync", "failed", "never run", "suspended", "disabled", "invalid")


def _state(sync: SecretSync | None, invalid: bool, status: Mapping[str, Any], live: Mapping[str, Any],
           moved: bool) -> str:
    if invalid:
        return "invalid"
    assert sync is not None
    if not sync.is_enabled:
        return "disabled"
    if sync.reconcile.suspend:
        return "suspended"
    if status["syncStatus"] == "failed" or live.get("lastResult") == "failure":
        return "failed"
    if status["syncStatus"] is None and not live.get("lastResult"):
        return "never run"
    if moved or DRIFT_NOTE in (status["lastSyncMessage"] or ""):
        return "out of sync"
    return "synced"


def _moved(rec: Reconciler, sync: SecretSync, recorded: str | None) -> bool:
    try:
        return recorded is not None and rec.target_id(sync) != recorded
    except ReconcilerError:
        return False


def rows(specs: SpecSet, state: StateBackend, live: Mapping[str, Any] | None,
         names: Sequence[str] = ()) -> list[dict[str, Any]]:
    """One row per sync of the specs (only ``names`` when given), sorted by name: ``name``,
    ``state``, the seeds' status fields, what the daemon plans next, and for an invalid sync
    its diagnostics."""
    daemon = (live or {}).get("syncs") or {}
    rec = Reconciler(specs, state)
    out = []
    chosen = sorted(names or {*specs.syncs, *specs.invalid_syncs})
    held = state.holders(chosen)  # replicas sharing a PostgreSQL state: who runs each sync
    for name in chosen:
        sync = specs.syncs.get(name)
        invalid = name in specs.invalid_syncs
        seeds = state.status(name).as_dict()
        recorded = seeds.pop("target")
        seeds.pop("sync")
        planned = daemon.get(name) or {}
        row: dict[str, Any] = {
            "name": name,
            "destination": sync.destination if sync else seeds["destination"],
            "state": _state(sync, invalid, seeds, planned, sync is not None and _moved(rec, sync, recorded)),
            **{k: v for k, v in seeds.items() if k != "destination"},
            "manual": bool(sync and not sync.is_auto_sync_enabled),
            "lastRunAt": planned.get("lastRunAt"),
            "nextRunAt": planned.get("nextRunAt"),
            "nextAttemptAt": planned.get("nextAttemptAt"),
            "daemon": live is not None,
        }
        if held:
            row["heldBy"] = held.get(name)
        if invalid:
            row["diagnostics"] = [str(d) for d in specs.invalid_syncs[name]]
            row["keptByDaemon"] = planned.get("state") == "invalid-kept"
        out.append(row)
    return out


def render_text(table: Sequence[Mapping[str, Any]]) -> str:
    """One line per sync (name, state, destination, last synced), details indented below."""
    lines = []
    for r in table:
        head = f"{r['name']}: {r['state']} ({r['destination'] or 'unknown destination'})"
        if r["lastSyncedAt"]:
            head += f", last synced {r['lastSyncedAt']}"
        lines.append(head)
        if r.get("diagnostics"):
            kept = ("the running daemon keeps its last valid version" if r.get("keptByDaemon")
                    else "not run until fixed")
            lines.append(f"  invalid spec ({kept}):")
            lines += [f"    {d}" for d in r["diagnostics"]]
        if r.get("heldBy"):
            lines.append(f"  held by replica {r['heldBy']}")
        if r["manual"]:
            lines.append("  manual: runs only on `apply --sync` (isAutoSyncEnabled: false)")
        if r["lastSyncMessage"]:
            lines.append(f"  message: {r['lastSyncMessage']}")
        if r["lastRunAt"]:
            lines.append(f"  last run: {r['lastRunAt']}")
        if r["nextRunAt"]:
            lines.append(f"  next run: {r['nextRunAt']}")
        if r["nextAttemptAt"]:
            lines.append(f"  next retry: {r['nextAttemptAt']} (the daemon retries with backoff)")
        for job, at in (("import", "lastImportedAt"), ("remove", "lastRemovedAt")):
            if r[f"{job}Status"]:
                lines.append(f"  {job}: {r[f'{job}Status']}" + (f" at {r[at]}" if r[at] else ""))
                message = r[f"last{job.capitalize()}Message"]
                if message:
                    lines.append(f"    message: {message}")
    if not table:
        return "No syncs in the specs.\n"
    return "\n".join(one_line(line) for line in lines) + "\n"  # a message may quote a spec's path
