"""What the daemon keeps about each sync between runs: one record per sync, so a sync's
retries, last result and spec health are read and forgotten together, never half."""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.specs.model import SecretSync


@dataclass
class SyncRecord:
    failed_attempts: int = 0
    #: Unix time of the scheduled retry, while one is scheduled
    next_attempt: float | None = None
    last_result: str | None = None  # success | failure
    last_at: float | None = None
    last_run_id: str | None = None
    #: diagnostics of the sync's newest spec when it is invalid (0: valid)
    invalid: int = 0
    #: the newest spec is invalid but an earlier valid version still runs (last-known-good)
    kept: bool = False

    def finished(self, failed: bool, at: float, run_id: str) -> None:
        self.last_result, self.last_at, self.last_run_id = ("failure" if failed else "success"), at, run_id
        self.failed_attempts = self.failed_attempts + 1 if failed else 0
        if not failed:
            self.next_attempt = None


#: the trigger reason of ``reconciler trigger NAME``: asked for by name, like ``apply --sync``
EXPLICIT = "trigger"


def why_not(sync: SecretSync | None, *, explicit: bool = False) -> str | None:
    """Why the daemon does not run this sync (None: it does). Asked for by name
    (``explicit``), a manual-only sync runs, as ``apply --sync`` runs it."""
    if sync is None:
        return "not defined"
    if not sync.is_enabled:
        return "disabled (isEnabled: false)"
    if not sync.is_auto_sync_enabled and not explicit:
        return "manual only (isAutoSyncEnabled: false)"
    if sync.reconcile.suspend:
        return "suspended (reconcile.suspend: true)"
    return None


def state(sync: SecretSync | None, record: SyncRecord | None) -> str:
    """One word per sync, the same in ``/status``, ``daemon.json`` and the metrics: active,
    suspended, manual, disabled, invalid-kept (running its last-known-good spec) or invalid
    (nothing runs)."""
    if record is not None and record.kept:
        return "invalid-kept"
    if sync is None:
        return "invalid"
    why = why_not(sync)
    return "active" if why is None else why.split(" ")[0]


def refusal(sync: SecretSync | None, known: bool) -> tuple[int, str] | None:
    """Why ``POST /syncs/<name>/trigger`` cannot run a sync, as an HTTP status and a reason
    (None: it can). ``known``: the daemon has a record of it (an invalid spec has one)."""
    if sync is None:
        if known:
            return 409, "its spec is invalid (see `reconciler validate`); nothing runs for it"
        return 404, "no such sync in the daemon's specs"
    why = why_not(sync, explicit=True)
    return None if why is None else (409, why)
