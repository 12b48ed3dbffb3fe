"""Timers, on APScheduler's asyncio scheduler: each sync's interval (with jitter), its retry
after a failure, and source polls. Jobs only *trigger* work; the runner decides whether and
when a sync actually runs (one at a time, bounded), so a slow reconcile never piles up jobs.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

#: share of the interval added at random to each run, so syncs loaded together spread out
INTERVAL_JITTER = 0.1

Fire = Callable[[str, str], Awaitable[None]]

# APScheduler logs every job execution at INFO through stdlib logging; ours are enough
logging.getLogger("apscheduler").setLevel(logging.WARNING)


def _ts(when: datetime | None) -> float | None:
    return when.timestamp() if when is not None else None


class Schedule:
    def __init__(self, fire: Fire) -> None:
        self._fire = fire
        self._scheduler = AsyncIOScheduler(timezone=UTC, job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": None})
        self._intervals: dict[str, float] = {}

    def start(self) -> None:
        """Call from inside the running event loop."""
        self._scheduler.start()

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    # -- per sync -----------------------------------------------------------------------------
    def every(self, sync: str, seconds: float, phase: float | None = None) -> None:
        """(Re)arm the periodic reconcile; unchanged intervals keep their next run.

        ``phase`` (0..1) places the runs within the jitter window: syncs given the same phase
        and interval come due together (the daemon gives the syncs of one destination target
        one phase, so they share a listing, and different targets spread out); None draws
        the offset at random on every run."""
        if self._intervals.get(sync) == seconds and self._scheduler.get_job(f"interval:{sync}"):
            return
        self._intervals[sync] = seconds
        spread = max(1, int(seconds * INTERVAL_JITTER))
        start = datetime.now(UTC) + timedelta(seconds=seconds)
        if phase is not None:  # on a grid from the epoch: armed at any moment, one phase lands together
            offset = phase * spread
            grid = math.ceil((start.timestamp() - offset) / seconds) * seconds + offset
            start = datetime.fromtimestamp(grid, UTC)
        trigger = IntervalTrigger(seconds=seconds, start_date=start, jitter=spread if phase is None else None,
                                  timezone=UTC)
        self._scheduler.add_job(self._fire, trigger, args=(sync, "interval"), id=f"interval:{sync}",
                                replace_existing=True)

    def retry_in(self, sync: str, delay: float) -> float:
        """Arm one retry ``delay`` seconds from now (replacing an earlier one); its Unix time."""
        when = datetime.now(UTC) + timedelta(seconds=delay)
        self._scheduler.add_job(self._fire, DateTrigger(run_date=when, timezone=UTC), args=(sync, "retry"),
                                id=f"retry:{sync}", replace_existing=True)
        return when.timestamp()

    def cancel_retry(self, sync: str) -> None:
        self._remove(f"retry:{sync}")

    def cancel(self, sync: str) -> None:
        self._intervals.pop(sync, None)
        self._remove(f"interval:{sync}")
        self._remove(f"retry:{sync}")

    def next_run(self, sync: str) -> float | None:
        job = self._scheduler.get_job(f"interval:{sync}")
        return _ts(job.next_run_time) if job is not None else None

    def next_retry(self, sync: str) -> float | None:
        job = self._scheduler.get_job(f"retry:{sync}")
        return _ts(job.next_run_time) if job is not None else None

    # -- polls --------------------------------------------------------------------------------
    def poll(self, key: str, seconds: float, fn: Callable[[], Awaitable[object]]) -> None:
        job_id = f"poll:{key}"
        job = self._scheduler.get_job(job_id)
        if job is not None and getattr(job.trigger, "interval", None) == timedelta(seconds=seconds):
            return
        start = datetime.now(UTC) + timedelta(seconds=seconds)
        self._scheduler.add_job(fn, IntervalTrigger(seconds=seconds, start_date=start, timezone=UTC),
                                id=job_id, replace_existing=True)

    def polls(self) -> set[str]:
        return {j.id.removeprefix("poll:") for j in self._scheduler.get_jobs() if j.id.startswith("poll:")}

    def cancel_poll(self, key: str) -> None:
        self._remove(f"poll:{key}")

    def _remove(self, job_id: str) -> None:
        with contextlib.suppress(JobLookupError):
            self._scheduler.remove_job(job_id)
