"""Change detection for KMS sources, which cannot be watched: a cheap poll of each folder's
change token, and signed "secrets modified" webhooks that say which folder to look at.

Both only *pick* syncs; the runner does the work. Neither ever sees a value: the token is an
opaque keyed digest and the webhook names a folder.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from reconciler.engine import connect
from reconciler.logging import get_logger
from reconciler.model import Folder, SecretValue
from reconciler.sources.base import Source
from reconciler.sources.webhook import FolderChange
from reconciler.specs.credentials import CredentialError, resolve
from reconciler.specs.model import Connection, CredentialRef, SecretSync, SpecSet

DEFAULT_POLL_SECONDS = 60.0
POLLED_APPS = frozenset({"kms"})


@dataclass(frozen=True)
class PollKey:
    connection: str
    folder: Folder

    def __str__(self) -> str:
        f = self.folder
        return f"{self.connection}|{f.project_id}|{f.environment}|{f.secret_path}|{int(f.recursive)}"


def poll_groups(specs: SpecSet, syncs: Iterable[SecretSync],
                apps: frozenset[str] = POLLED_APPS) -> dict[PollKey, tuple[float, list[str]]]:
    """Each distinct (source connection, folder) of these syncs: its poll interval and syncs."""
    out: dict[PollKey, tuple[float, list[str]]] = {}
    for sync in syncs:
        conn = specs.connections.get(sync.source)
        if conn is None or conn.app not in apps:
            continue
        key = PollKey(conn.name, sync.folder)
        raw = conn.settings.get("pollInterval", DEFAULT_POLL_SECONDS)
        seconds = float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) and raw > 0 \
            else DEFAULT_POLL_SECONDS
        out.setdefault(key, (seconds, []))[1].append(sync.name)
    return out


class Poller:
    """Remembers each folder's last token; a changed token names the syncs to run. Sources
    stay open between polls (a KMS login is not free) and polls of one connection take turns
    (one source object is not shared across threads at once)."""

    def __init__(self, open_source: Callable[[Connection], Source] = connect.open_source) -> None:
        self._open = open_source
        self.tokens: dict[PollKey, str] = {}
        self._sources: dict[str, tuple[Connection, Source]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._log = get_logger(component="poll")

    def _source(self, conn: Connection) -> Source:
        cached = self._sources.get(conn.name)
        if cached is not None and cached[0] == conn:
            return cached[1]
        if cached is not None:
            cached[1].close()
        source = self._open(conn)
        self._sources[conn.name] = (conn, source)
        return source

    def token(self, conn: Connection, folder: Folder) -> str:
        """Blocking: call on a worker thread."""
        try:
            return self._source(conn).change_token(folder)
        except Exception:
            dropped = self._sources.pop(conn.name, None)
            if dropped is not None:
                dropped[1].close()
            raise

    def lock(self, connection: str) -> asyncio.Lock:
        return self._locks.setdefault(connection, asyncio.Lock())

    def changed(self, key: PollKey, token: str) -> bool:
        """Record ``token``; True when it differs from a token seen before."""
        previous = self.tokens.get(key)
        self.tokens[key] = token
        return previous is not None and previous != token

    def forget(self, keep: Iterable[PollKey]) -> None:
        wanted = set(keep)
        for key in [k for k in self.tokens if k not in wanted]:
            del self.tokens[key]

    def close(self) -> None:
        for _conn, source in self._sources.values():
            try:
                source.close()
            except Exception as e:
                self._log.warning("source.close_failed", error_type=type(e).__name__)
        self._sources.clear()


def webhook_secret(conn: Connection) -> SecretValue | None:
    """The shared secret that signs this connection's webhooks, or None when there is none
    (a reference that cannot be resolved counts as none, and is logged by the caller)."""
    fn: Callable[[Connection], SecretValue | None] | None = getattr(connect, "webhook_secret", None)
    if fn is not None and "webhookSecret" in conn.settings:
        return fn(conn)
    for where in (conn.settings, conn.credentials):
        ref = where.get("webhookSecret")
        if isinstance(ref, CredentialRef):
            try:
                return resolve(ref)
            except CredentialError as e:
                raise connect.ConnectError(f"connection {conn.name}: webhookSecret: {e}") from None
    return None


def _covers(sync: SecretSync, secret_path: str) -> bool:
    if sync.secret_path == secret_path:
        return True
    if not sync.recursive:
        return False
    base = sync.secret_path.rstrip("/")
    return secret_path.startswith(base + "/")


def webhook_targets(syncs: Mapping[str, SecretSync], connection: str, change: FolderChange) -> list[str]:
    """Syncs reading the folder a webhook names (or, when recursive, one of its parents)."""
    return sorted(
        s.name for s in syncs.values()
        if s.source == connection and s.project_id == change.project_id
        and s.environment == change.environment and _covers(s, change.secret_path)
    )
