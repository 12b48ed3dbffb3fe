"""The daemon's state (:class:`StateService`) and, with PostgreSQL, this replica's place
among the replicas sharing it (:class:`Fleet`; no leader). A webhook that reaches a replica
that does not own the sync is handed to the owner (``NOTIFY``, :mod:`reconciler.state.pg.notify`).

Every replica loads every spec and keeps every timer; only a sync's owner (rendezvous
hashing over the live members, :mod:`reconciler.state.pg.members`) runs it, and the per-sync
advisory lock makes sure that even views that disagree for a moment never run one twice at
once. Heartbeats every third of the lease; a member silent for two thirds of it is gone, so
its syncs are taken over — and run at once — within one lease. A replica that cannot reach
the database owns nothing (``/readyz`` says why) until it can again.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from reconciler.daemon.config import DaemonConfig
from reconciler.daemon.execute import init_state
from reconciler.daemon.runner import in_thread
from reconciler.daemon.supervisor import Supervisor
from reconciler.errors import StateError
from reconciler.logging import get_logger
from reconciler.state.location import Opener
from reconciler.state.pg import members, notify
from reconciler.state.pg.database import replica_name

Trigger = Callable[[str, str], bool]
#: runs asked for by name (someone waits for the result here) and runs handed over by another
#: replica run where they land (the sync's lock still keeps them from running twice at once)
RUN_WHERE_ASKED = ("trigger", "forwarded")
#: runs announced to this replica that belong to another: handed to the owner (NOTIFY)
HAND_OVER = ("webhook",)


class Fleet:
    def __init__(self, database: Callable[[], Any], replica: str, lease: float, names: Callable[[], Iterable[str]],
                 trigger: Trigger, registry: CollectorRegistry | None = None) -> None:
        self._database = database
        self.replica = replica
        self.lease = lease
        self._names = names
        self._trigger = trigger
        #: the live members as last seen (sorted); empty while the database is out of reach
        self.members: list[str] = []
        self._last_ok: float | None = None
        #: why the last heartbeat failed (None: it did not)
        self.problem: str | None = None
        self.takeovers = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listener: notify.Listener | None = None
        self.log = get_logger(component="fleet", replica=replica)
        r = registry or CollectorRegistry()
        self._held = Gauge("reconciler_replica_held_syncs", "Syncs this replica holds (runs).", ["replica"],
                           registry=r)
        self._taken = Counter("reconciler_lease_takeovers_total",
                              "Syncs this replica took over from a replica that left or died.", ["replica"],
                              registry=r)
        self._held.labels(replica).set_function(lambda: len(self.held()))  # as of the scrape
        self._live = Gauge("reconciler_replicas_live", "Replicas this one sees alive (itself included).",
                           registry=r)

    @property
    def interval(self) -> float:
        return self.lease * members.HEARTBEAT_SHARE

    def usable(self) -> bool:
        """Our own membership is current and the database answered our last heartbeat: we may
        run what we own. One failed heartbeat is enough to stop taking work."""
        return (self._last_ok is not None and self.problem is None and self.replica in self.members
                and time.monotonic() - self._last_ok < self.lease * members.LIVE_SHARE)

    def owner(self, name: str) -> str | None:
        return members.owner(name, self.members)

    def owns(self, name: str) -> bool:
        return self.usable() and self.owner(name) == self.replica

    def may_run(self, name: str, reason: str, asked: bool) -> bool:
        if asked or reason in RUN_WHERE_ASKED or self.owns(name):
            return True
        owner = self.owner(name) if self.usable() else None
        self.log.debug("reconcile.elsewhere", sync=name, trigger=reason, owner=owner)
        if reason in HAND_OVER and owner is not None:
            threading.Thread(target=self._hand_over, args=(name, reason, owner), name="hand-over", daemon=True).start()
        return False

    def _hand_over(self, name: str, reason: str, owner: str) -> None:
        """NOTIFY the owner; if the database cannot take it, run the sync here after all."""
        try:
            notify.send(self._database(), owner, name, reason, self.replica)
        except StateError as e:
            self.log.warning("fleet.hand_over_failed", sync=name, owner=owner, error=str(e))
            self._run_here(name)

    def _run_here(self, name: str) -> None:
        """From any thread: run ``name`` on this replica (a run handed over)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._trigger, name, "forwarded")

    def listen(self) -> None:
        """Take the runs other replicas hand over to this one (on the daemon's loop)."""
        self._loop = asyncio.get_running_loop()
        self._listener = notify.Listener(self._database(), self.replica, lambda sync, _reason: self._run_here(sync))
        self._listener.start()

    def held(self) -> list[str]:
        return [n for n in self._names() if self.owns(n)]

    async def beat(self) -> None:
        db = self._database
        count = len(self.held())
        try:
            seen = await in_thread(lambda: members.heartbeat(db(), self.replica, self.lease, count), "heartbeat")
        except StateError as e:
            if self.problem is None:
                self.log.error("fleet.heartbeat_failed", error=str(e))
            self.problem = str(e)
            if not self.usable() and self.members:
                self.log.warning("fleet.out", note="the state database is out of reach: holding no sync")
                self.members = []
            return
        was_usable, before = self.usable() or self._last_ok is None, self.members
        first = self._last_ok is None
        self.members, self._last_ok, self.problem = seen, time.monotonic(), None
        self._live.set(len(seen))
        if seen != before:
            self.log.info("fleet.members", members=seen, left=sorted(set(before) - set(seen)),
                          joined=sorted(set(seen) - set(before)))
        gone = bool(set(before) - set(seen))
        if not first and (gone or not was_usable):
            gained = [n for n in self._names()
                      if members.owner(n, seen) == self.replica and members.owner(n, before) != self.replica]
            if gained:
                self.takeovers += len(gained)
                self._taken.labels(self.replica).inc(len(gained))
                self.log.info("fleet.takeover", syncs=gained)
                for name in gained:  # a replica left or died: what is ours now runs at once
                    self._trigger(name, "takeover")

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.beat()

    async def leave(self) -> None:
        if self._listener is not None:
            listener, self._listener = self._listener, None
            await in_thread(listener.stop, "listener-stop")
        db = self._database
        try:
            await in_thread(lambda: members.leave(db(), self.replica), "leave")
        except StateError as e:
            self.log.warning("fleet.leave_failed", error=str(e))
        self.members = []


