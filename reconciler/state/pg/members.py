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

from reconciler.logging import get_logger

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


def heartbeat(db: Any, replica: str, lease: float, held: int, *, starting: bool = False) -> list[str]:
    """Say this replica is alive (and how many syncs it holds); the live members, sorted.
    ``starting``: this process's first beat (a replica restarted under the same name is a new
    one: what the old one had claimed is claimable again)."""
    me = (socket.gethostname(), os.getpid())
    with db.connection() as conn, conn.transaction():
        db.verify_key(conn)  # a replica whose key is no longer the fleet's must hold nothing
        row = conn.execute("SELECT host, pid FROM reconciler_replicas WHERE id = %s FOR UPDATE", (replica,)).fetchone()
        if row is not None and not starting and (row[0], row[1]) != me:
            # our row, last written by another live process: two replicas were given one name
            get_logger(component="fleet", replica=replica).error(
                "fleet.replica_name_taken", message=f"another process, {row[0]}:{row[1]}, runs as replica {replica} "
                "too: both run the syncs of that name (one at a time); give each replica its own --replica-name")
        conn.execute("INSERT INTO reconciler_replicas (id, host, pid, held, lease_seconds) VALUES (%s, %s, %s, %s, %s) "
                     "ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), held = excluded.held, "
                     "lease_seconds = excluded.lease_seconds, pid = excluded.pid, started_at = CASE WHEN %s "
                     "THEN now() ELSE reconciler_replicas.started_at END",
                     (replica, *me, held, lease, starting))
        # each row by its own lease, as liveness is: a live replica with a longer lease stays
        conn.execute("DELETE FROM reconciler_replicas WHERE heartbeat_at < now() - "
                     "make_interval(secs => lease_seconds * %s)", (FORGET_AFTER_LEASES,))
        return _live(conn)


def live(db: Any) -> list[str]:
    """The live members, read only (``status``)."""
    if not db.ready:
        return []
    with db.connection() as conn:
        if conn.execute("SELECT to_regclass('reconciler_replicas')").fetchone()[0] is None:
            return []
        return _live(conn)


def _live(conn: Any) -> list[str]:
    """Each member by its own lease: every viewer agrees, whatever lease it was started with."""
    rows = conn.execute("SELECT id FROM reconciler_replicas WHERE heartbeat_at >= now() - "
                        "make_interval(secs => lease_seconds * %s) ORDER BY id", (LIVE_SHARE,)).fetchall()
    return [str(r[0]) for r in rows]


def holders(db: Any, syncs: Iterable[str]) -> dict[str, str]:
    """Which replica holds each sync: the one running it now (its lock's session), else its
    owner among the live replicas; syncs no live replica holds are left out."""
    from reconciler.state.pg.database import lock_key

    names = list(syncs)
    alive = live(db)
    with db.connection() as conn:
        running = db.holders(conn)
    out = {n: running[lock_key(n)] for n in names if lock_key(n) in running}
    for n in names:
        if n not in out and alive:
            out[n] = owner(n, alive) or ""
    return {n: who for n, who in out.items() if who}


def leave(db: Any, replica: str) -> None:
    """A graceful stop: the others take this replica's syncs at their next heartbeat, not
    after a lease."""
    with db.connection() as conn:
        conn.execute("DELETE FROM reconciler_replicas WHERE id = %s", (replica,))
