"""Fencing a run's writes with its lock's session (docs/high-availability.md, "Fencing").

A sync's lock is a session advisory lock: the server frees it when the session ends, and a
replica cut off from the database (but not from the destination) would not know its session
ended. The server cannot end it sooner than :func:`server_bound` after it last heard from
the replica — the session's own settings say so (TCP keepalives: idle + interval x count;
``tcp_user_timeout``; ``idle_session_timeout``). So the holder confirms on the lock's own
connection, every :data:`CONFIRM_SHARE` of that bound, that the server still holds the lock
for this session, and counts a confirmation from the moment the question was *sent*. Once
the last one is older than :data:`FENCE_SHARE` of the bound (or a confirmation fails, or the
server speaks first: it ended the session), :meth:`Fence.is_set` is true for good, and the
engine starts no further destination write (the contract's ``stopping``). The difference,
(1 - FENCE_SHARE) x bound, is the margin left to a write already on the wire.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
from typing import Any

from reconciler.logging import get_logger

#: confirm every this share of the server's bound; stop writing after this share of it
CONFIRM_SHARE, FENCE_SHARE = 0.2, 0.6
#: no two confirmations closer than this (a connection that keeps being readable)
MIN_GAP = 0.2

_SETTINGS = ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count", "tcp_user_timeout",
             "idle_session_timeout")


#: the settings' values, read with the lock itself (no extra round trip)
SETTINGS = ("(SELECT json_object_agg(name, setting) FROM pg_settings WHERE name IN ('tcp_keepalives_idle', "
            "'tcp_keepalives_interval', 'tcp_keepalives_count', 'tcp_user_timeout', 'idle_session_timeout'))")


def server_bound(settings: dict[str, str] | None, fallback: float) -> float:
    """Seconds: the earliest the server may end this session after it last heard from us,
    from the session's settings in their base units (seconds; milliseconds for the two
    timeouts); ``fallback`` when none applies (a Unix socket has no keepalives)."""
    got = {n: float(v) for n, v in (settings or {}).items()}
    idle, interval, count = (got.get(n, 0.0) for n in _SETTINGS[:3])
    bounds = [idle + interval * count] if idle > 0 and interval > 0 and count > 0 else []
    bounds += [got[n] / 1000.0 for n in _SETTINGS[3:] if got.get(n, 0.0) > 0]
    return min(bounds) if bounds else fallback


class Fence:
    """A held lock's fence: :meth:`is_set` once writes must stop, :attr:`lost` says why.

    ``confirm`` runs on the fence's thread and raises (or returns False) when the lock can no
    longer be vouched for; ``confirmed`` is when the lock was taken (monotonic, as sent)."""

    def __init__(self, conn: Any, confirm: Any, bound: float, confirmed: float, errors: Any) -> None:
        self._conn = conn
        self._confirm = confirm
        self._errors = errors
        self.bound = bound
        self.limit = bound * FENCE_SHARE
        self.every = bound * CONFIRM_SHARE
        self._confirmed = confirmed
        self._lost: str | None = None
        self._released = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="lock-fence", daemon=True)
        self._thread.start()

    def is_set(self) -> bool:
        """True (for good) once this run must start no further write."""
        if self._lost is None:
            age = time.monotonic() - self._confirmed
            if age > self.limit:
                self._lost = (f"its database session was last confirmed {age:.1f}s ago, and the database may free the "
                              f"lock {self.bound:g}s after it last heard from this replica: stopped writing")
        return self._lost is not None

    @property
    def lost(self) -> str | None:
        self.is_set()
        return self._lost

    def _run(self) -> None:
        last = 0.0
        # wake at the next confirmation, at release, or at once when the server speaks unasked
        # (it ended the session: a notice, then EOF); poll, not select: any fd number
        poller = select.poll()
        with contextlib.suppress(OSError, ValueError):
            poller.register(self._conn.fileno(), select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        while not self._released.is_set():
            with contextlib.suppress(OSError):
                poller.poll(self.every * 1000)
            if self._released.is_set():
                return
            time.sleep(max(0.0, last + MIN_GAP - time.monotonic()))
            sent = last = time.monotonic()
            try:
                held = self._confirm()
            except self._errors as e:
                text = (str(e).strip().splitlines() or [type(e).__name__])[0]
                self._lose(f"its database session failed: {text}")
                return
            if not held:
                self._lose("the database no longer holds it for this replica's session")
                return
            if self._lost is None:
                self._confirmed = sent

    def _lose(self, why: str) -> None:
        if self._lost is None:
            self._lost = why
        get_logger().warning("state.lock_lost", reason=self._lost)

    def release(self) -> None:
        """Stop confirming (before the lock is let go); waits for a confirmation under way."""
        self._released.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        self._thread.join()
        os.close(self._wake_r)
        os.close(self._wake_w)
