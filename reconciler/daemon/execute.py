"""The daemon's blocking work, each call on its own thread: one reconcile of one sync (the
engine's apply, with the run id bound so the engine's log lines and the stored
``lastSyncJobId`` carry the same id as the daemon's own lines about that run), and the two
state writes the daemon makes itself."""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from dataclasses import dataclass

import structlog

from reconciler.destinations.catalog import Catalog
from reconciler.engine.connect import open_source
from reconciler.engine.outcome import Outcome
from reconciler.engine.reconcile import Reconciler
from reconciler.engine.sharing import Listings
from reconciler.errors import ReconcilerError
from reconciler.logging import get_logger
from reconciler.sources.catalog import SourceCatalog
from reconciler.specs.model import SecretSync, SpecSet
from reconciler.state.location import Opener


@dataclass(frozen=True)
class RunResult:
    outcome: Outcome
    seconds: float
    managed: int | None
    run_id: str


def execute(specs: SpecSet, sync: SecretSync, states: Opener, run_id: str, reason: str, *,
            destinations: Catalog | None, sources: SourceCatalog, listings: Listings | None = None,
            halt: threading.Event | None = None) -> RunResult:
    """Blocking. Never raises: a bug or a broken state store is a failed run, retried like any.
    Once ``halt`` is set the run starts no new write (the daemon is stopping)."""
    with structlog.contextvars.bound_contextvars(sync=sync.name, destination=sync.destination, run_id=run_id):
        log = get_logger()
        log.info("reconcile.started", trigger=reason)
        started = time.monotonic()
        managed: int | None = None
        state = None
        try:
            state = states.open()
            out = Reconciler(specs, state, destinations=destinations, listings=listings,
                             sources=functools.partial(open_source, sources=sources), stop=halt).apply_sync(sync)
            if out.error is None:  # a run that failed whole may have failed on the state: no second wait
                with contextlib.suppress(ReconcilerError):  # only a metric: the run's outcome stands
                    managed = len(state.inventory(sync.name))
        except ReconcilerError as e:  # the state cannot be opened or read: its own words, not "internal"
            log.error("reconcile.state_failed", error=str(e))
            out = Outcome(sync.name, sync.destination, error=str(e))
        except Exception as e:
            log.error("reconcile.crashed", error_type=type(e).__name__)
            out = Outcome(sync.name, sync.destination, error=f"internal error ({type(e).__name__})")
        finally:
            if state is not None:
                state.close()
        return RunResult(out, time.monotonic() - started, managed, run_id)


def init_state(states: Opener) -> None:
    """Create the state (directory, key and database; or PostgreSQL's schema, checking the
    shared key) once, before runs race to do it: a bad state stops the daemon at start."""
    state = states.open()
    try:
        _ = state.fingerprinter
        state.drop_inventory("", [])  # opens (and so creates) the database; deletes nothing
    finally:
        state.close()


def record_removed(states: Opener, name: str) -> None:
    """Say in a removed sync's status that nobody reconciles it any more."""
    state = states.open()
    try:
        if state.exists() and state.status(name).syncStatus is not None:
            state.update_status(name, lastSyncMessage=(
                "spec removed: no longer reconciled by the daemon; destination secrets were left in "
                "place (run `reconciler remove` before deleting a spec to delete them)"))
    finally:
        state.close()
