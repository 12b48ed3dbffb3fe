"""The wake-ups of handed-over runs (``LISTEN``/``NOTIFY``, see :mod:`reconciler.state.pg.requests`).

Each replica listens on a connection of its own for two things: a request is pending
(``reconciler_run``: look for requests of the syncs it owns) and a request is done
(``reconciler_run_done``: a waiter here may answer its caller). A notification reaches only
sessions listening at that moment and is never stored, so it is only ever a hint: the
request rows are the truth, and the listener asks to look at them each time it (re)connects.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from reconciler.errors import StateError
from reconciler.logging import get_logger
from reconciler.state.pg.requests import CHANNEL, DONE_CHANNEL


class Listener:
    """A thread that calls ``pending()`` when requests may wait (at each connect too) and
    ``done(id)`` when a request finished; both on the listener's thread. It reconnects
    until stopped."""

    def __init__(self, db: Any, replica: str, pending: Callable[[], None], done: Callable[[int], None]) -> None:
        self._db = db
        self._pending = pending
        self._done = done
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="state-listener", daemon=True)
        self.listening = threading.Event()
        self.log = get_logger(component="fleet", replica=replica)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        failing = False
        while not self._stop.is_set():
            conn = None
            try:
                conn = self._db.connect()
                conn.execute(f"LISTEN {CHANNEL}")
                conn.execute(f"LISTEN {DONE_CHANNEL}")
                self.listening.set()
                if failing:
                    self.log.info("fleet.listening")
                failing = False
                self._pending()  # whatever was asked while we were not listening
                while not self._stop.is_set():
                    for note in conn.notifies(timeout=0.5):
                        self._deliver(note.channel, note.payload)
            except (StateError, self._db.errors) as e:
                self.listening.clear()
                if not failing:
                    self.log.warning("fleet.listen_failed", error=(str(e).splitlines() or [type(e).__name__])[0])
                failing = True
                self._stop.wait(1.0)
            finally:
                if conn is not None:
                    conn.close()

    def _deliver(self, channel: str, payload: str) -> None:
        if channel == DONE_CHANNEL:
            if payload.isdigit():
                self._done(int(payload))
        else:
            self._pending()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
