"""One PostgreSQL state database: connections (a small psycopg pool), the schema, the shared
fingerprint key's check, and the per-sync session advisory lock.

The fingerprint key never enters the database: every replica reads it from the same file
(``--state-key-file``), and the database keeps only an HMAC of a constant under it. A replica
whose key differs is refused at start — its fingerprints would differ from everyone's, and
each would rewrite every secret the others wrote. A lost key is not silently replaced: an
operator decides (docs/high-availability.md says how).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from reconciler.errors import StateError
from reconciler.logging import get_logger
from reconciler.model import Fingerprinter
from reconciler.oserror import os_reason
from reconciler.state.pg import schema
from reconciler.state.pg.fence import SETTINGS, Fence, server_bound
from reconciler.state.pg.url import StateUrl, reread
from reconciler.state.store import _key_check

KEY_CHECK = "fingerprint-key-check"
POLL_SECONDS = 0.1
CONNECT_TIMEOUT = 5
#: how long a call waits for a pooled connection before the database counts as unreachable
POOL_TIMEOUT = 10.0
#: the pool retries a failed connection with a doubling delay for this long, then gives up
#: until the next call asks again (its default, 5 minutes, let the delay reach a minute: the
#: state stayed unusable that long after a long outage had ended)
RECONNECT_TIMEOUT = 10.0
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 10, 5, 3
KEEPALIVE_SECONDS = KEEPALIVE_IDLE + KEEPALIVE_INTERVAL * KEEPALIVE_COUNT


def _psycopg() -> Any:
    try:
        import psycopg
        import psycopg_pool
    except ImportError:
        raise StateError("a postgresql:// state needs psycopg: pip install 'reconciler[postgres]'") from None
    return psycopg, psycopg_pool


def replica_name() -> str:
    """How this process shows in ``pg_stat_activity`` (and so as a lock's holder)."""
    return f"reconciler@{socket.gethostname()}:{os.getpid()}"[:63]


def load_key(path: Path | None) -> bytes:
    if path is None:
        raise StateError("a PostgreSQL state needs the shared fingerprint key from a file: pass --state-key-file "
                         "PATH or set $RECONCILER_STATE_KEY_FILE, the same file on every replica (make one with "
                         "`head -c 32 /dev/urandom > PATH && chmod 600 PATH`; under systemd, LoadCredential=)")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise StateError(f"the fingerprint key file {path} cannot be read ({os_reason(e)})") from None
    if len(data) < 16:
        raise StateError(f"the fingerprint key file {path} holds {len(data)} bytes; it needs at least 16 "
                         "(`head -c 32 /dev/urandom > PATH`)")
    return data


def lock_key(sync: str) -> int:
    """A sync's advisory lock key (int4, non-negative). Two names that collide only wait for
    each other: a collision costs time, never correctness."""
    return int.from_bytes(hashlib.sha256(f"reconciler sync {sync}".encode()).digest()[:4], "big") & 0x7FFFFFFF


class Database:
    """Thread-safe: every call borrows a pooled connection. ``readonly`` connections are
    read-only on the server too (``default_transaction_read_only``)."""

    def __init__(self, url: StateUrl, key_file: Path | None, *, readonly: bool = False, pool_size: int = 4,
                 name: str | None = None) -> None:
        psycopg, psycopg_pool = _psycopg()
        self._errors = self.errors = psycopg.Error
        self._operational = psycopg.OperationalError
        self._rechecking = threading.Lock()
        self._recheck_thread: threading.Thread | None = None
        self._pool_timeout = psycopg_pool.PoolTimeout
        self.where = url.where
        self.readonly = readonly
        self.name = name or replica_name()
        key = load_key(key_file)
        self._key_file = key_file
        self._key_check = _key_check(key)
        # keepalives both ways: a replica cut off by the network has its sessions (and so its
        # sync locks) ended by the server in about KEEPALIVE_SECONDS, and notices it itself (a
        # call blocked on a cut connection fails after as long: tcp_user_timeout); the server
        # cannot end them sooner, which is what fences a run's writes (fence.py)
        options = [f"-c tcp_keepalives_idle={KEEPALIVE_IDLE}", f"-c tcp_keepalives_interval={KEEPALIVE_INTERVAL}",
                   f"-c tcp_keepalives_count={KEEPALIVE_COUNT}"]
        if readonly:
            options.append("-c default_transaction_read_only=on")
        kwargs: dict[str, Any] = {"autocommit": True, "application_name": self.name,
                                  "connect_timeout": CONNECT_TIMEOUT, "keepalives": 1,
                                  "keepalives_idle": KEEPALIVE_IDLE, "keepalives_interval": KEEPALIVE_INTERVAL,
                                  "keepalives_count": KEEPALIVE_COUNT, "options": " ".join(options),
                                  "tcp_user_timeout": KEEPALIVE_SECONDS * 1000}
        self._url = url
        self._base = kwargs
        with self.guard():
            conn = psycopg.connect(url.conninfo, **self._kwargs())
        try:
            with self.guard():
                if readonly:
                    self.ready = schema.check_readable(conn, self.where)
                else:
                    applied = schema.migrate(conn, self.where)
                    self.ready = True
                    if applied:
                        get_logger().info("state.migrated", state=self.where, applied=applied, version=schema.LATEST)
                if self.ready:
                    self._check_key(conn)
        finally:
            conn.close()
        self.fingerprinter = Fingerprinter(key)
        self._connect: Callable[[], Any] = lambda: psycopg.connect(url.conninfo, **self._kwargs())
        self.pool = psycopg_pool.ConnectionPool(url.conninfo, kwargs=self._kwargs, min_size=1,
                                                max_size=max(pool_size, 2), timeout=POOL_TIMEOUT, open=True,
                                                reconnect_timeout=RECONNECT_TIMEOUT, name="reconciler-state")

    def _kwargs(self) -> dict[str, Any]:
        """The connection's parameters, with the password read from its reference *now*: one
        rotated in its file (a Kubernetes Secret, a credential) is used by the next connection,
        as libpq reads a passfile. An unreadable reference keeps the last password read."""
        password = self._url.password
        if self._url.password_ref is not None:
            with contextlib.suppress(StateError):
                password = self._url.password = reread(self._url)
        return {**self._base, "password": password} if password is not None else dict(self._base)

    def _check_key(self, conn: Any) -> None:
        check = self._key_check
        if not self.readonly:
            conn.execute("INSERT INTO reconciler_meta (name, value) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
                         (KEY_CHECK, check))
        self.verify_key(conn, missing_ok=True)

    def verify_key(self, conn: Any, *, missing_ok: bool = False) -> None:
        """The database's key check is still this replica's key (each heartbeat asks: a key
        reset, or another key's check, while this replica runs would otherwise go unseen)."""
        row = conn.execute("SELECT value FROM reconciler_meta WHERE name = %s", (KEY_CHECK,)).fetchone()
        if row is None and not missing_ok:
            raise StateError(f"the fingerprint key check in the state database {self.where} was removed while this "
                             f"replica ran (a key reset?): restart it with the key file every replica now uses")
        if row is not None and row[0] != self._key_check:
            raise StateError(
                f"the fingerprint key in {self._key_file} is not the key the state database {self.where} was made "
                "with: every replica must use the same key file (refusing to start, or each would rewrite every "
                "secret); if the old key is lost for good, see docs/high-availability.md, 'A lost key'")

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """psycopg's errors as a StateError that names the database, never a password."""
        try:
            yield
        except self._pool_timeout:
            why = self._why_no_connection()
            raise StateError(f"the PostgreSQL state at {self.where} cannot be reached (no connection within "
                             f"{POOL_TIMEOUT:g}s{': ' + why if why else ''})") from None
        except self._errors as e:
            if isinstance(e, self._operational) and getattr(self, "pool", None) is not None:
                self._recheck()
            text = " ".join(line.strip() for line in str(e).splitlines() if line.strip()) or type(e).__name__
            raise StateError(f"the PostgreSQL state at {self.where} failed: {text}") from None

    def _why_no_connection(self) -> str | None:
        """The server's own answer to one connection of our own (the pool logs its attempts'
        errors but keeps them): a dropped database, a rotated password, a refused port."""
        try:
            self._connect().close()
        except self._errors as e:
            return " ".join(line.strip() for line in str(e).splitlines() if line.strip()) or type(e).__name__
        return None

    @contextlib.contextmanager
    def connection(self) -> Iterator[Any]:
        with self.guard(), self.pool.connection() as conn:
            yield conn

    def _recheck(self) -> None:
        """A connection broke: the server may have ended every session (a restart, a failover,
        ``pg_terminate_backend``). Test the idle ones now, in the background (a cut network
        makes each test wait), so the next call does not draw the next dead one."""
        with self._rechecking:
            if self._recheck_thread is not None and self._recheck_thread.is_alive():
                return
            self._recheck_thread = threading.Thread(target=self._check_pool, name="state-pool-check", daemon=True)
            self._recheck_thread.start()

    def _check_pool(self) -> None:
        with contextlib.suppress(Exception):  # a pool being closed: nothing left to check
            self.pool.check()

    def connect(self) -> Any:
        """A connection of its own, outside the pool (a listener keeps it for good)."""
        with self.guard():
            return self._connect()

    def ping(self) -> str | None:
        """None when the database answers; why not otherwise (for ``/readyz``)."""
        try:
            with self.connection() as conn:
                conn.execute("SELECT 1")
        except StateError as e:
            return str(e)
        return None

    @contextlib.contextmanager
    def hold(self, sync: str, *, wait: float = 10.0) -> Iterator[Fence]:
        """A session advisory lock on a connection kept for the whole run: released by the
        server when the session ends, so a replica that dies never leaves it held. Yields the
        lock's :class:`Fence` (the run stops writing once the lock cannot be vouched for)."""
        key = lock_key(sync)
        with self.guard():
            conn = self.pool.getconn()
        try:
            deadline = time.monotonic() + wait
            while True:
                sent = time.monotonic()
                with self.guard():
                    got, settings = conn.execute(f"SELECT pg_try_advisory_lock(%s, %s), {SETTINGS}",
                                                 (schema.LOCK_NAMESPACE_SYNC, key)).fetchone()
                if got:
                    break
                if time.monotonic() >= deadline:
                    raise StateError(f"sync {sync} is being reconciled by {self._holder(conn, key)} (state at "
                                     f"{self.where}); try again when it is done")
                time.sleep(POLL_SECONDS)
            try:
                fence = Fence(conn, lambda: self._still_held(conn, key), server_bound(settings, KEEPALIVE_SECONDS),
                              sent, self._errors)
                try:
                    yield fence
                finally:
                    fence.release()
            finally:
                with contextlib.suppress(self._errors):
                    conn.execute("SELECT pg_advisory_unlock(%s, %s)", (schema.LOCK_NAMESPACE_SYNC, key))
        finally:
            self.pool.putconn(conn)

    @staticmethod
    def _still_held(conn: Any, key: int) -> bool:
        row = conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
                           "AND granted AND classid = %s::bigint::oid AND objid = %s::bigint::oid AND objsubid = 2",
                           (schema.LOCK_NAMESPACE_SYNC, key)).fetchone()
        return bool(row[0])

    def _holder(self, conn: Any, key: int) -> str:
        with contextlib.suppress(self._errors):
            holders = self.holders(conn, [key])
            if key in holders:
                return holders[key]
        return "another replica"

    def holders(self, conn: Any, keys: list[int] | None = None) -> dict[int, str]:
        """Lock key -> the holding session's name, for the sync locks held right now."""
        rows = conn.execute(
            "SELECT l.objid::bigint, coalesce(nullif(a.application_name, ''), 'pid ' || l.pid) "
            "FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 AND l.classid = %s::bigint::oid "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (schema.LOCK_NAMESPACE_SYNC,)).fetchall()
        return {int(k): str(who) for k, who in rows if keys is None or int(k) in keys}

    def close(self) -> None:
        self.pool.close()