class StateService:
    """What the daemon keeps of the state: the :class:`Opener` its runs use and, when the state
    is PostgreSQL, its :class:`Fleet`."""

    def __init__(self, config: DaemonConfig, names: Callable[[], Iterable[str]], trigger: Trigger,
                 registry: CollectorRegistry) -> None:
        replica = config.replica or replica_name()
        self.opener = Opener(config.location, pool_size=2 * config.workers + 2, name=replica)
        self.fleet = Fleet(self.opener.database, replica, config.lease_seconds, names, trigger,
                           registry) if config.location.shared else None

    async def start(self, supervisor: Supervisor) -> None:
        """Set the state up once, before runs race to; know the other replicas before the
        first runs."""
        await in_thread(lambda: init_state(self.opener), "state-init")
        if self.fleet is not None:
            await self.fleet.beat()
            self.fleet.listen()
            supervisor.start("replica heartbeat", self.fleet.run)

    def may_run(self, name: str, reason: str, asked: bool) -> bool:
        return self.fleet is None or self.fleet.may_run(name, reason, asked)

    @property
    def problem(self) -> str | None:
        """Why this replica holds no sync now (None: it may run what it holds)."""
        return None if self.fleet is None or self.fleet.problem is None else f"holding no sync: {self.fleet.problem}"

    async def stop(self, abandoned: bool) -> None:
        if self.fleet is not None:
            await self.fleet.leave()
        if not abandoned:  # abandoned runs may still write: the process's exit ends the pool
            self.opener.close()
