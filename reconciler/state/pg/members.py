"""Replicas sharing the work: a membership table with heartbeats, and a stable assignment.

Each replica upserts its row every heartbeat and reads who else is live (a heartbeat newer
than the lease's two thirds, by the server's clock, so replicas' clocks never matter). Each
sync belongs to the live replica that scores highest for it (rendezvous hashing): every
replica computes the same owner from the same member list, a new replica takes about 1/N of
the syncs from the others, and a dead one's syncs spread over the rest — no leader, no
rebalancing protocol. Views may differ for a moment while a heartbeat lands; the per-sync
advisory lock keeps that from ever running a sync twice at once.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterable
from typing import Any

#: a member counts as live while its last heartbeat is younger than this share of the lease;
#: with heartbeats every third of it, one missed beat is tolerated and a dead member is seen
#: by the others within one lease
LIVE_SHARE = 2 / 3
HEARTBEAT_SHARE = 1 / 3
#: rows of members gone this many leases are deleted
FORGET_AFTER_LEASES = 20


def owner(sync: str, members: Iterable[str]) -> str | None:
    """The member that holds ``sync`` (rendezvous hashing); None when there is none."""
    best: tuple[bytes, str] | None = None
    for m in members:
        score = hashlib.sha256(f"{m}\0{sync}".encode()).digest()
        if best is None or score > best[0]:
            best = (score, m)
    return best[1] if best else None


def heartbeat(db: Any, replica: str, lease: float, held: int) -> list[str]:
    """Say this replica is alive (and how many syncs it holds); the live members, sorted."""
    with db.connection() as conn, conn.transaction():
        conn.execute("INSERT INTO reconciler_replicas (id, host, pid, held) VALUES (%s, %s, %s, %s) "
                     "ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), held = excluded.held",
                     (replica, socket.gethostname(), os.getpid(), held))
        conn.execute("DELETE FROM reconciler_replicas WHERE heartbeat_at < now() - make_interval(secs => %s)",
                     (lease * FORGET_AFTER_LEASES,))
        return _live(conn, lease)


def live(db: Any, lease: float) -> list[str]:
    """The live members, read only (``status``)."""
    if not db.ready:
        return []
    with db.connection() as conn:
        if conn.execute("SELECT to_regclass('reconciler_replicas')").fetchone()[0] is None:
            return []
        return _live(conn, lease)


def _live(conn: Any, lease: float) -> list[str]:
    rows = conn.execute("SELECT id FROM reconciler_replicas WHERE heartbeat_at >= now() - make_interval(secs => %s) "
                        "ORDER BY id", (lease * LIVE_SHARE,)).fetchall()
    return [str(r[0]) for r in rows]


def leave(db: Any, replica: str) -> None:
    """A graceful stop: the others take this replica's syncs at their next heartbeat, not
    after a lease."""
    with db.connection() as conn:
        conn.execute("DELETE FROM reconciler_replicas WHERE id = %s", (replica,))
