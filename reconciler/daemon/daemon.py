"""``reconciler run``: keep every enabled, auto-synced sync converged.

One asyncio loop owns all decisions (what changed, what runs next, retries, health); the
synchronous engine runs on worker threads. Triggers come from file events, APScheduler
timers, source polls and webhooks, and all go through one :class:`Runner`, which is what
keeps a sync from running twice at once. How a source announces change is the source
catalog's business; the daemon only applies it (``changes.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from reconciler import calls
from reconciler.daemon import changes, records, signals, statusfile
from reconciler.daemon.api import Api
from reconciler.daemon.backoff import retry_delay
from reconciler.daemon.batches import Batches
from reconciler.daemon.config import DaemonConfig
from reconciler.daemon.execute import RunResult, execute, record_removed
from reconciler.daemon.fleet import StateService
from reconciler.daemon.health import Health
from reconciler.daemon.logs import bridge_stdlib
from reconciler.daemon.metrics import Metrics
from reconciler.daemon.records import SyncRecord
from reconciler.daemon.runner import Runner, in_thread
from reconciler.daemon.runs import Runs
from reconciler.daemon.schedule import Schedule
from reconciler.daemon.specdiff import merge
from reconciler.daemon.supervisor import Supervisor
from reconciler.daemon.systemd import Notifier
from reconciler.daemon.watcher import Watcher
from reconciler.destinations.catalog import Catalog
from reconciler.engine.sharing import Listings
from reconciler.errors import StateError
from reconciler.logging import get_logger
from reconciler.notify.send import Dispatcher
from reconciler.sources import catalog
from reconciler.sources.catalog import SourceCatalog
from reconciler.specs.loader import load as load_specs
from reconciler.specs.model import SecretSync, SpecSet

__all__ = ["Daemon", "RunResult"]

Loader = Callable[[Any], SpecSet]
#: after the stop timeout: how long the writes in flight of halted runs get to finish
HALT_GRACE = 5.0


class Daemon:
    def __init__(self, config: DaemonConfig, *, loader: Loader = load_specs, notifier: Notifier | None = None,
                 rand: Callable[[], float] = random.random, destinations: Catalog | None = None,
                 sources: SourceCatalog | None = None) -> None:
        self.config = config
        self._loader = loader
        self.notifier = notifier or Notifier()
        self._rand = rand
        self.destinations = destinations
        self.sources = sources or catalog.default()
        self.specs: SpecSet | None = None
        self.syncs: dict[str, SyncRecord] = {}
        self.metrics = Metrics()
        self.ready = False
        self.started_at = time.time()
        #: 1 when the daemon stopped because a part of it kept failing (systemd restarts it)
        self.exit_code = 0
        self._initial: set[str] | None = None
        self.schedule = Schedule(self._due)
        self.listings = Listings()
        self.runs = Runs()
        self.state = StateService(config, lambda: list(self.specs.syncs) if self.specs else [], self.trigger,
                                  self.metrics.registry, self.runs,
                                  lambda n: self.request_run(n, here=True))  # PostgreSQL: the replicas
        self.batches = Batches(self.listings, destinations, lambda: self.specs)
        self.polls = changes.Polls(self.sources, self.schedule, self.trigger, self._spawn)
        self.notices = Dispatcher(lambda: self.specs, counted=self.metrics.notification)  # kind: Notifier
        self.runner = Runner(self._work, self._connection_of, workers=config.workers,
                             per_connection=config.per_connection)
        self.watcher = Watcher(self._on_files, step_ms=config.watch_step_ms, debounce_ms=config.watch_debounce_ms)
        self.supervisor = Supervisor(self._fatal, restarts=config.max_restarts, pause=config.restart_pause)
        self.health = Health(self.supervisor, self.schedule, lambda: self._stop is None or self._stop.is_set())
        self.server: Any = None
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reload_lock: asyncio.Lock | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        #: syncs still running when the stop timeout ran out (their threads are abandoned)
        self.abandoned: list[str] = []
        #: set when the stop timeout runs out: runs in progress start no new write
        self._halt = threading.Event()
        self.log = get_logger(component="daemon")

    # -- lifecycle ----------------------------------------------------------------------------
    async def run(self) -> int:
        """Run until asked to stop: 0 after a graceful stop, 1 when a part of the daemon kept
        failing (the service manager then starts a fresh one)."""
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        old_level = logging.getLogger().level
        bridge = bridge_stdlib()
        calls.add_listener(self.metrics.api_call)
        try:
            if self.config.listen is not None:
                self.server = await Api(self, self.config.state_dir).start(*self.config.listen)
                self.log.info("daemon.listening", address=f"{self.server.host}:{self.server.port}")
            await self.state.start(self.supervisor)
            self.schedule.start()
            self._signals(install=True)
            await self.reload("startup")
            self.notifier.notify(ready=1, status=self._summary(), mainpid=os.getpid())
            self.supervisor.start("file watcher", self.watcher.run)
            self.supervisor.start("health monitor", lambda: self.health.monitor(self.notifier, self._fatal))
            await self._stop.wait()
            return await self._shutdown()
        finally:
            self._signals(install=False)
            calls.remove_listener(self.metrics.api_call)
            logging.getLogger().removeHandler(bridge)
            logging.getLogger().setLevel(old_level)

    def request_stop(self) -> None:
        """Thread-safe: begin a graceful stop."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    def request_reload(self) -> None:
        """Thread-safe: reload every spec (SIGHUP)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(lambda: self._spawn(self.reload("signal"), "reload"))

    def _fatal(self, why: str) -> None:
        """A part of the daemon cannot be kept running: stop, and exit non-zero."""
        self.log.critical("daemon.failed", reason=why)
        self.exit_code = 1
        if self._stop is not None:
            self._stop.set()

    def _spawn(self, coro: Coroutine[Any, Any, Any], what: str) -> None:
        """A one-off task; its failure is logged (never silently dropped)."""
        task = asyncio.get_running_loop().create_task(coro, name=what)
        self._tasks.add(task)
        task.add_done_callback(self._reap)

    def _reap(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            e = task.exception()
            # the type only, unless the state failed: its messages name the database, never a value
            said = {"error": str(e)} if isinstance(e, StateError) else {}
            self.log.error("daemon.task_failed", task=task.get_name(), error_type=type(e).__name__, **said)

    def _signals(self, *, install: bool) -> None:
        if self.config.install_signals and self._loop is not None:
            signals.handle(self._loop, stop=self.request_stop, reload=self.request_reload, install=install)

    async def _shutdown(self) -> int:
        self.log.info("daemon.stopping", running=sorted(self.runner.running), exit_code=self.exit_code)
        self.notifier.notify(stopping=1, status="stopping: waiting for reconciles in progress")
        self.supervisor.stopping()  # first: a watcher that ends now is stopping, not dying
        self.watcher.stop()
        self.schedule.shutdown()
        unfinished = await self.runner.drain(self.config.shutdown_timeout)
        if unfinished:  # no new write from here; the writes in flight finish and are recorded
            self.log.warning("daemon.stop_timeout", syncs=unfinished, timeout=self.config.shutdown_timeout)
            self._halt.set()
            unfinished = await self.runner.drain(HALT_GRACE)
        self.abandoned = unfinished  # still running: abandoned on their threads
        self.runs.close("the daemon stopped")
        await self.supervisor.stop()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.polls.close()
        await self.notices.close()
        await self.state.stop(abandoned=bool(unfinished))
        self._write_status(running=False)
        if self.server is not None:
            await self.server.close()
        self.log.info("daemon.stopped", abandoned=unfinished, exit_code=self.exit_code)
        return self.exit_code

    def healthy(self) -> tuple[bool, list[str]]:
        return self.health.check()

    def not_ready(self) -> str | None:
        """Why ``/readyz`` fails: not loaded, first reconcile still running, or a part down."""
        if self.specs is None:
            return "specs not loaded"
        if self.state.problem is not None:
            return self.state.problem
        if not self.ready:
            return "first reconcile in progress"
        ok, problems = self.healthy()
        return None if ok else "; ".join(problems)

    def metrics_text(self) -> bytes:
        return self.metrics.render()

    # -- specs --------------------------------------------------------------------------------
    async def reload(self, reason: str) -> None:
        assert self._reload_lock is not None
        async with self._reload_lock:
            if reason == "signal":
                self.notifier.notify(reloading=1, monotonic_usec=int(time.monotonic() * 1_000_000))
            root = self.config.spec_dir
            try:
                loaded = await in_thread(lambda: self._loader(root), "spec-load")
            except Exception as e:  # the loader's bug, or one it did not expect: keep what runs
                self.log.error("spec.load_failed", reason=reason, error_type=type(e).__name__,
                               running="last-known-good")
                return
            self._apply_specs(loaded, reason)
            if reason == "signal":
                self.notifier.notify(ready=1, status=self._summary())

    def _apply_specs(self, loaded: SpecSet, reason: str) -> None:
        r = merge(self.specs, loaded)
        self.specs = r.specs
        for d in loaded.diagnostics:
            (self.log.error if d.severity == "error" else self.log.warning)(
                "spec.diagnostic", file=str(d.file), line=d.line, path=d.path, message=d.message,
                severity=d.severity)
        for group, running in ((r.kept, "last-known-good"), (r.rejected, "nothing")):
            for name, why in group.items():
                self.log.error("spec.invalid", sync=name, diagnostics=len(why), running=running)
        for name in r.removed:
            self._forget(name)
        for name in [n for n in self.syncs if n not in r.specs.syncs and n not in r.rejected]:
            del self.syncs[name]
        for name in (*r.specs.syncs, *r.rejected):
            rec = self.syncs.setdefault(name, SyncRecord())
            rec.kept = name in r.kept
            rec.invalid = len(r.kept.get(name) or r.rejected.get(name) or ())
        for sync in r.specs.syncs.values():
            if records.why_not(sync) is None:
                self.schedule.every(sync.name, sync.reconcile.interval_seconds, self.batches.phase(sync.name))
            else:
                self.schedule.cancel(sync.name)
                self.syncs[sync.name].next_attempt = None
        self.polls.arm(r.specs, [s for s in r.specs.syncs.values() if records.why_not(s) is None])
        self.watcher.set_targets(self.config.spec_dir, changes.watched_files(r.specs, self.sources))
        self.notices.check()
        self._count_syncs()
        self.log.info("spec.loaded", reason=reason, syncs=len(r.specs.syncs), added=list(r.added),
                      changed=list(r.changed), removed=list(r.removed), kept=sorted(r.kept),
                      invalid=sorted(r.rejected))
        runnable = [n for n in (*r.added, *r.changed) if records.why_not(r.specs.syncs[n]) is None]
        if self._initial is None:
            self._initial = set(runnable)
            self._check_ready()
        self.batches.together(runnable)
        for name in runnable:
            self.runner.trigger(name, "startup" if reason == "startup" else "spec-changed")
        self._write_status()

    def _forget(self, name: str) -> None:
        self.schedule.cancel(name)
        self.metrics.forget(name)
        self.syncs.pop(name, None)
        self._check_ready(done=name)
        self.log.warning("sync.removed", sync=name,
                         note="no longer reconciled; its destination secrets are left in place")
        self._spawn(in_thread(lambda: record_removed(self.state.opener, name), "record-removed"), "record-removed")

    def _connection_of(self, name: str) -> str | None:
        sync = self.specs.syncs.get(name) if self.specs else None
        return sync.connection if sync else None

    def _states(self) -> dict[str, tuple[str, SyncRecord]]:
        """Every sync the daemon knows, loaded or invalid: its state and record."""
        syncs = self.specs.syncs if self.specs else {}
        return {name: (records.state(syncs.get(name), rec), rec) for name, rec in self.syncs.items()}

    def _count_syncs(self) -> None:
        self.metrics.count_states(state for state, _rec in self._states().values())

    # -- triggers -----------------------------------------------------------------------------
    def trigger(self, name: str, reason: str) -> bool:
        sync = self.specs.syncs.get(name) if self.specs else None
        why = records.why_not(sync, explicit=reason == records.EXPLICIT)
        if why is not None:
            self.log.info("reconcile.skipped", sync=name, trigger=reason, reason=why)
            return False
        return self.runner.trigger(name, reason)

    def request_run(self, name: str, *, here: bool = False) -> tuple[int, dict[str, Any]]:
        """``POST /syncs/<name>/trigger`` (``reconciler trigger``): see runs.py. A sync another
        replica owns is run there (handover.py) unless ``here`` (a run handed to this one)."""
        sync = self.specs.syncs.get(name) if self.specs else None
        refused = records.refusal(sync, name in self.syncs)
        handed = None if refused or here else self.state.hand_over(name)
        return handed or self.runs.request(name, refused, lambda: self.trigger(name, records.EXPLICIT))

    async def _due(self, name: str, reason: str) -> None:
        """An APScheduler job fired."""
        if reason == "retry" and name in self.syncs:
            self.syncs[name].next_attempt = None
        if reason == "interval":
            self.batches.collect(name, reason, self.trigger)
            return
        self.trigger(name, reason)

    async def _on_files(self, paths: set[str]) -> None:
        sources = {p for p in paths if self.watcher.is_source(p)}
        if any(p not in sources for p in paths):
            await self.reload("spec-changed")
        if sources and self.specs is not None:
            readers = list(changes.file_readers(self.specs, self.sources, sources))
            self.batches.together(readers)
            for name in readers:
                self.trigger(name, "source-changed")

    def webhook(self, route: str, connection: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, list[str]]:
        """A source's change announcement (``POST /webhooks/<route>/<connection>``)."""
        got = changes.webhook(self.specs, self.sources, route, connection, body, headers)
        if got.status != 202 or got.folder is None:
            return got.status, []
        names = [n for n in got.syncs if self.trigger(n, "webhook")]
        self.log.info("webhook.received", connection=connection, environment=got.folder.environment,
                      secret_path=got.folder.secret_path, syncs=names)
        return 202, names

    # -- one run ------------------------------------------------------------------------------
    async def _work(self, name: str, reason: str) -> None:
        specs = self.specs
        sync = specs.syncs.get(name) if specs else None
        if not self.state.may_run(name, reason, asked=self.runs.claimed(name)):
            self.listings.drop(name)  # another replica holds it: no listing is kept for it here
            return self._check_ready(done=name)
        with self.runs.run(name) as run_id:  # a waiter always hears how its run ended
            if specs is None or sync is None or records.why_not(sync, explicit=reason == records.EXPLICIT):
                return
            result = await in_thread(lambda: execute(specs, sync, self.state.opener, run_id, reason,
                                                     destinations=self.destinations, sources=self.sources,
                                                     listings=self.listings, halt=self._halt),
                                     f"sync-{name}")
            self._after(sync, result)

    def _after(self, sync: SecretSync, result: RunResult) -> None:
        out, name, now = result.outcome, sync.name, time.time()
        self.metrics.observe(out, result.seconds, now, result.managed)
        rec = self.syncs.setdefault(name, SyncRecord())
        recovered = not out.failed and rec.failed_attempts > 0
        self.notices.after_run(sync, out, rec.failed_attempts, result.run_id)
        rec.finished(out.failed, now, result.run_id)
        log = get_logger(sync=name, destination=sync.destination, run_id=result.run_id)
        current = self.specs.syncs.get(name) if self.specs else None
        if out.failed:
            if current is not None and records.why_not(current) is None and self.runner.accepting:
                delay = retry_delay(rec.failed_attempts, current.reconcile.retry_interval_seconds,
                                    current.reconcile.interval_seconds, out.retry_after, self._rand)
                rec.next_attempt = self.schedule.retry_in(name, delay)
                log.warning("retry.scheduled", attempt=rec.failed_attempts, delay=round(delay, 3),
                            next_attempt=statusfile.iso(rec.next_attempt), retry_after=out.retry_after)
        else:
            if recovered:
                log.info("sync.recovered")
            self.schedule.cancel_retry(name)
        log.info("reconcile.finished", result=rec.last_result, seconds=round(result.seconds, 3))
        self.runs.finish(result.run_id, out)
        self._check_ready(done=name)
        self.notifier.notify(status=self._summary())
        self._write_status()

    def _check_ready(self, done: str | None = None) -> None:
        if self._initial is not None and done is not None:
            self._initial.discard(done)
        stopping = self._stop is not None and self._stop.is_set()  # then "ready" would be news from the past
        if not self.ready and not stopping and self._initial is not None and not self._initial:
            self.ready = True
            self.metrics.ready.set(1)
            self.log.info("daemon.ready", syncs=len(self.specs.syncs) if self.specs else 0)

    # -- status -------------------------------------------------------------------------------
    def _summary(self) -> str:
        return statusfile.summary(self.syncs, len(self.specs.syncs) if self.specs else 0)

    def status(self, *, running: bool = True) -> dict[str, Any]:
        return statusfile.snapshot(self._states(), self.schedule.next_run, ready=self.ready,
                                   started_at=self.started_at, running=running)

    def _write_status(self, *, running: bool = True) -> None:
        statusfile.write_logged(self.config.state_dir, self.status(running=running), self.log)
