"""How the daemon notices that a source changed, whatever the source: each kind says in the
source catalog whether its folders can be polled for a change token, whether its server signs
webhooks, and which local file to watch. This module only applies those capabilities.

All of them only *pick* syncs; the runner does the work. None ever sees a value: a token is
an opaque keyed digest, and a webhook names a folder.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.daemon.runner import in_thread
from reconciler.daemon.schedule import Schedule
from reconciler.engine import connect
from reconciler.errors import ConfigError, ReconcilerError, WebhookPayloadError
from reconciler.logging import get_logger
from reconciler.model import Folder
from reconciler.sources.base import Source
from reconciler.sources.catalog import SourceCatalog, WebhookError, reads
from reconciler.specs.model import Connection, SecretSync, SpecSet


@dataclass(frozen=True)
class PollKey:
    connection: str
    folder: Folder

    def __str__(self) -> str:
        f = self.folder
        return f"{self.connection}|{f.project_id}|{f.environment}|{f.secret_path}|{int(f.recursive)}"


def poll_groups(specs: SpecSet, syncs: Iterable[SecretSync],
                sources: SourceCatalog) -> dict[PollKey, tuple[float, list[str]]]:
    """Each distinct (source connection, folder) of these syncs whose source can be polled:
    its poll interval and its syncs."""
    out: dict[PollKey, tuple[float, list[str]]] = {}
    for sync in syncs:
        conn = specs.connections.get(sync.source)
        kind = sources.get(conn.app) if conn is not None else None
        if conn is None or kind is None or kind.polling is None:
            continue
        seconds = kind.polling.interval(conn.settings)
        out.setdefault(PollKey(conn.name, sync.folder), (seconds, []))[1].append(sync.name)
    return out


def _local_file(conn: Connection | None, sources: SourceCatalog) -> Path | None:
    kind = sources.get(conn.app) if conn is not None else None
    return conn.path if conn is not None and kind is not None and kind.local_file is not None else None


def watched_files(specs: SpecSet, sources: SourceCatalog) -> list[Path]:
    """The local files sources read (a file source's secrets file)."""
    return [p for c in specs.connections.values() if (p := _local_file(c, sources)) is not None]


def file_readers(specs: SpecSet, sources: SourceCatalog, paths: Iterable[str]) -> list[str]:
    """The syncs whose source reads one of these local files."""
    real = {os.path.realpath(p) for p in paths}
    return [s.name for s in specs.syncs.values()
            if (p := _local_file(specs.connections.get(s.source), sources)) is not None
            and os.path.realpath(p) in real]


class Poller:
    """Remembers each folder's last token; a changed token names the syncs to run. Sources
    stay open between polls (a login is not free) and polls of one connection take turns
    (one source object is not shared across threads at once)."""

    def __init__(self, sources: SourceCatalog) -> None:
        self.tokens: dict[PollKey, str] = {}
        self.catalog = sources
        self._sources: dict[str, tuple[Connection, Source]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._log = get_logger(component="poll")

    def _source(self, conn: Connection) -> Source:
        cached = self._sources.get(conn.name)
        if cached is not None and cached[0] == conn:
            return cached[1]
        if cached is not None:
            cached[1].close()
        source = connect.open_source(conn, self.catalog)
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


class Polls:
    """The poll job of each distinct pollable folder: the first poll takes a baseline, and a
    later token that differs triggers that folder's syncs."""

    def __init__(self, sources: SourceCatalog, schedule: Schedule, trigger: Callable[[str, str], bool],
                 spawn: Callable[[Coroutine[Any, Any, Any], str], None]) -> None:
        self.groups: dict[PollKey, tuple[float, list[str]]] = {}
        self.poller = Poller(sources)
        self._specs: SpecSet | None = None
        self._schedule, self._trigger, self._spawn = schedule, trigger, spawn
        self._log = get_logger(component="poll")

    def arm(self, specs: SpecSet, active: Iterable[SecretSync]) -> None:
        """(Re)arm the jobs for these syncs; jobs of folders no longer read go away."""
        self._specs = specs
        self.groups = poll_groups(specs, active, self.poller.catalog)
        keep = {str(k) for k in self.groups}
        for stale in self._schedule.polls() - keep:
            self._schedule.cancel_poll(stale)
        self.poller.forget(self.groups)
        for key, (seconds, _names) in self.groups.items():
            fresh = key not in self.poller.tokens
            self._schedule.poll(str(key), seconds, functools.partial(self.poll, key))
            if fresh:
                self._spawn(self.poll(key), f"poll {key.connection}")

    async def poll(self, key: PollKey) -> list[str]:
        """Check one folder's change token; trigger its syncs when it moved. Returns them."""
        group = self.groups.get(key)
        conn = self._specs.connections.get(key.connection) if self._specs else None
        if group is None or conn is None:
            return []
        where = {"connection": conn.name, "environment": key.folder.environment,
                 "secret_path": key.folder.secret_path}
        async with self.poller.lock(conn.name):
            try:
                token = await in_thread(lambda: self.poller.token(conn, key.folder), f"poll-{conn.name}")
            except Exception as e:
                detail = str(e) if isinstance(e, ReconcilerError) else type(e).__name__  # ours never quote values
                self._log.warning("poll.failed", **where, error=detail)
                return []
        if not self.poller.changed(key, token):
            return []
        names = [n for n in group[1] if self._trigger(n, "source-changed")]
        self._log.info("source.changed", **where, syncs=names)
        return names

    def close(self) -> None:
        self.poller.close()


@dataclass(frozen=True)
class WebhookResult:
    """What a webhook request comes to: an HTTP status, and the folder and syncs it named."""

    status: int
    folder: Folder | None = None
    syncs: tuple[str, ...] = ()


def webhook(specs: SpecSet | None, sources: SourceCatalog, route: str, connection: str, body: bytes,
            headers: Mapping[str, str]) -> WebhookResult:
    """Check a ``POST /webhooks/<route>/<connection>`` against the connection's source kind; on
    success, the syncs reading the folder it names (or, when recursive, one of its parents).

    404 unless the connection is a source whose kind takes webhooks on this route and it has a
    signing secret; 503 when that secret cannot be resolved; 401 when the signature fails; 400
    when it is signed but names no folder.
    """
    log = get_logger(component="http")
    kind = sources.by_route(route)
    conn = specs.connections.get(connection) if specs is not None else None
    if specs is None or conn is None or kind is None or kind.webhooks is None or conn.app != kind.app:
        return WebhookResult(404)
    try:
        secret = connect.webhook_secret(conn, sources)
    except ConfigError as e:
        log.error("webhook.secret_unavailable", connection=connection, error=str(e))
        return WebhookResult(503)
    if secret is None:
        return WebhookResult(404)
    try:
        folder = kind.webhooks.verify(body, headers, secret)
    except WebhookError as e:
        log.warning("webhook.rejected", connection=connection, reason=str(e))
        return WebhookResult(400 if isinstance(e, WebhookPayloadError) else 401)
    names = tuple(sorted(s.name for s in specs.syncs.values() if s.source == connection and reads(s.folder, folder)))
    return WebhookResult(202, folder, names)
