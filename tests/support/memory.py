"""An in-memory destination and source: the engine and planner run against them with no
server and no patching (the catalog and the source factory are injected).

:class:`MemoryStore` holds entries like a strict destination does (AWS semantics: no
write to a key scheduled for deletion, no create over an existing name), counts calls and
can fail on demand. :func:`catalog` gives a Catalog whose descriptors keep every rule of the
real destination (names, capabilities, properties) but open sessions on a store instead.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from reconciler.changes import Action, Change, ChangeResult
from reconciler.destinations import catalog as catalog_mod
from reconciler.destinations.catalog import Catalog, SyncView
from reconciler.destinations.contract import ConnectionInfo, Scope
from reconciler.destinations.errors import DestinationError, Permanent
from reconciler.model import SYNC_TAG, Folder, Lifecycle, ObservedEntry, SecretValue, SourceSecret, frozen_map
from reconciler.sources.base import content_token
from reconciler.specs.model import Connection


@dataclasses.dataclass
class Stored:
    value: SecretValue
    version: str
    lifecycle: Lifecycle = Lifecycle.ACTIVE
    properties: dict[str, str] = dataclasses.field(default_factory=dict)


class MemoryStore:
    """One destination's contents (a target), shared by every session opened on it."""

    def __init__(self) -> None:
        self.entries: dict[str, Stored] = {}
        self.calls: Counter[str] = Counter()
        self._versions = itertools.count(1)
        self._lock = threading.Lock()
        #: op -> error raised by the next call of that op ("list", "read", "create", ...)
        self.fail_next: dict[str, DestinationError] = {}

    def _call(self, op: str) -> None:
        with self._lock:
            self.calls[op] += 1
            err = self.fail_next.pop(op, None)
        if err is not None:
            raise err

    def version(self) -> str:
        return f"m{next(self._versions)}"

    def put(self, key: str, value: str, **properties: str) -> None:
        """An out-of-band write (a new version)."""
        old = self.entries.get(key)
        props = dict(old.properties) if old else {}
        props.update(properties)
        self.entries[key] = Stored(SecretValue(value), self.version(), Lifecycle.ACTIVE, props)

    def values(self) -> dict[str, str]:
        return {k: e.value.reveal() for k, e in self.entries.items() if e.lifecycle is Lifecycle.ACTIVE}

    def session(self, view: SyncView, connection: ConnectionInfo) -> MemorySession:
        return MemorySession(self)


class MemorySession:
    """The Session contract over a :class:`MemoryStore`."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def list(self, scope: Scope) -> list[ObservedEntry]:
        if scope.pending_only:
            return []  # the listing shows pending-deletion entries already
        self.store._call("list")
        return [ObservedEntry(k, e.version, None, e.lifecycle, e.properties.get(f"tag:{SYNC_TAG}"),
                              frozen_map(e.properties))
                for k, e in sorted(self.store.entries.items())]

    def read(self, keys: Sequence[str]) -> dict[str, SecretValue]:
        self.store._call("read")
        return {k: e.value for k in keys if (e := self.store.entries.get(k)) and e.lifecycle is Lifecycle.ACTIVE}

    def apply(self, changes: Sequence[Change], on_result: Callable[[ChangeResult], None]) -> None:
        for c in changes:
            try:
                on_result(self._one(c))
            except DestinationError as exc:
                on_result(ChangeResult(c, False, error=str(exc), retry_after=exc.retry_after))

    def _one(self, c: Change) -> ChangeResult:
        store, key = self.store, c.key
        store._call(c.action.value)
        e = store.entries.get(key)
        if c.action is Action.CREATE:
            if e is not None or c.value is None:
                raise Permanent("create over an existing name", key=key)
            store.entries[key] = Stored(c.value, store.version(), Lifecycle.ACTIVE, dict(c.set_properties))
            return ChangeResult(c, True, version=store.entries[key].version)
        if e is None:
            raise Permanent(f"{c.action.value} of a missing key", key=key)
        if c.action is Action.RESTORE:
            if e.lifecycle is not Lifecycle.PENDING_DELETION:
                raise Permanent("restore of a key not scheduled for deletion", key=key)
            e.lifecycle = Lifecycle.ACTIVE
            return ChangeResult(c, True)
        if e.lifecycle is not Lifecycle.ACTIVE:
            raise Permanent(f"{c.action.value} of a {e.lifecycle.value} key", key=key)
        if c.action is Action.DELETE:
            e.lifecycle = Lifecycle.PENDING_DELETION
            return ChangeResult(c, True)
        for name in c.unset_properties:
            e.properties.pop(name, None)
        e.properties.update(c.set_properties)
        if c.value_changed and not (c.compare_first and c.value == e.value):
            if c.value is None:
                raise Permanent("update without a value", key=key)
            e.value, e.version = c.value, store.version()
            store.calls["write"] += 1
        return ChangeResult(c, True, version=e.version)

    def close(self) -> None:
        return None


def catalog(stores: Mapping[str, MemoryStore]) -> Catalog:
    """The built-in descriptors, with sessions on ``stores`` (by destination id)."""
    real = catalog_mod.default()
    return Catalog(tuple(dataclasses.replace(real[i], session=stores[i].session) if i in stores else real[i]
                         for i in real.ids()))


class MemorySource:
    """A writable source of folders held in memory (``data[(env, path)] = {key: value}``)."""

    writable = True

    def __init__(self, data: dict[tuple[str, str], dict[str, str]] | None = None) -> None:
        self.data = data if data is not None else {}
        self.reads = 0

    def read(self, folder: Folder) -> list[SourceSecret]:
        self.reads += 1
        found = self.data.get((folder.environment, folder.secret_path), {})
        return [SourceSecret(k, SecretValue(v)) for k, v in sorted(found.items())]

    def write(self, folder: Folder, updates: Mapping[str, SecretValue]) -> None:
        self.data.setdefault((folder.environment, folder.secret_path), {}).update(
            {k: v.reveal() for k, v in updates.items()})

    def change_token(self, folder: Folder) -> str:
        return content_token(self.read(folder))

    def close(self) -> None:
        return None


def sources(source: MemorySource) -> Callable[[Connection], Any]:
    """A source factory for ``Reconciler(..., sources=...)`` that serves every connection."""
    return lambda _conn: source


__all__ = ["MappingProxyType", "MemorySession", "MemorySource", "MemoryStore", "Stored", "catalog", "sources"]
