"""Whether the daemon is healthy (``/healthz``), and the monitor that pets systemd's watchdog
while it is — and stops the daemon when its scheduler has stopped (nothing would run on time
again; the service manager then starts a fresh one)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from reconciler.daemon.schedule import Schedule
from reconciler.daemon.supervisor import Supervisor
from reconciler.daemon.systemd import Notifier, watchdog_interval

#: how often the monitor looks at the scheduler (seconds)
MONITOR_SECONDS = 1.0


class Health:
    def __init__(self, supervisor: Supervisor, schedule: Schedule, stopping: Callable[[], bool]) -> None:
        self._supervisor = supervisor
        self._schedule = schedule
        self._stopping = stopping

    def _scheduler_stopped(self) -> bool:
        return not self._schedule.running and not self._stopping()

    def check(self) -> tuple[bool, list[str]]:
        """The loop answers (we are running on it); the watcher and scheduler still live."""
        problems = self._supervisor.problems()
        if self._scheduler_stopped():
            problems.append("scheduler stopped")
        return not problems, problems

    async def monitor(self, notifier: Notifier, fatal: Callable[[str], None]) -> None:
        every = watchdog_interval()
        while True:
            if self._scheduler_stopped():
                fatal("scheduler stopped")
                return
            if every is not None and self.check()[0]:
                notifier.notify(watchdog=1)
            await asyncio.sleep(min(every or MONITOR_SECONDS, MONITOR_SECONDS))
