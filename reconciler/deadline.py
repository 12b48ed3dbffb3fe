"""One deadline per sync run, seen by every retry loop of that run.

A destination that accepts a connection and never answers would otherwise keep a run busy
for attempts x read timeout. The engine starts the clock when a run starts; every place that
is about to wait and try again (botocore's retry hook, our own HTTP retry loops) calls
:func:`check` first, and logs that it is waiting, so a stuck run is never silent and ends
at its deadline instead of running out its retries. Progress is never cut short: a run
that keeps getting answers finishes however long it takes.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from reconciler.errors import DeadlineExceeded, Interrupted

#: (monotonic deadline, seconds allowed) of the run in this context; None outside a run
_deadline: ContextVar[tuple[float, float] | None] = ContextVar("reconciler_deadline", default=None)
#: set when the run is asked to stop (Ctrl-C): no retry starts after that
_stop: ContextVar[threading.Event | None] = ContextVar("reconciler_deadline_stop", default=None)


@contextlib.contextmanager
def run(seconds: float | None, stop: threading.Event | None = None) -> Iterator[None]:
    """The body runs under a deadline ``seconds`` from now (None: no deadline); once ``stop``
    is set, a retry is given up like one past the deadline (an interrupted run that is still
    reading would otherwise retry a silent endpoint until its deadline)."""
    token = _deadline.set((time.monotonic() + seconds, seconds) if seconds else None)
    stop_token = _stop.set(stop)
    try:
        yield
    finally:
        _stop.reset(stop_token)
        _deadline.reset(token)


def remaining() -> float | None:
    d = _deadline.get()
    return None if d is None else d[0] - time.monotonic()


def check(what: str, wait: float = 0.0) -> None:
    """Raise if waiting ``wait`` more seconds before trying ``what`` again would pass the
    run's deadline."""
    stop = _stop.get()
    if stop is not None and stop.is_set():
        raise Interrupted(f"{what}: not retried, the run was interrupted")
    d = _deadline.get()
    if d is not None and time.monotonic() + wait > d[0]:
        raise DeadlineExceeded(f"{what}: gave up retrying, this sync run's deadline of {d[1]:g}s has passed "
                               "(the endpoint is slow or not answering; the next run tries again)")


def pause(call: str, attempt: int, seconds: float, sleep: Callable[[float], None], *,
          event: str = "destination.retry", **where: Any) -> None:
    """Before attempt ``attempt`` of ``call``: give up if waiting would pass the run's
    deadline; otherwise say that we wait (one log line a retry) and wait."""
    check(f"{call} (attempt {attempt})", seconds)
    from reconciler.logging import get_logger

    get_logger(**where).warning(event, call=call, attempt=attempt, wait=round(seconds, 2))
    sleep(seconds)
