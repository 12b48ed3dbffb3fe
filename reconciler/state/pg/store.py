"""The state in PostgreSQL, with the SQLite store's contents and meaning (the
:class:`~reconciler.state.backend.StateBackend` contract): each call is one statement or one
transaction on a pooled connection, so one store serves every worker thread of a daemon."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from types import MappingProxyType

from reconciler.errors import StateError
from reconciler.model import Fingerprinter, InventoryEntry
from reconciler.state.backend import Lease
from reconciler.state.pg.database import Database
from reconciler.state.records import STATUS_COLUMNS, SyncStatus

_COLS = ", ".join(STATUS_COLUMNS)


class PostgresStore:
    """A view of one :class:`Database`; closes it only if it owns it (the CLI's one-shot use)."""

    reset_notice: str | None = None

    def __init__(self, db: Database, *, owns: bool = True) -> None:
        self.db = db
        self.readonly = db.readonly
        self._owns = owns

    @property
    def fingerprinter(self) -> Fingerprinter:
        return self.db.fingerprinter

    def describe(self) -> str:
        return f"PostgreSQL state at {self.db.where}"

    def exists(self) -> bool:
        return self.db.ready

    def _writable(self) -> None:
        if self.readonly:
            raise StateError("state store is read-only")

    # -- inventory ------------------------------------------------------------------------
    def inventory(self, sync: str) -> dict[str, InventoryEntry]:
        if not self.db.ready:
            return {}
        with self.db.connection() as conn:
            rows = conn.execute("SELECT key, fingerprint, version, properties FROM reconciler_inventory "
                                "WHERE sync = %s", (sync,)).fetchall()
        return {k: InventoryEntry(k, fp, ver, MappingProxyType(dict(props or {}))) for k, fp, ver, props in rows}

    def put_inventory(self, sync: str, entries: Mapping[str, InventoryEntry]) -> None:
        if not entries:
            return
        self._writable()
        rows = [(sync, e.key, e.fingerprint, e.version, json.dumps(dict(e.properties), sort_keys=True))
                for e in entries.values()]
        with self.db.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO reconciler_inventory (sync, key, fingerprint, version, properties) "
                "VALUES (%s, %s, %s, %s, %s::jsonb) ON CONFLICT (sync, key) DO UPDATE SET "
                "fingerprint = excluded.fingerprint, version = excluded.version, properties = excluded.properties",
                rows)

    def drop_inventory(self, sync: str, keys: list[str] | None = None) -> None:
        self._writable()
        if keys is not None and not keys:
            return
        with self.db.connection() as conn:
            if keys is None:
                conn.execute("DELETE FROM reconciler_inventory WHERE sync = %s", (sync,))
            else:
                conn.execute("DELETE FROM reconciler_inventory WHERE sync = %s AND key = ANY(%s)", (sync, keys))

    # -- status ---------------------------------------------------------------------------
    def status(self, sync: str) -> SyncStatus:
        if not self.db.ready:
            return SyncStatus(sync)
        with self.db.connection() as conn:
            row = conn.execute(f"SELECT {_COLS} FROM reconciler_status WHERE sync = %s",  # noqa: S608
                               (sync,)).fetchone()
        return SyncStatus(*row) if row else SyncStatus(sync)

    def all_status(self) -> list[SyncStatus]:
        if not self.db.ready:
            return []
        with self.db.connection() as conn:
            rows = conn.execute(f"SELECT {_COLS} FROM reconciler_status ORDER BY sync").fetchall()  # noqa: S608
        return [SyncStatus(*r) for r in rows]

    def update_status(self, sync: str, **changes: str | None) -> SyncStatus:
        unknown = set(changes) - set(STATUS_COLUMNS)
        if unknown:
            raise StateError(f"unknown status fields: {sorted(unknown)}")
        self._writable()
        # one statement, not a read and a write: only the fields given change on a known sync
        given = [c for c in STATUS_COLUMNS[1:] if c in changes]
        cols = ", ".join(["sync", *given])
        marks = ", ".join("%s" for _ in range(len(given) + 1))
        sets = ", ".join(f"{c} = excluded.{c}" for c in given) or "sync = excluded.sync"
        with self.db.connection() as conn:
            row = conn.execute(f"INSERT INTO reconciler_status ({cols}) VALUES ({marks}) "  # noqa: S608
                               f"ON CONFLICT (sync) DO UPDATE SET {sets} RETURNING {_COLS}",
                               (sync, *(changes[c] for c in given))).fetchone()
        return SyncStatus(*row)

    def forget(self, sync: str) -> None:
        self._writable()
        with self.db.connection() as conn, conn.transaction():
            conn.execute("DELETE FROM reconciler_inventory WHERE sync = %s", (sync,))
            conn.execute("DELETE FROM reconciler_status WHERE sync = %s", (sync,))

    # -- replicas -------------------------------------------------------------------------
    def hold(self, sync: str, *, wait: float = 10.0) -> contextlib.AbstractContextManager[Lease]:
        return self.db.hold(sync, wait=wait)

    def holders(self, syncs: list[str]) -> dict[str, str]:
        if not self.db.ready:
            return {}
        from reconciler.state.pg import members

        return members.holders(self.db, syncs)

    def close(self) -> None:
        if self._owns:
            self.db.close()
