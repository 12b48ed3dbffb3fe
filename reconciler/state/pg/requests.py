"""Runs asked of a sync's owner, kept in ``reconciler_requests`` until done.

A trigger or a webhook reaches whichever replica the load balancer picks; the sync belongs to
one replica. The receiver inserts a request *for the sync* (not for a replica) and sends
``NOTIFY reconciler_run`` as a wake-up. A notification is never stored, the row is: every
replica claims the pending requests of the syncs it owns when its listener (re)connects, when
woken, and at every heartbeat, so a request survives a listener that was down and an owner
that died before claiming it (the next owner takes it). Claims skip locked rows, so exactly
one replica takes each. A request someone waits for (a trigger) keeps its row until its
result — the outcome lines ``apply`` prints: key names and actions, never a value — is
written back and read; ``reconciler_run_done`` wakes the waiter. Finished rows are deleted
after :data:`KEEP_FINISHED` seconds, so the table stays small.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from reconciler.state.pg.members import LIVE_SHARE

CHANNEL = "reconciler_run"
DONE_CHANNEL = "reconciler_run_done"
#: finished requests are kept this long for their waiters to read (seconds)
KEEP_FINISHED = 600.0
#: any request older than this is dropped (one for a sync no replica knows any more)
FORGET_AFTER = 86400.0

#: pending, or claimed by a replica no longer live, or by an earlier process of the same name
#: (it died or stopped running it: run it again)
_CLAIMABLE = ("(r.state = 'pending' OR (r.state = 'running' AND NOT EXISTS (SELECT 1 FROM "  # noqa: S608
              "reconciler_replicas m WHERE m.id = r.claimed_by AND m.started_at <= r.claimed_at AND "
              "m.heartbeat_at >= now() - make_interval(secs => m.lease_seconds * "
              + repr(LIVE_SHARE) + "))))")


@dataclass(frozen=True)
class Request:
    id: int
    sync: str
    reason: str
    sender: str
    #: someone waits for the result (a trigger): the row is finished, not deleted
    waited: bool


@dataclass(frozen=True)
class Answer:
    state: str  # pending | running | finished
    claimed_by: str | None
    result: str | None
    lines: list[str]


def ask(db: Any, sync: str, reason: str, sender: str, *, waited: bool) -> int:
    """Ask for a run of ``sync`` by its owner; the request's id. A pending request for the
    same sync is joined (one run answers both)."""
    with db.connection() as conn, conn.transaction():
        row = conn.execute(
            "INSERT INTO reconciler_requests (sync, reason, sender, waited) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (sync) WHERE state = 'pending' DO UPDATE SET "
            "waited = reconciler_requests.waited OR excluded.waited RETURNING id",
            (sync, reason, sender, waited)).fetchone()
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, sync))
    return int(row[0])


def claimable(db: Any) -> list[str]:
    """The syncs with a request waiting for a replica."""
    with db.connection() as conn:
        rows = conn.execute(f"SELECT DISTINCT r.sync FROM reconciler_requests r WHERE {_CLAIMABLE}").fetchall()  # noqa: S608
    return [str(r[0]) for r in rows]


def claim(db: Any, replica: str, syncs: list[str]) -> list[Request]:
    """Take the claimable requests of ``syncs`` (those this replica owns). Requests nobody
    waits for are deleted as they are taken; the others are marked running by ``replica``."""
    if not syncs:
        return []
    with db.connection() as conn, conn.transaction():
        rows = conn.execute(f"SELECT r.id, r.sync, r.reason, r.sender, r.waited FROM reconciler_requests r "  # noqa: S608
                            f"WHERE r.sync = ANY(%s) AND {_CLAIMABLE} ORDER BY r.id FOR UPDATE OF r SKIP LOCKED",
                            (syncs,)).fetchall()
        got = [Request(int(i), str(s), str(why), str(who), bool(w)) for i, s, why, who, w in rows]
        conn.execute("DELETE FROM reconciler_requests WHERE id = ANY(%s)", ([r.id for r in got if not r.waited],))
        conn.execute("UPDATE reconciler_requests SET state = 'running', claimed_by = %s, claimed_at = now() "
                     "WHERE id = ANY(%s)", (replica, [r.id for r in got if r.waited]))
    return got


def claim_one(db: Any, request: int, replica: str) -> bool:
    """The receiver's last resort: take its own request if still nobody has."""
    with db.connection() as conn:
        row = conn.execute("UPDATE reconciler_requests SET state = 'running', claimed_by = %s, claimed_at = now() "
                           "WHERE id = %s AND state = 'pending' RETURNING id", (replica, request)).fetchone()
    return row is not None


def finish(db: Any, request: int, result: str, lines: list[str]) -> None:
    with db.connection() as conn, conn.transaction():
        conn.execute("UPDATE reconciler_requests SET state = 'finished', result = %s, lines = %s::jsonb, "
                     "finished_at = now() WHERE id = %s AND state <> 'finished'",
                     (result, json.dumps(lines), request))
        conn.execute("SELECT pg_notify(%s, %s)", (DONE_CHANNEL, str(request)))


def get(db: Any, request: int) -> Answer | None:
    with db.connection() as conn:
        row = conn.execute("SELECT state, claimed_by, result, lines FROM reconciler_requests WHERE id = %s",
                           (request,)).fetchone()
    if row is None:
        return None
    state, by, result, lines = row
    return Answer(str(state), by, result, [str(x) for x in (lines or [])])


def collect(db: Any, keep: float = KEEP_FINISHED) -> int:
    """Delete finished requests older than ``keep`` seconds, and any older than a day."""
    with db.connection() as conn:
        cur = conn.execute("DELETE FROM reconciler_requests WHERE (state = 'finished' AND finished_at < now() - "
                           "make_interval(secs => %s)) OR created_at < now() - make_interval(secs => %s)",
                           (keep, FORGET_AFTER))
        return int(cur.rowcount or 0)
