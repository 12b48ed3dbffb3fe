"""Who runs when: a sync never runs twice at once (a trigger during a run queues exactly one
rerun), at most ``workers`` syncs run overall and ``per_connection`` per destination
connection. The engine is synchronous, so each run gets its own thread; the event loop only
waits for it.

Daemon threads, not a ThreadPoolExecutor: an executor's threads are joined at interpreter
exit, so a write stuck past the shutdown timeout would hold the process forever. Abandoning
it is safe because the engine records every write as it lands.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

from reconciler.logging import get_logger

T = TypeVar("T")


async def in_thread(fn: Callable[[], T], name: str) -> T:
    """Run ``fn`` on a fresh daemon thread and await its result."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[T] = loop.create_future()

    def settle(ok: bool, value: object) -> None:
        if fut.done():
            return
        if ok:
            fut.set_result(value)  # type: ignore[arg-type]
        else:
            fut.set_exception(value)  # type: ignore[arg-type]

    def target() -> None:
        try:
            result: object = fn()
            ok = True
        except BaseException as e:
            result, ok = e, False
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            loop.call_soon_threadsafe(settle, ok, result)

    threading.Thread(target=target, name=name, daemon=True).start()
    return await fut


class Runner:
    """Serialises runs per sync and bounds them; ``work(name, reason)`` does one run."""

    def __init__(self, work: Callable[[str, str], Awaitable[None]], connection_of: Callable[[str], str | None],
                 *, workers: int = 4, per_connection: int = 2) -> None:
        self._work = work
        self._connection_of = connection_of
        self._global = asyncio.Semaphore(max(1, workers))
        self._per_connection = max(1, per_connection)
        self._conn_sems: dict[str, asyncio.Semaphore] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._pending: dict[str, str] = {}
        self._started: set[str] = set()
        self.accepting = True
        self._log = get_logger(component="runner")

    @property
    def running(self) -> set[str]:
        """Syncs with a run queued or in progress."""
        return set(self._tasks)

    def idle(self) -> bool:
        return not self._tasks

    def trigger(self, name: str, reason: str) -> bool:
        """Ask for a run; False when shutting down. Coalesces with a run already queued."""
        if not self.accepting:
            return False
        if name in self._tasks:
            self._pending.setdefault(name, reason)
            return True
        self._tasks[name] = asyncio.get_running_loop().create_task(self._loop(name, reason), name=f"sync:{name}")
        return True

    async def _loop(self, name: str, reason: str) -> None:
        try:
            while True:
                await self._once(name, reason)
                nxt = self._pending.pop(name, None)
                if nxt is None or not self.accepting:
                    return
                reason = nxt
        finally:
            self._tasks.pop(name, None)
            self._pending.pop(name, None)

    async def _once(self, name: str, reason: str) -> None:
        conn = self._connection_of(name) or ""
        sem = self._conn_sems.setdefault(conn, asyncio.Semaphore(self._per_connection))
        async with sem, self._global:
            if not self.accepting:
                return
            self._started.add(name)
            try:
                await self._work(name, reason)
            except Exception as e:  # one sync's bug must not stop the others
                self._log.error("reconcile.crashed", sync=name, error_type=type(e).__name__)
            finally:
                self._started.discard(name)

    async def drain(self, timeout: float) -> list[str]:
        """Stop taking work and wait up to ``timeout`` for runs in progress; the names of
        those still running afterwards."""
        self.accepting = False
        self._pending.clear()
        for name, task in list(self._tasks.items()):
            if name not in self._started:  # still queued for a worker: never started, nothing to finish
                task.cancel()
        tasks = list(self._tasks.values())
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        return sorted(n for n, t in self._tasks.items() if not t.done())
