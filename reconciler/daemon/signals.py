"""SIGTERM/SIGINT stop the daemon gracefully; SIGHUP reloads every spec."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable


def handle(loop: asyncio.AbstractEventLoop, *, stop: Callable[[], None], reload: Callable[[], None],
           install: bool) -> None:
    """Install (or remove) the daemon's handlers on ``loop``; a platform without a signal
    is skipped, never an error."""
    for sig, fn in ((signal.SIGTERM, stop), (signal.SIGINT, stop), (signal.SIGHUP, reload)):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            if install:
                loop.add_signal_handler(sig, fn)
            else:
                loop.remove_signal_handler(sig)
