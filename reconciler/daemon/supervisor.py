"""Keeps the daemon's long-lived tasks (file watcher, health monitor) alive.

A task that dies silently is the worst failure a daemon can have: the process stays up,
health checks pass, and nothing is reconciled any more. So a long-lived task that ends — by
an exception or by simply returning — is restarted after a pause, and one that keeps dying
(``restarts`` times within ``window`` seconds) is fatal: ``on_fatal`` stops the daemon with a
failure, and systemd starts a fresh one. While a task is down, :meth:`problems` says so, and
``/healthz`` and ``/readyz`` report it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from reconciler.errors import StateError
from reconciler.logging import get_logger

Factory = Callable[[], Awaitable[None]]


class Supervisor:
    def __init__(self, on_fatal: Callable[[str], None], *, restarts: int = 5, window: float = 60.0,
                 pause: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._on_fatal = on_fatal
        self._restarts, self._window, self._pause = restarts, window, pause
        self._clock = clock
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._down: dict[str, str] = {}
        self._stopping = False
        self._log = get_logger(component="supervisor")

    def start(self, name: str, factory: Factory) -> None:
        """Run ``factory()`` as the long-lived task ``name``, restarting it when it ends."""
        self._tasks[name] = asyncio.get_running_loop().create_task(self._keep(name, factory), name=name)

    def problems(self) -> list[str]:
        """Tasks that are down now (restarting, or failed for good)."""
        return [f"{name} {why}" for name, why in sorted(self._down.items())]

    async def _keep(self, name: str, factory: Factory) -> None:
        deaths: list[float] = []
        while True:
            try:
                await factory()
                if self._stopping:
                    return
                self._log.error("daemon.task_ended", task=name)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the type only (a message might quote a file's bytes), unless the state's
                said = {"error": str(e)} if isinstance(e, StateError) else {}
                self._log.error("daemon.task_failed", task=name, error_type=type(e).__name__, **said)
            if self._stopping:
                return
            now = self._clock()
            deaths = [t for t in deaths if now - t < self._window] + [now]
            if len(deaths) > self._restarts:
                self._down[name] = "failed"
                self._log.critical("daemon.task_gave_up", task=name, failures=len(deaths), window=self._window)
                self._on_fatal(f"{name} failed {len(deaths)} times in {self._window:g}s")
                return
            self._down[name] = "restarting"
            await asyncio.sleep(self._pause)
            self._down.pop(name, None)
            self._log.warning("daemon.task_restarted", task=name, failures=len(deaths))

    def stopping(self) -> None:
        """From now on a task that ends is done, not dead (the daemon is stopping its parts)."""
        self._stopping = True

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
