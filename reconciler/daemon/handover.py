"""Runs that reach a replica which does not own the sync, handed to whichever replica does
(:mod:`reconciler.state.pg.requests`: a row per request, ``NOTIFY`` only as a wake-up).

The receiver of a trigger answers its caller with a run id of its own at once and waits for
the request's row to be finished by the owner, then answers ``GET /runs/<id>`` from it. The
owner claims the requests of the syncs it owns when woken, when its listener (re)connects and
at every heartbeat, and runs each through its own runner (a trigger as ``reconciler trigger``
would run it there, a webhook as a webhook). A trigger no owner claims within 1.5 leases (the
owner died between the wake-up and the claim, and nobody has taken its syncs yet) is claimed
by its receiver, which runs it itself under the sync's lock; so does a receiver that cannot
reach the database at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from reconciler.daemon.runner import in_thread
from reconciler.daemon.runs import Runs
from reconciler.errors import StateError
from reconciler.state.pg import notify, requests

if TYPE_CHECKING:
    from reconciler.daemon.fleet import Fleet

#: how often a waiting receiver looks at its request when no wake-up came (seconds)
POLL_SECONDS = 1.0
#: a trigger nobody claimed in this many leases is run by its receiver: a dead owner's syncs
#: (and requests) are taken over within one lease of its last heartbeat, so its heir comes first
UNCLAIMED_LEASES = 1.5
#: a state write that failed (the database away for a moment) is tried again this often
RETRY_SECONDS, RETRIES = 1.0, 30

RunHere = Callable[[str], tuple[int, dict[str, Any]]]
Trigger = Callable[[str, str], bool]


class Handover:
    """Lives on the daemon's loop; blocking database calls go to threads."""

    def __init__(self, fleet: Fleet, runs: Runs, run_here: RunHere, trigger: Trigger) -> None:
        self.fleet = fleet
        self.runs = runs
        self._run_here = run_here
        self._trigger = trigger
        self._db = fleet.database
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listener: notify.Listener | None = None
        self._done: dict[int, asyncio.Event] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._draining = self._again = False
        self.log = fleet.log

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._listener = notify.Listener(self._db(), self.fleet.replica, self._wake, self._woken_done)
        self._listener.start()

    async def stop(self) -> None:
        """Requests this replica claimed and did not finish stay claimed by a replica that is
        leaving: the sync's next owner takes them again."""
        if self._listener is not None:
            listener, self._listener = self._listener, None
            await in_thread(listener.stop, "listener-stop")
        for task in list(self._tasks):
            task.cancel()

    def _spawn(self, coro: Coroutine[Any, Any, Any], what: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=what)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- wake-ups (from the listener's thread) -------------------------------------------------
    def _wake(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(lambda: self._spawn(self.drain(), "requests"))

    def _woken_done(self, request: int) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(lambda: self._done[request].set() if request in self._done else None)

    # -- the owner -------------------------------------------------------------------------------
    async def drain(self) -> None:
        """Claim and start the requests of the syncs this replica owns (one drain at a time;
        a wake-up during one makes it look again)."""
        if self._draining:
            self._again = True
            return
        self._draining = True
        try:
            self._again = True
            while self._again:
                self._again = False
                await self._drain_once()
        finally:
            self._draining = False

    async def _drain_once(self) -> None:
        if not self.fleet.usable():
            return
        db, me = self._db, self.fleet.replica
        try:
            mine = [s for s in await in_thread(lambda: requests.claimable(db()), "requests") if self.fleet.owns(s)]
            got = await in_thread(lambda: requests.claim(db(), me, mine), "requests") if mine else []
        except StateError as e:
            self.log.warning("fleet.requests_failed", error=str(e))
            return
        for req in got:
            self.log.info("fleet.request_claimed", sync=req.sync, trigger=req.reason, sender=req.sender,
                          request=req.id)
            self._start(req)

    def _start(self, req: requests.Request) -> None:
        if not req.waited:  # a webhook: run as one (nobody waits for its result)
            self._trigger(req.sync, "forwarded")
            return
        status, answer = self._run_here(req.sync)
        if status != 202:
            self._finish(req.id, "failure", [f"{req.sync}: not run by {self.fleet.replica}: "
                                             f"{answer.get('error') or status}"])
            return
        self.runs.when_done(str(answer["run"]), lambda view: self._finish(req.id, str(view.get("result")),
                                                                          list(view.get("lines") or [])))

    def _finish(self, request: int, result: str, lines: list[str]) -> None:
        if self.runs.closed is not None:
            return  # stopping: left to the sync's next owner (the claim of a replica gone)
        db = self._db

        async def write() -> None:
            for _ in range(RETRIES):
                try:
                    await in_thread(lambda: requests.finish(db(), request, result, lines), "request-finish")
                    return
                except StateError as e:
                    self.log.warning("fleet.request_finish_failed", request=request, error=str(e))
                    await asyncio.sleep(RETRY_SECONDS)

        self._spawn(write(), "request-finish")

    async def collect(self) -> None:
        db = self._db
        with contextlib.suppress(StateError):
            await in_thread(lambda: requests.collect(db()), "requests-gc")

    # -- the receiver ----------------------------------------------------------------------------
    def ask(self, sync: str, reason: str) -> None:
        """A webhook for a sync another replica owns: its owner runs it."""
        self._spawn(self._ask(sync, reason, None), "hand-over")

    def request(self, sync: str) -> tuple[int, dict[str, Any]]:
        """``POST /syncs/<name>/trigger`` for a sync another replica owns: a run id here at
        once; the owner runs it and this replica answers for it."""
        run_id = self.runs.handed(sync)
        self._spawn(self._ask(sync, "trigger", run_id), "hand-over")
        return 202, {"sync": sync, "run": run_id, "joined": False, "owner": self.fleet.owner(sync)}

    async def _ask(self, sync: str, reason: str, run_id: str | None) -> None:
        db, me = self._db, self.fleet.replica
        try:
            request = await in_thread(lambda: requests.ask(db(), sync, reason, me, waited=run_id is not None),
                                      "hand-over")
        except StateError as e:
            self.log.warning("fleet.hand_over_failed", sync=sync, trigger=reason, error=str(e),
                             note="running it here, under the sync's lock")
            self._here(sync, run_id)
            return
        self.log.info("fleet.handed_over", sync=sync, trigger=reason, owner=self.fleet.owner(sync), request=request)
        if run_id is not None:
            await self._wait(sync, request, run_id)

    def _here(self, sync: str, run_id: str | None) -> None:
        if run_id is None:
            self._trigger(sync, "forwarded")
            return
        status, answer = self._run_here(sync)
        if status != 202:
            self.runs.settle(run_id, "failure", [f"{sync}: not run: {answer.get('error') or status}"])
        else:
            self.runs.when_done(str(answer["run"]), lambda view: self.runs.settle(
                run_id, str(view.get("result")), list(view.get("lines") or [])))

    async def _wait(self, sync: str, request: int, run_id: str) -> None:
        """Until the request is finished: woken by ``reconciler_run_done``, looking anyway
        every :data:`POLL_SECONDS`."""
        db, me = self._db, self.fleet.replica
        event = self._done.setdefault(request, asyncio.Event())
        unclaimed_until = time.monotonic() + UNCLAIMED_LEASES * self.fleet.lease
        try:
            while self.runs.closed is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), POLL_SECONDS)
                event.clear()
                try:
                    answer = await in_thread(lambda: requests.get(db(), request), "request-wait")
                except StateError:
                    continue
                if answer is None:
                    self.runs.settle(run_id, "failure", [f"{sync}: the request to run it was lost (its row is gone)"])
                    return
                if answer.state == "finished":
                    self.runs.settle(run_id, answer.result or "failure", answer.lines)
                    return
                if answer.state == "pending" and time.monotonic() > unclaimed_until:
                    with contextlib.suppress(StateError):
                        if await in_thread(lambda: requests.claim_one(db(), request, me), "request-claim"):
                            self.log.warning("fleet.unclaimed", sync=sync, request=request,
                                             note="no owner took it in time: running it here")
                            self._start(requests.Request(request, sync, "trigger", me, True))
                            unclaimed_until = float("inf")
        finally:
            self._done.pop(request, None)
