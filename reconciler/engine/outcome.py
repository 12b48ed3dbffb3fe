"""What one command did to one sync, and the seeds' status fields it leaves behind."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from reconciler.changes import ChangeResult, Plan
from reconciler.destinations.contract import NOT_STARTED
from reconciler.errors import ReconcilerError
from reconciler.logging import current_run_id
from reconciler.specs.model import SecretSync
from reconciler.state.backend import StateBackend


class Refused(ReconcilerError):
    """A command declined before writing anything (a saved plan gone stale, a remove whose
    keys moved while it was being confirmed): nothing was attempted, so nothing is recorded."""


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Outcome:
    """What happened to one sync in one command."""

    sync: str
    destination: str
    plan: Plan | None = None
    error: str | None = None
    results: list[ChangeResult] = field(default_factory=list)
    #: seconds a throttling destination asked us to wait (Retry-After), when it said
    retry_after: float | None = None

    @property
    def failed(self) -> bool:
        return (
            self.error is not None
            or any(not r.ok for r in self.results)
            or (self.plan is not None and bool(self.plan.errors))
        )


#: how a status message says the run left drift in place (``reconciler status``: out of sync)
DRIFT_NOTE = "not corrected (drift: report)"

#: the seeds' status fields per job: (status, message, job id, timestamp)
STATUS_FIELDS = {
    "sync": ("syncStatus", "lastSyncMessage", "lastSyncJobId", "lastSyncedAt"),
    "import": ("importStatus", "lastImportMessage", "lastImportJobId", "lastImportedAt"),
    "remove": ("removeStatus", "lastRemoveMessage", "lastRemoveJobId", "lastRemovedAt"),
}


def failures(out: Outcome) -> list[ChangeResult]:
    """The changes that failed; not those an interrupt kept from starting (see not_started)."""
    return [r for r in out.results if not r.ok and r.error != NOT_STARTED]


def not_started(out: Outcome) -> int:
    """How many changes an interrupted apply did not start: the user's stop, not a failure
    of theirs, so they are counted once instead of reported key by key."""
    return sum(1 for r in out.results if not r.ok and r.error == NOT_STARTED)


def message(out: Outcome) -> str | None:
    """The status message: our own error texts (never a response body), capped like upstream."""
    if out.error:
        return out.error
    parts = [f"{r.change.key}: {r.error}" for r in failures(out)]
    stopped = not_started(out)
    if stopped:  # one phrase for the changes an interrupt held back, not one per key
        parts.append(f"{stopped} {'change' if stopped == 1 else 'changes'} {NOT_STARTED}")
    if out.plan is not None:
        parts += [f"{i.key + ': ' if i.key else ''}{i.message}" for i in out.plan.errors]
        drifted = len({c.key for c in out.plan.drift})
        if drifted:  # a success that leaves the destination out of sync says so (``status``)
            parts.append(f"{drifted} drifted key(s) {DRIFT_NOTE}")
    return "; ".join(parts)[:1024] if parts else None


def record_status(
    state: StateBackend, sync: SecretSync, target: str | None, out: Outcome, job: str, started: float, log: Any,
    run_id: str | None = None,
) -> None:
    """Write status only when something happened or changed: a no-op run writes nothing. The
    job id stored is the run id the run's log lines carry, so one finds the other."""
    status_f, message_f, job_f, at_f = STATUS_FIELDS[job]
    text = message(out)
    new_status = "failed" if out.failed else "succeeded"
    previous = state.status(sync.name)
    changed = (
        bool(out.results)
        or new_status != getattr(previous, status_f)
        or text != getattr(previous, message_f)
        or previous.target != target
        or (new_status == "succeeded" and getattr(previous, at_f) is None)
    )
    if changed:
        fields: dict[str, str | None] = {
            status_f: new_status,
            message_f: text,
            job_f: run_id or current_run_id(),
            "destination": sync.destination,
            "target": target,
        }
        if new_status == "succeeded":
            fields[at_f] = now_iso()
            if job == "import" and previous.lastSyncedAt is None:
                fields["lastSyncedAt"] = fields[at_f]  # an import ends with a full sync
        state.update_status(sync.name, **fields)
    elapsed = round(time.monotonic() - started, 3)
    if out.failed:
        log.error(f"{job}.failed", message=text, seconds=elapsed)
    else:
        (log.info if out.results else log.debug)(f"{job}.succeeded", changes=len(out.results), seconds=elapsed)
