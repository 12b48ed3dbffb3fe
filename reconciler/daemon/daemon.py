"""``reconciler run``: keep every enabled, auto-synced sync converged.

One asyncio loop owns all decisions (what changed, what runs next, retries, health); the
synchronous engine runs on worker threads. Triggers come from file events, APScheduler
timers, KMS polls and webhooks, and all go through one :class:`Runner`, which is what keeps
a sync from running twice at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import random
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from reconciler import calls
from reconciler.daemon import statusfile
from reconciler.daemon.backoff import retry_delay
from reconciler.daemon.config import DaemonConfig
from reconciler.daemon.kms import Poller, PollKey, poll_groups
from reconciler.daemon.logs import bridge_stdlib
from reconciler.daemon.metrics import Metrics
from reconciler.daemon.runner import Runner, in_thread
from reconciler.daemon.schedule import Schedule
from reconciler.daemon.specdiff import merge
from reconciler.daemon.systemd import Notifier, watchdog_interval
from reconciler.daemon.watcher import Watcher
from reconciler.destinations.catalog import Catalog
from reconciler.engine.connect import open_source
from reconciler.engine.outcome import Outcome
from reconciler.engine.reconcile import Reconciler, SourceFactory
from reconciler.logging import get_logger
from reconciler.specs.loader import load as load_specs
from reconciler.specs.model import SecretSync, SpecSet
from reconciler.state.store import StateStore

Loader = Callable[[Any], SpecSet]


@dataclass(frozen=True)
class RunResult:
    outcome: Outcome
    seconds: float
    managed: int | None
    run_id: str


class Daemon:
    def __init__(self, config: DaemonConfig, *, loader: Loader = load_specs, notifier: Notifier | None = None,
                 rand: Callable[[], float] = random.random, destinations: Catalog | None = None,
                 sources: SourceFactory = open_source) -> None:
        self.config = config
        self._loader = loader
        self._destinations = destinations
        self._sources = sources
        self.notifier = notifier or Notifier()
        self._rand = rand
        self.specs: SpecSet | None = None
        self.metrics = Metrics()
        self.ready = False
        self.started_at = time.time()
        self.attempts: dict[str, int] = {}
        self.next_attempt: dict[str, float] = {}
        self.last: dict[str, dict[str, Any]] = {}
        self.kept: dict[str, int] = {}
        self.rejected: set[str] = set()
        self._initial: set[str] | None = None
        self._polls: dict[PollKey, tuple[float, list[str]]] = {}
        self.poller = Poller(sources)
        self.schedule = Schedule(self._due)
        self.runner = Runner(self._work, self._connection_of, workers=config.workers,
                             per_connection=config.per_connection)
        self.watcher = Watcher(self._on_files, step_ms=config.watch_step_ms, debounce_ms=config.watch_debounce_ms)
        self.server: Any = None
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reload_lock: asyncio.Lock | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        #: syncs still running when the stop timeout ran out (their threads are abandoned)
        self.abandoned: list[str] = []
        self.log = get_logger(component="daemon")

    # -- lifecycle ----------------------------------------------------------------------------
    async def run(self) -> int:
        """Run until asked to stop; 0 after a graceful stop."""
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        old_level = logging.getLogger().level
        bridge = bridge_stdlib()
        calls.add_listener(self.metrics.api_call)
        try:
            if self.config.listen is not None:
                from reconciler.daemon.api import Api

                self.server = await Api(self).start(*self.config.listen)
                self.log.info("daemon.listening", address=f"{self.server.host}:{self.server.port}")
            await in_thread(self._init_state, "state-init")
            self.schedule.start()
            self._signals(install=True)
            await self.reload("startup")
            self.notifier.notify(ready=1, status=self._summary(), mainpid=os.getpid())
            self._tasks.append(asyncio.create_task(self.watcher.run(), name="watcher"))
            every = watchdog_interval()
            if every is not None:
                self._tasks.append(asyncio.create_task(self._watchdog(every), name="watchdog"))
            await self._stop.wait()
            return await self._shutdown()
        finally:
            self._signals(install=False)
            calls.remove_listener(self.metrics.api_call)
            logging.getLogger().removeHandler(bridge)
            logging.getLogger().setLevel(old_level)

    def _init_state(self) -> None:
        """Create the state directory, key and database once, before runs race to do it."""
        state = StateStore(self.config.state_dir)
        try:
            _ = state.fingerprinter
            state.drop_inventory("", [])  # opens (and so creates) the database; deletes nothing
        finally:
            state.close()

    def request_stop(self) -> None:
        """Thread-safe: begin a graceful stop."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    def request_reload(self) -> None:
        """Thread-safe: reload every spec (SIGHUP)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(lambda: self._spawn(self.reload("signal")))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.append(task)
        task.add_done_callback(lambda t: self._tasks.remove(t) if t in self._tasks else None)

    def _signals(self, *, install: bool) -> None:
        if not self.config.install_signals or self._loop is None:
            return
        for sig, fn in ((signal.SIGTERM, self.request_stop), (signal.SIGINT, self.request_stop),
                        (signal.SIGHUP, self.request_reload)):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                if install:
                    self._loop.add_signal_handler(sig, fn)
                else:
                    self._loop.remove_signal_handler(sig)

    async def _shutdown(self) -> int:
        self.log.info("daemon.stopping", running=sorted(self.runner.running))
        self.notifier.notify(stopping=1, status="stopping: waiting for reconciles in progress")
        self.watcher.stop()
        self.schedule.shutdown()
        unfinished = self.abandoned = await self.runner.drain(self.config.shutdown_timeout)
        if unfinished:
            # abandoned on their threads; every write that landed is already in the inventory
            self.log.warning("daemon.stop_timeout", syncs=unfinished, timeout=self.config.shutdown_timeout)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.poller.close()
        self._write_status(running=False)
        if self.server is not None:
            await self.server.close()
        self.log.info("daemon.stopped", abandoned=unfinished)
        return 0

    async def _watchdog(self, every: float) -> None:
        while True:
            if self.healthy()[0]:
                self.notifier.notify(watchdog=1)
            await asyncio.sleep(every)

    def healthy(self) -> tuple[bool, list[str]]:
        """The loop answers (we are running on it); the watcher and scheduler still live."""
        problems = []
        watcher = next((t for t in self._tasks if t.get_name() == "watcher"), None)
        if watcher is not None and watcher.done():
            problems.append("file watcher stopped")
        if not self.schedule.running and self._stop is not None and not self._stop.is_set():
            problems.append("scheduler stopped")
        return not problems, problems

    # -- specs --------------------------------------------------------------------------------
    async def reload(self, reason: str) -> None:
        assert self._reload_lock is not None
        async with self._reload_lock:
            if reason == "signal":
                self.notifier.notify(reloading=1, monotonic_usec=int(time.monotonic() * 1_000_000))
            root = self.config.spec_dir
            loaded = await in_thread(lambda: self._loader(root), "spec-load")
            r = merge(self.specs, loaded)
            self.specs = r.specs
            for d in loaded.diagnostics:
                (self.log.error if d.severity == "error" else self.log.warning)(
                    "spec.diagnostic", file=str(d.file), line=d.line, path=d.path, message=d.message,
                    severity=d.severity)
            for name, why in r.kept.items():
                self.log.error("spec.invalid", sync=name, diagnostics=len(why), running="last-known-good")
            for name, why in r.rejected.items():
                self.log.error("spec.invalid", sync=name, diagnostics=len(why), running="nothing")
            self.kept = {n: len(d) for n, d in r.kept.items()}
            self.rejected = set(r.rejected)
            for name in r.removed:
                self._forget(name)
            for sync in r.specs.syncs.values():
                if self.why_not(sync) is None:
                    self.schedule.every(sync.name, sync.reconcile.interval_seconds)
                else:
                    self.schedule.cancel(sync.name)
                    self.next_attempt.pop(sync.name, None)
            self._arm_polls()
            self.watcher.set_targets(root, [c.path for c in r.specs.connections.values()
                                            if c.app == "file" and c.path is not None])
            self._count_syncs()
            self.log.info("spec.loaded", reason=reason, syncs=len(r.specs.syncs), added=list(r.added),
                          changed=list(r.changed), removed=list(r.removed), kept=sorted(r.kept),
                          invalid=sorted(r.rejected))
            runnable = [n for n in (*r.added, *r.changed) if self.why_not(r.specs.syncs[n]) is None]
            if self._initial is None:
                self._initial = set(runnable)
                self._check_ready()
            for name in runnable:
                self.runner.trigger(name, "startup" if reason == "startup" else "spec-changed")
            self._write_status()
            if reason == "signal":
                self.notifier.notify(ready=1, status=self._summary())

    def _forget(self, name: str) -> None:
        self.schedule.cancel(name)
        self.metrics.forget(name)
        self.attempts.pop(name, None)
        self.next_attempt.pop(name, None)
        self.last.pop(name, None)
        if self._initial is not None:
            self._initial.discard(name)
            self._check_ready()
        self.log.warning("sync.removed", sync=name,
                         note="no longer reconciled; its destination secrets are left in place")
        self._spawn(in_thread(lambda: self._record_removed(name), "record-removed"))

    def _record_removed(self, name: str) -> None:
        state = StateStore(self.config.state_dir)
        try:
            if state.exists() and state.status(name).syncStatus is not None:
                state.update_status(name, lastSyncMessage=(
                    "spec removed: no longer reconciled by the daemon; destination secrets were left in "
                    "place (run `reconciler remove` before deleting a spec to delete them)"))
        finally:
            state.close()

    def why_not(self, sync: SecretSync | None) -> str | None:
        """Why the daemon does not run this sync on its own (None: it does)."""
        if sync is None:
            return "not defined"
        if not sync.is_enabled:
            return "disabled (isEnabled: false)"
        if not sync.is_auto_sync_enabled:
            return "manual only (isAutoSyncEnabled: false)"
        if sync.reconcile.suspend:
            return "suspended (reconcile.suspend: true)"
        return None

    def _connection_of(self, name: str) -> str | None:
        sync = self.specs.syncs.get(name) if self.specs else None
        return sync.connection if sync else None

    def _count_syncs(self) -> None:
        assert self.specs is not None
        counts = {"active": 0, "suspended": 0, "manual": 0, "disabled": 0, "invalid_kept": len(self.kept),
                  "invalid": len(self.rejected)}
        for sync in self.specs.syncs.values():
            why = self.why_not(sync)
            key = "active" if why is None else why.split(" ")[0]
            counts[key] = counts.get(key, 0) + 1
        for state, n in counts.items():
            self.metrics.syncs.labels(state).set(n)

    # -- triggers -----------------------------------------------------------------------------
    def trigger(self, name: str, reason: str) -> bool:
        sync = self.specs.syncs.get(name) if self.specs else None
        why = self.why_not(sync)
        if why is not None:
            self.log.info("reconcile.skipped", sync=name, trigger=reason, reason=why)
            return False
        return self.runner.trigger(name, reason)

    async def _due(self, name: str, reason: str) -> None:
        """An APScheduler job fired."""
        if reason == "retry":
            self.next_attempt.pop(name, None)
        self.trigger(name, reason)

    async def _on_files(self, paths: set[str]) -> None:
        sources = {p for p in paths if self.watcher.is_source(p)}
        if any(p not in sources for p in paths):
            await self.reload("spec-changed")
        if not sources or self.specs is None:
            return
        real = {os.path.realpath(p) for p in sources}
        for sync in self.specs.syncs.values():
            conn = self.specs.connections.get(sync.source)
            if conn is not None and conn.app == "file" and conn.path is not None \
                    and os.path.realpath(conn.path) in real:
                self.trigger(sync.name, "source-changed")

    def _arm_polls(self) -> None:
        assert self.specs is not None
        active = [s for s in self.specs.syncs.values() if self.why_not(s) is None]
        self._polls = poll_groups(self.specs, active)
        keep = {str(k) for k in self._polls}
        for stale in self.schedule.polls() - keep:
            self.schedule.cancel_poll(stale)
        self.poller.forget(self._polls)
        for key, (seconds, _names) in self._polls.items():
            fresh = key not in self.poller.tokens
            self.schedule.poll(str(key), seconds, functools.partial(self.poll, key))
            if fresh:
                self._spawn(self.poll(key))

    async def poll(self, key: PollKey) -> list[str]:
        """Check one folder's change token; trigger its syncs when it moved. Returns them."""
        group = self._polls.get(key)
        conn = self.specs.connections.get(key.connection) if self.specs else None
        if group is None or conn is None:
            return []
        async with self.poller.lock(conn.name):
            try:
                token = await in_thread(lambda: self.poller.token(conn, key.folder), f"poll-{conn.name}")
            except Exception as e:
                from reconciler.engine.connect import ConnectError
                from reconciler.sources.errors import SourceError

                detail = str(e) if isinstance(e, SourceError | ConnectError) else type(e).__name__
                self.log.warning("poll.failed", connection=conn.name, environment=key.folder.environment,
                                 secret_path=key.folder.secret_path, error=detail)
                return []
        if not self.poller.changed(key, token):
            return []
        names = [n for n in group[1] if self.trigger(n, "source-changed")]
        self.log.info("source.changed", connection=conn.name, environment=key.folder.environment,
                      secret_path=key.folder.secret_path, syncs=names)
        return names

    # -- one run ------------------------------------------------------------------------------
    async def _work(self, name: str, reason: str) -> None:
        specs = self.specs
        sync = specs.syncs.get(name) if specs else None
        if specs is None or sync is None or self.why_not(sync) is not None:
            return
        run_id = uuid.uuid4().hex[:12]
        result = await in_thread(lambda: self._execute(specs, sync, run_id, reason), f"sync-{name}")
        self._after(sync, result)

    def _execute(self, specs: SpecSet, sync: SecretSync, run_id: str, reason: str) -> RunResult:
        """Blocking, on the run's own thread; its log lines carry sync, destination, run id."""
        with structlog.contextvars.bound_contextvars(sync=sync.name, destination=sync.destination, run_id=run_id):
            log = get_logger()
            log.info("reconcile.started", trigger=reason)
            started = time.monotonic()
            managed: int | None = None
            state = StateStore(self.config.state_dir)
            try:
                out = Reconciler(specs, state, destinations=self._destinations,
                                 sources=self._sources).apply_sync(sync)
                managed = len(state.inventory(sync.name))
            except Exception as e:  # a bug or a broken state store: a failed run, retried like any
                log.error("reconcile.crashed", error_type=type(e).__name__)
                out = Outcome(sync.name, sync.destination, error=f"internal error ({type(e).__name__})")
            finally:
                state.close()
            return RunResult(out, time.monotonic() - started, managed, run_id)

    def _after(self, sync: SecretSync, result: RunResult) -> None:
        out, name, now = result.outcome, sync.name, time.time()
        self.metrics.observe(out, result.seconds, now, result.managed)
        self.last[name] = {"result": "failure" if out.failed else "success", "at": now, "runId": result.run_id}
        log = get_logger(sync=name, destination=sync.destination, run_id=result.run_id)
        current = self.specs.syncs.get(name) if self.specs else None
        if out.failed:
            attempt = self.attempts[name] = self.attempts.get(name, 0) + 1
            if current is not None and self.why_not(current) is None and self.runner.accepting:
                delay = retry_delay(attempt, current.reconcile.retry_interval_seconds,
                                    current.reconcile.interval_seconds, getattr(out, "retry_after", None),
                                    self._rand)
                when = self.schedule.retry_in(name, delay)
                self.next_attempt[name] = when
                log.warning("retry.scheduled", attempt=attempt, delay=round(delay, 3),
                            next_attempt=statusfile.iso(when), retry_after=getattr(out, "retry_after", None))
        else:
            if self.attempts.pop(name, None):
                log.info("sync.recovered")
            self.next_attempt.pop(name, None)
            self.schedule.cancel_retry(name)
        log.info("reconcile.finished", result=self.last[name]["result"], seconds=round(result.seconds, 3))
        if self._initial is not None:
            self._initial.discard(name)
            self._check_ready()
        self.notifier.notify(status=self._summary())
        self._write_status()

    def _check_ready(self) -> None:
        if not self.ready and self._initial is not None and not self._initial:
            self.ready = True
            self.metrics.ready.set(1)
            self.log.info("daemon.ready", syncs=len(self.specs.syncs) if self.specs else 0)

    # -- status -------------------------------------------------------------------------------
    def _summary(self) -> str:
        return statusfile.summary(self)

    def status(self, *, running: bool = True) -> dict[str, Any]:
        return statusfile.snapshot(self, running=running)

    def _write_status(self, *, running: bool = True) -> None:
        try:
            statusfile.write(self.config.state_dir, self.status(running=running))
        except OSError as e:
            self.log.warning("status.write_failed", error=e.strerror or type(e).__name__)
