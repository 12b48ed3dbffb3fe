"""Runs announced to one replica and handed to the sync's owner (``LISTEN``/``NOTIFY``).

A webhook reaches whichever replica the load balancer picks; the sync it names belongs to
one replica. The receiver sends ``NOTIFY reconciler_run`` naming the owner, and the owner,
which listens on a connection of its own, runs it. Notifications are delivered to listeners
only, at commit, and never stored: a replica that is not listening at that moment misses it —
which is why a sender that cannot notify runs the sync itself (under its lock).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from reconciler.errors import StateError
from reconciler.logging import get_logger

CHANNEL = "reconciler_run"
Handler = Callable[[str, str], None]


def send(db: Any, to: str, sync: str, reason: str, sender: str) -> None:
    """Ask replica ``to`` to run ``sync``. Raises StateError when the database is away."""
    payload = json.dumps({"to": to, "sync": sync, "reason": reason, "from": sender})
    with db.connection() as conn:
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))


class Listener:
    """A thread that listens for runs addressed to ``replica`` and hands them to ``handle``
    (called on the listener's thread); it reconnects until stopped."""

    def __init__(self, db: Any, replica: str, handle: Handler) -> None:
        self._db = db
        self._replica = replica
        self._handle = handle
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
                self.listening.set()
                failing = False
                while not self._stop.is_set():
                    for note in conn.notifies(timeout=0.5):
                        self._deliver(note.payload)
            except (StateError, self._db.errors) as e:
                self.listening.clear()
                if not failing:
                    self.log.warning("fleet.listen_failed", error=(str(e).splitlines() or [type(e).__name__])[0])
                failing = True
                self._stop.wait(1.0)
            finally:
                if conn is not None:
                    conn.close()

    def _deliver(self, payload: str) -> None:
        try:
            msg = json.loads(payload)
        except ValueError:
            return
        if isinstance(msg, dict) and msg.get("to") == self._replica and isinstance(msg.get("sync"), str):
            self.log.debug("fleet.forwarded", sync=msg["sync"], trigger=msg.get("reason"), sender=msg.get("from"))
            self._handle(msg["sync"], str(msg.get("reason")))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
