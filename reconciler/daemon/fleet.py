"""This replica's place among the replicas sharing a PostgreSQL state (no leader).

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

from reconciler.daemon.runner import in_thread
from reconciler.errors import StateError
from reconciler.logging import get_logger
from reconciler.state.pg import members

Takeover = Callable[[list[str]], None]


class Fleet:
    def __init__(self, database: Callable[[], Any], replica: str, lease: float, names: Callable[[], Iterable[str]],
                 on_takeover: Takeover, registry: CollectorRegistry | None = None) -> None:
        self._database = database
        self.replica = replica
        self.lease = lease
        self._names = names
        self._on_takeover = on_takeover
        #: the live members as last seen (sorted); empty while the database is out of reach
        self.members: list[str] = []
        self._last_ok: float | None = None
        #: why the last heartbeat failed (None: it did not)
        self.problem: str | None = None
        self.takeovers = 0
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
                self._on_takeover(gained)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.beat()

    async def leave(self) -> None:
        db = self._database
        try:
            await in_thread(lambda: members.leave(db(), self.replica), "leave")
        except StateError as e:
            self.log.warning("fleet.leave_failed", error=str(e))
        self.members = []
