"""The daemon's state (:class:`StateService`) and, with PostgreSQL, this replica's place
among the replicas sharing it (:class:`Fleet`; no leader). A trigger or a webhook that
reaches a replica that does not own the sync is handed to the owner (a request row and a
``NOTIFY``, :mod:`reconciler.daemon.handover`).

Every replica loads every spec and keeps every timer; only a sync's owner (rendezvous
hashing over the live members, :mod:`reconciler.state.pg.members`) runs it, and the per-sync
advisory lock makes sure that even views that disagree for a moment never run one twice at
once. Heartbeats every third of the lease; a member silent for two thirds of it is gone, so
its syncs are taken over — and run at once — within one lease. A replica that cannot reach
the database owns nothing (``/readyz`` says why) until it can again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from reconciler.daemon.config import DaemonConfig
from reconciler.daemon.execute import init_state
from reconciler.daemon.handover import Handover, RunHere
from reconciler.daemon.runner import in_thread
from reconciler.daemon.runs import Runs
from reconciler.daemon.supervisor import Supervisor
from reconciler.errors import StateError
from reconciler.logging import get_logger
from reconciler.state.location import Opener
from reconciler.state.pg import members
from reconciler.state.pg.database import replica_name

Trigger = Callable[[str, str], bool]
#: runs asked for by name (a trigger this replica owns, or one whose hand-over failed) and
#: runs handed over by another replica run where they land (the sync's lock still keeps them
#: from running twice at once)
RUN_WHERE_ASKED = ("trigger", "forwarded")
#: runs announced to this replica that belong to another: handed to the owner
HAND_OVER = ("webhook",)


class Fleet:
    def __init__(self, database: Callable[[], Any], replica: str, lease: float, names: Callable[[], Iterable[str]],
                 trigger: Trigger, registry: CollectorRegistry | None = None) -> None:
        self.database = database
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
        #: requests handed over to and by this replica (set by :class:`StateService`)
        self.handover: Handover | None = None
        self.log = get_logger(component="fleet", replica=replica)
        r = registry or CollectorRegistry()
        self._held = Gauge("reconciler_replica_held_syncs", "Syncs this replica holds (runs).", ["replica"],
                           registry=r)
        self._taken = Counter("reconciler_lease_takeovers_total",
                              "Syncs this replica took over from a replica that left or died.", ["replica"],
                              registry=r)
        self._held.labels(replica).set_function(lambda: len(self.held()))  # as of the scrape
        self._taken.labels(replica)  # exported at 0 before the first takeover
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
        if reason in HAND_OVER and owner is not None and self.handover is not None:
            self.handover.ask(name, reason)
        return False

    def elsewhere(self, name: str) -> bool:
        """Another live replica owns ``name`` (and we know it: the database answers us)."""
        return self.usable() and self.owner(name) not in (None, self.replica)

    def held(self) -> list[str]:
        return [n for n in self._names() if self.owns(n)]

    async def beat(self) -> None:
        db = self.database
        count = len(self.held())
        try:
            starting = self._last_ok is None
            seen = await in_thread(lambda: members.heartbeat(db(), self.replica, self.lease, count, starting=starting),
                                   "heartbeat")
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
            if self.handover is not None:  # requests whose wake-up this replica missed
                await self.handover.drain()
                await self.handover.collect()

    async def leave(self) -> None:
        if self.handover is not None:
            await self.handover.stop()
        db = self.database
        try:
            await in_thread(lambda: members.leave(db(), self.replica), "leave")
        except StateError as e:
            self.log.warning("fleet.leave_failed", error=str(e))
        self.members = []


class StateService:
    """What the daemon keeps of the state: the :class:`Opener` its runs use and, when the state
    is PostgreSQL, its :class:`Fleet`."""

    def __init__(self, config: DaemonConfig, names: Callable[[], Iterable[str]], trigger: Trigger,
                 registry: CollectorRegistry, runs: Runs, run_here: RunHere) -> None:
        replica = config.replica or replica_name()
        self.opener = Opener(config.location, pool_size=2 * config.workers + 2, name=replica)
        self.fleet = Fleet(self.opener.database, replica, config.lease_seconds, names, trigger,
                           registry) if config.location.shared else None
        if self.fleet is not None:
            self.fleet.handover = Handover(self.fleet, runs, run_here, trigger)

    async def start(self, supervisor: Supervisor) -> None:
        """Set the state up once, before runs race to; know the other replicas before the
        first runs."""
        await in_thread(lambda: init_state(self.opener), "state-init")
        if self.fleet is not None:
            await self.fleet.beat()
            assert self.fleet.handover is not None
            self.fleet.handover.start()
            supervisor.start("replica heartbeat", self.fleet.run)

    def may_run(self, name: str, reason: str, asked: bool) -> bool:
        return self.fleet is None or self.fleet.may_run(name, reason, asked)

    def hand_over(self, name: str) -> tuple[int, dict[str, Any]] | None:
        """A trigger of a sync another replica owns, handed to it; None: run it here."""
        if self.fleet is None or self.fleet.handover is None or not self.fleet.elsewhere(name):
            return None
        return self.fleet.handover.request(name)

    @property
    def problem(self) -> str | None:
        """Why this replica holds no sync now (None: it may run what it holds)."""
        return None if self.fleet is None or self.fleet.problem is None else f"holding no sync: {self.fleet.problem}"

    async def stop(self, abandoned: bool) -> None:
        if self.fleet is not None:
            await self.fleet.leave()
        if not abandoned:  # abandoned runs may still write: the process's exit ends the pool
            self.opener.close()
