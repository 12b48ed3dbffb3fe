"""SQLite state: per-sync inventory (keyed fingerprints + destination versions) and status.

State is a cache plus an inventory. Losing it costs API calls (values are re-read) and the
"created by reconciler" labels, never correctness: the destination is always re-listed.
No value is ever stored; fingerprints are HMACs under a key that lives beside the database.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sqlite3
import stat
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from types import MappingProxyType

from reconciler.model import Fingerprinter, InventoryEntry

DB_NAME = "state.db"
KEY_NAME = "fingerprint.key"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS inventory (
    sync TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT,
    version TEXT,
    properties TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (sync, key)
);
CREATE TABLE IF NOT EXISTS status (
    sync TEXT PRIMARY KEY,
    destination TEXT,
    target TEXT,
    syncStatus TEXT,
    lastSyncJobId TEXT,
    lastSyncMessage TEXT,
    lastSyncedAt TEXT,
    importStatus TEXT,
    lastImportJobId TEXT,
    lastImportMessage TEXT,
    lastImportedAt TEXT,
    removeStatus TEXT,
    lastRemoveJobId TEXT,
    lastRemoveMessage TEXT,
    lastRemovedAt TEXT
);
"""


class StateError(Exception):
    pass


@dataclass(frozen=True)
class SyncStatus:
    """The seeds' status fields for one sync (None = never happened)."""

    sync: str
    destination: str | None = None
    target: str | None = None
    syncStatus: str | None = None
    lastSyncJobId: str | None = None
    lastSyncMessage: str | None = None
    lastSyncedAt: str | None = None
    importStatus: str | None = None
    lastImportJobId: str | None = None
    lastImportMessage: str | None = None
    lastImportedAt: str | None = None
    removeStatus: str | None = None
    lastRemoveJobId: str | None = None
    lastRemoveMessage: str | None = None
    lastRemovedAt: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


_STATUS_COLUMNS = tuple(f.name for f in fields(SyncStatus))


def _load_or_create_key(path: Path) -> bytes:
    """Read the key, or create it so that two processes starting at once agree on one key:
    written whole to a temp file (0600), then linked into place, which fails if one exists."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        fd, tmp = tempfile.mkstemp(prefix=".fingerprint-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(32))
                f.flush()
                os.fsync(f.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
        data = path.read_bytes()
    if len(data) < 16:
        raise StateError(f"{path}: fingerprint key is damaged (delete the state directory to start afresh)")
    return data


class StateStore:
    """One state directory. Opened lazily for writing: read-only use never creates files."""

    def __init__(self, directory: Path, *, readonly: bool = False) -> None:
        self.directory = directory
        self.readonly = readonly
        self._conn: sqlite3.Connection | None = None
        self._fingerprinter: Fingerprinter | None = None

    # -- set-up ---------------------------------------------------------------------------
    def _ensure_dir(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        mode = stat.S_IMODE(self.directory.stat().st_mode)
        if mode & 0o077:
            os.chmod(self.directory, 0o700)

    def exists(self) -> bool:
        return (self.directory / DB_NAME).exists()

    def _connect(self) -> sqlite3.Connection | None:
        if self._conn is not None:
            return self._conn
        db = self.directory / DB_NAME
        if self.readonly:
            if not db.exists():
                return None
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
        else:
            self._ensure_dir()
            fresh = not db.exists()
            if fresh:
                fd = os.open(db, os.O_WRONLY | os.O_CREAT, 0o600)
                os.close(fd)
            conn = sqlite3.connect(db, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
            for side in ("-wal", "-shm"):
                p = db.with_name(db.name + side)
                if p.exists():
                    os.chmod(p, 0o600)
        self._conn = conn
        return conn

    @property
    def fingerprinter(self) -> Fingerprinter:
        if self._fingerprinter is None:
            key_path = self.directory / KEY_NAME
            if self.readonly:
                key = key_path.read_bytes() if key_path.exists() else secrets.token_bytes(32)
            else:
                self._ensure_dir()
                key = _load_or_create_key(key_path)
            self._fingerprinter = Fingerprinter(key)
        return self._fingerprinter

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        if self.readonly:
            raise StateError("state store is read-only")
        conn = self._connect()
        assert conn is not None
        with conn:
            yield conn

    # -- inventory ------------------------------------------------------------------------
    def inventory(self, sync: str) -> dict[str, InventoryEntry]:
        conn = self._connect()
        if conn is None:
            return {}
        rows = conn.execute(
            "SELECT key, fingerprint, version, properties FROM inventory WHERE sync = ?", (sync,)
        ).fetchall()
        return {
            k: InventoryEntry(k, fp, ver, MappingProxyType(json.loads(props))) for k, fp, ver, props in rows
        }

    def put_inventory(self, sync: str, entries: Mapping[str, InventoryEntry]) -> None:
        if not entries:
            return
        with self._tx() as conn:
            conn.executemany(
                "INSERT INTO inventory (sync, key, fingerprint, version, properties) VALUES (?,?,?,?,?) "
                "ON CONFLICT(sync, key) DO UPDATE SET fingerprint=excluded.fingerprint, "
                "version=excluded.version, properties=excluded.properties",
                [
                    (sync, e.key, e.fingerprint, e.version, json.dumps(dict(e.properties), sort_keys=True))
                    for e in entries.values()
                ],
            )

    def drop_inventory(self, sync: str, keys: list[str] | None = None) -> None:
        with self._tx() as conn:
            if keys is None:
                conn.execute("DELETE FROM inventory WHERE sync = ?", (sync,))
            elif keys:
                conn.executemany("DELETE FROM inventory WHERE sync = ? AND key = ?", [(sync, k) for k in keys])

    # -- status ---------------------------------------------------------------------------
    def status(self, sync: str) -> SyncStatus:
        conn = self._connect()
        if conn is None:
            return SyncStatus(sync)
        row = conn.execute(
            f"SELECT {', '.join(_STATUS_COLUMNS)} FROM status WHERE sync = ?", (sync,)  # noqa: S608
        ).fetchone()
        return SyncStatus(*row) if row else SyncStatus(sync)

    def all_status(self) -> list[SyncStatus]:
        conn = self._connect()
        if conn is None:
            return []
        rows = conn.execute(
            f"SELECT {', '.join(_STATUS_COLUMNS)} FROM status ORDER BY sync"  # noqa: S608
        ).fetchall()
        return [SyncStatus(*r) for r in rows]

    def update_status(self, sync: str, **changes: str | None) -> SyncStatus:
        unknown = set(changes) - set(_STATUS_COLUMNS)
        if unknown:
            raise StateError(f"unknown status fields: {sorted(unknown)}")
        new = replace(self.status(sync), **changes)  # type: ignore[arg-type]
        with self._tx() as conn:
            cols = ", ".join(_STATUS_COLUMNS)
            marks = ", ".join("?" for _ in _STATUS_COLUMNS)
            conn.execute(
                f"INSERT OR REPLACE INTO status ({cols}) VALUES ({marks})",  # noqa: S608
                tuple(getattr(new, c) for c in _STATUS_COLUMNS),
            )
        return new

    def forget(self, sync: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM inventory WHERE sync = ?", (sync,))
            conn.execute("DELETE FROM status WHERE sync = ?", (sync,))
