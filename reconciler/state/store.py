"""SQLite state: per-sync inventory (keyed fingerprints + destination versions) and status.

State is a cache plus an inventory. Losing it costs API calls (values are re-read) and the
"created by reconciler" labels, never correctness: the destination is always re-listed.
No value is ever stored; fingerprints are HMACs under a key that lives beside the database.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import stat
import tempfile
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

from reconciler.errors import StateError as StateError  # re-exported: callers import it from here
from reconciler.logging import get_logger
from reconciler.model import Fingerprinter, InventoryEntry
from reconciler.oserror import os_reason
from reconciler.state import locks
from reconciler.state.backend import Kept, Lease
from reconciler.state.records import STATUS_COLUMNS as _STATUS_COLUMNS
from reconciler.state.records import SyncStatus as SyncStatus  # re-exported: callers import it from here

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
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
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

_MOVE_ASIDE = "move it aside: state is a cache, and the next run rebuilds it at the cost of API calls"
#: what the database remembers of the key its fingerprints were made with
_KEY_CHECK = "fingerprint-key-check"




def _journal_wal(conn: sqlite3.Connection, wait: float = 10.0) -> None:
    """Switching a new database to WAL needs it alone for a moment, and SQLite answers
    "locked" at once, without its busy wait, when another process opens it at that moment
    (two runs starting on a new state directory): try again for a while."""
    deadline = time.monotonic() + wait
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


def _key_check(key: bytes) -> str:
    return hmac.new(key, b"reconciler state key check", hashlib.sha256).hexdigest()[:32]


def _load_or_create_key(path: Path) -> tuple[bytes, bool]:
    """The key, and whether it was made now. Two processes starting at once agree on one key:
    it is written whole to a temp file (0600), then linked into place, which fails if one exists."""
    created = False
    try:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            fd, tmp = tempfile.mkstemp(prefix=".fingerprint-", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(secrets.token_bytes(32))
                    f.flush()
                    os.fsync(f.fileno())
                try:
                    os.link(tmp, path)
                    created = True
                except FileExistsError:
                    pass
            finally:
                os.unlink(tmp)
            data = path.read_bytes()
    except OSError as e:
        raise StateError(f"the fingerprint key at {path} cannot be read or made ({os_reason(e)}); "
                         f"fix its permissions, or move it aside: a new key is made and values are compared by "
                         f"reading them once") from None
    if len(data) < 16:
        raise StateError(f"the fingerprint key at {path} is damaged ({len(data)} bytes); move it aside: a new key "
                         "is made and values are compared by reading them once")
    return data, created


def _open_readonly(db: Path) -> sqlite3.Connection:
    """``db`` for reading. The path is quoted into the URI ('#', '?' and '%' in a directory
    name cut it short). A WAL database needs a -shm file beside it even to be read; where this
    process cannot create one (a read-only volume or directory) and no -wal file exists, no one
    has the database open for writing and the main file holds all of it: it is read as
    immutable, so ``plan`` and ``status`` work on a state they cannot write."""
    uri = f"file:{urllib.parse.quote(str(db))}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=30)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # a damaged file fails here, not later
        return conn
    except sqlite3.OperationalError:
        conn.close()
        if os.access(db.parent, os.W_OK) or db.with_name(db.name + "-wal").exists():
            raise
    conn = sqlite3.connect(uri + "&immutable=1", uri=True, timeout=30)
    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    return conn


class StateStore:
    """One state directory. Opened lazily for writing: read-only use never creates files."""

    def __init__(self, directory: Path, *, readonly: bool = False) -> None:
        self.directory = directory
        self.readonly = readonly
        self._conn: sqlite3.Connection | None = None
        self._fingerprinter: Fingerprinter | None = None
        #: the stored fingerprints were made with another key (lost or replaced): ignore them
        self._stale_fingerprints = False
        #: said once when that happened (also logged)
        self.reset_notice: str | None = None

    # -- set-up ---------------------------------------------------------------------------
    def _ensure_dir(self) -> None:
        where = f"state directory {self.directory}"
        hint = "choose another with --state-dir or $RECONCILER_STATE_DIR"
        if self.directory.exists() and not self.directory.is_dir():
            what = "is a file, not a directory" if self.directory.is_file() else "is not a directory"
            raise StateError(f"{where} {what}; remove it, or {hint}")
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not os.access(self.directory, os.W_OK | os.X_OK):
                raise StateError(f"{where} is not writable by this user; fix its owner or mode, or {hint}")
            mode = stat.S_IMODE(self.directory.stat().st_mode)
            if mode & 0o077:
                os.chmod(self.directory, 0o700)
        except OSError as e:
            raise StateError(f"{where} cannot be created or used ({os_reason(e)}); {hint}") from None

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """SQLite and file errors as a StateError that names the database and the remedy."""
        db = self.directory / DB_NAME
        try:
            yield
        except sqlite3.OperationalError as e:
            text = str(e)
            if "locked" in text or "busy" in text:
                raise StateError(f"the state at {db} is busy (another reconciler is writing it); try again") from None
            if "disk is full" in text or getattr(e, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
                raise StateError(f"no space left for the state at {db}; free space on its file system and run "
                                 "again (the state itself is intact: do not move it aside)") from None
            if "unable to open" in text or "readonly" in text or "read-only" in text:
                raise StateError(f"the state at {db} cannot be opened for writing ({text}); check the owner and "
                                 "mode of the state directory") from None
            raise StateError(f"the state at {db} is damaged ({text}); {_MOVE_ASIDE}") from None
        except sqlite3.DatabaseError as e:
            raise StateError(f"the state at {db} is damaged ({e}); {_MOVE_ASIDE}") from None
        except (OSError, json.JSONDecodeError) as e:
            reason = os_reason(e) if isinstance(e, OSError) else "an entry is not valid JSON"
            raise StateError(f"the state at {db} cannot be used ({reason}); {_MOVE_ASIDE}") from None

    def exists(self) -> bool:
        return (self.directory / DB_NAME).exists()

    def _connect(self) -> sqlite3.Connection | None:
        if self._conn is not None:
            return self._conn
        with self._guard():
            return self._open()

    def _open(self) -> sqlite3.Connection | None:
        db = self.directory / DB_NAME
        if self.readonly:
            if not db.exists():
                return None
            conn = _open_readonly(db)
        else:
            self._ensure_dir()
            fresh = not db.exists()
            if fresh:
                fd = os.open(db, os.O_WRONLY | os.O_CREAT, 0o600)
                os.close(fd)
            conn = sqlite3.connect(db, timeout=30)
            _journal_wal(conn)
            # a commit per landed write (so an interrupted apply never loses one) without an
            # fsync per commit: WAL commits are durable across a crash of the process, and state is
            # a cache — a power cut that loses the last writes costs reads, never correctness
            conn.execute("PRAGMA synchronous=NORMAL")
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
                # never create anything read-only: without a key, no stored fingerprint holds
                key, created = (_load_or_create_key(key_path)[0], False) if key_path.exists() else (
                    secrets.token_bytes(32), True)
            else:
                self._ensure_dir()
                key, created = _load_or_create_key(key_path)
            self._check_key(key, created)
            self._fingerprinter = Fingerprinter(key)
        return self._fingerprinter

    def _check_key(self, key: bytes, created: bool) -> None:
        """Fingerprints made with another key would all differ from fresh ones, and every secret
        would be rewritten. If the key was lost or replaced, forget the stored fingerprints (keys,
        versions and ownership stay): this run compares values by reading them instead."""
        conn = self._connect()
        if conn is None:
            return
        with self._guard():
            # a database from before the check (opened read-only, so not migrated) has no meta table
            has_meta = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
            row = conn.execute("SELECT value FROM meta WHERE name = ?", (_KEY_CHECK,)).fetchone() if has_meta else None
            fingerprints = conn.execute("SELECT count(*) FROM inventory WHERE fingerprint IS NOT NULL").fetchone()[0]
            stale = (row[0] != _key_check(key)) if row is not None else (created and fingerprints > 0)
            if stale and fingerprints:
                self._stale_fingerprints = True
                self.reset_notice = (
                    f"the fingerprint key at {self.directory / KEY_NAME} was lost or replaced: the stored fingerprints "
                    f"of {fingerprints} key(s) were reset, and values are compared by reading them this run")
                get_logger().warning("state.reset", state=str(self.directory), keys=fingerprints,
                                     message=self.reset_notice)
            if self.readonly:
                return
            with conn:
                if self._stale_fingerprints:
                    conn.execute("UPDATE inventory SET fingerprint = NULL")
                    self._stale_fingerprints = False
                conn.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (_KEY_CHECK, _key_check(key)))

    def describe(self) -> str:
        return f"state directory {self.directory}"

    @contextlib.contextmanager
    def hold(self, sync: str, *, wait: float = 10.0) -> Iterator[Lease]:
        """One writing run of ``sync`` at a time across processes on this host (``flock``)."""
        with locks.hold(self.directory, sync, wait=wait):
            yield Kept()

    def holders(self, syncs: list[str]) -> dict[str, str]:
        """One host, no replicas: nobody to name."""
        return {}

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        if self.readonly:
            raise StateError("state store is read-only")
        _ = self.fingerprinter  # the key (and its check) exist before any fingerprint is stored
        conn = self._connect()
        assert conn is not None
        with self._guard(), conn:
            yield conn

    # -- inventory ------------------------------------------------------------------------
    def inventory(self, sync: str) -> dict[str, InventoryEntry]:
        conn = self._connect()
        if conn is None:
            return {}
        _ = self.fingerprinter  # decides whether the stored fingerprints still hold
        with self._guard():
            rows = conn.execute(
                "SELECT key, fingerprint, version, properties FROM inventory WHERE sync = ?", (sync,)
            ).fetchall()
            return {
                k: InventoryEntry(k, None if self._stale_fingerprints else fp, ver, MappingProxyType(json.loads(props)))
                for k, fp, ver, props in rows
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
        with self._guard():
            row = conn.execute(
                f"SELECT {', '.join(_STATUS_COLUMNS)} FROM status WHERE sync = ?", (sync,)  # noqa: S608
            ).fetchone()
        return SyncStatus(*row) if row else SyncStatus(sync)

    def all_status(self) -> list[SyncStatus]:
        conn = self._connect()
        if conn is None:
            return []
        with self._guard():
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
