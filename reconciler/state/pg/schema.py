"""The PostgreSQL schema, created and migrated by the backend itself.

Versioned and forward-only: migration N is applied once, in order, and recorded in
``reconciler_schema``. Replicas that start at once serialise on a transaction advisory lock
taken before anything is read, so each migration runs exactly once and a replica never sees
half a schema (DDL is transactional in PostgreSQL). A database at a newer version than this
binary knows is refused: an older replica must not write a schema it does not understand.
Tables carry a ``reconciler_`` prefix, so the state can share a database (and its schema
search path) with other applications.
"""

from __future__ import annotations

from typing import Any

from reconciler.errors import StateError

#: advisory lock keys are (namespace, key) pairs of int4; ours start with "REC"
LOCK_NAMESPACE_SYNC = 0x52454331
LOCK_NAMESPACE_MIGRATE = 0x52454330

MIGRATIONS: tuple[str, ...] = (
    # 1: today's state: inventory, the key check (in meta), the seeds' status fields
    """
    CREATE TABLE reconciler_meta (
        name text PRIMARY KEY,
        value text NOT NULL
    );
    CREATE TABLE reconciler_inventory (
        sync text NOT NULL,
        key text NOT NULL,
        fingerprint text,
        version text,
        properties jsonb NOT NULL DEFAULT '{}',
        PRIMARY KEY (sync, key)
    );
    CREATE TABLE reconciler_status (
        sync text PRIMARY KEY,
        destination text, target text,
        syncStatus text, lastSyncJobId text, lastSyncMessage text, lastSyncedAt text,
        importStatus text, lastImportJobId text, lastImportMessage text, lastImportedAt text,
        removeStatus text, lastRemoveJobId text, lastRemoveMessage text, lastRemovedAt text
    );
    """,
    # 2: replicas that share the work, each with its last heartbeat (server time: no clock skew)
    """
    CREATE TABLE reconciler_replicas (
        id text PRIMARY KEY,
        host text NOT NULL,
        pid integer NOT NULL,
        started_at timestamptz NOT NULL DEFAULT now(),
        heartbeat_at timestamptz NOT NULL DEFAULT now(),
        held integer NOT NULL DEFAULT 0,
        lease_seconds real NOT NULL
    );
    """,
    # 3: runs asked of a sync's owner (a trigger or a webhook that reached another replica),
    # kept until claimed and, for a trigger, until its result is read: NOTIFY only wakes the
    # owner, the row is what is never lost. One pending row per sync (duplicates coalesce).
    """
    CREATE TABLE reconciler_requests (
        id bigserial PRIMARY KEY,
        sync text NOT NULL,
        reason text NOT NULL,
        sender text NOT NULL,
        waited boolean NOT NULL,
        state text NOT NULL DEFAULT 'pending',
        claimed_by text,
        claimed_at timestamptz,
        result text,
        lines jsonb,
        created_at timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz
    );
    CREATE UNIQUE INDEX reconciler_requests_one_pending ON reconciler_requests (sync) WHERE state = 'pending';
    CREATE INDEX reconciler_requests_state ON reconciler_requests (state);
    """,
)

LATEST = len(MIGRATIONS)
_INSUFFICIENT_PRIVILEGE = "42501"


def current_version(conn: Any) -> int | None:
    """The schema version, or None when the backend has never set this database up."""
    if conn.execute("SELECT to_regclass('reconciler_schema')").fetchone()[0] is None:
        return None
    row = conn.execute("SELECT max(version) FROM reconciler_schema").fetchone()
    return int(row[0] or 0)


def _too_new(version: int, where: str) -> StateError:
    return StateError(f"the state database {where} is at schema version {version}, newer than this reconciler "
                      f"knows ({LATEST}); upgrade this replica (an older one never writes a newer schema)")


def migrate(conn: Any, where: str) -> int:
    """Bring the schema to :data:`LATEST`; returns how many migrations this call applied."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (LOCK_NAMESPACE_MIGRATE,))
        version = current_version(conn)
        if version is not None and version > LATEST:
            raise _too_new(version, where)
        if version == LATEST:
            return 0  # no DDL: after the first start the role needs no CREATE on the schema
        try:
            if version is None:
                conn.execute("CREATE TABLE reconciler_schema ("
                             "version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
            for n in range((version or 0) + 1, LATEST + 1):
                conn.execute(MIGRATIONS[n - 1])
                conn.execute("INSERT INTO reconciler_schema (version) VALUES (%s)", (n,))
        except Exception as e:
            if getattr(e, "sqlstate", None) != _INSUFFICIENT_PRIVILEGE:
                raise
            raise StateError(f"the state database {where} is at schema version {version or 0} and this reconciler "
                             f"needs {LATEST}, but its role may not create tables there: grant it CREATE on the "
                             "schema for this start (docs/high-availability.md)") from None
        return LATEST - (version or 0)


def check_readable(conn: Any, where: str) -> bool:
    """Read-only use never migrates: True when the schema is current, False when there is
    none yet (nothing stored: every read is empty); an old or newer schema is an error."""
    version = current_version(conn)
    if version is None or version == 0:
        return False
    if version > LATEST:
        raise _too_new(version, where)
    if version < LATEST:
        raise StateError(f"the state database {where} is at schema version {version}; this reconciler needs "
                         f"{LATEST}: run `reconciler apply` or start the daemon once to migrate it")
    return True
