"""What the engine, the daemon and the CLI need of a state store, whatever keeps it.

Two backends satisfy it: the embedded SQLite store (:mod:`reconciler.state.store`, one host,
the default) and PostgreSQL (:mod:`reconciler.state.pg`, shared by replicas). Both hold the
same things — per-sync inventory (keyed fingerprints, version markers, properties) and the
seeds' status fields — and never a value. ``hold`` is the per-sync lock a writing run takes:
a ``flock`` on one host, a session advisory lock across replicas.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Protocol

from reconciler.model import Fingerprinter, InventoryEntry
from reconciler.state.records import SyncStatus


class Lease(Protocol):
    """What a writing run gets from ``hold``: ``is_set()`` once it must start no further write
    (the lock may be someone else's now), and ``lost``, why (None while it holds)."""

    def is_set(self) -> bool: ...

    @property
    def lost(self) -> str | None: ...


class Kept:
    """The lease of a lock that is held for as long as the process lives (``flock``)."""

    lost: str | None = None

    def is_set(self) -> bool:
        return False


class StateBackend(Protocol):
    """One open state. Read-only ones (``plan``, ``status``) never create or write anything."""

    readonly: bool
    #: said once when stored fingerprints were found stale and reset (None otherwise)
    reset_notice: str | None

    @property
    def fingerprinter(self) -> Fingerprinter: ...

    def describe(self) -> str:
        """Where the state lives, for messages (never a password)."""
        ...

    def exists(self) -> bool: ...

    def inventory(self, sync: str) -> dict[str, InventoryEntry]: ...

    def put_inventory(self, sync: str, entries: Mapping[str, InventoryEntry]) -> None: ...

    def drop_inventory(self, sync: str, keys: list[str] | None = None) -> None: ...

    def status(self, sync: str) -> SyncStatus: ...

    def all_status(self) -> list[SyncStatus]: ...

    def update_status(self, sync: str, **changes: str | None) -> SyncStatus: ...

    def forget(self, sync: str) -> None: ...

    def hold(self, sync: str, *, wait: float = 10.0) -> contextlib.AbstractContextManager[Lease]:
        """Exclusive while a writing run of ``sync`` lasts; waits ``wait`` seconds, then raises
        :class:`~reconciler.errors.StateError` naming the holder. The run stops writing once
        the lease is set (a PostgreSQL lock whose session cannot be vouched for)."""
        ...

    def holders(self, syncs: list[str]) -> dict[str, str]:
        """Sync -> the replica that holds it (runs it now, or would next); empty for SQLite."""
        ...

    def close(self) -> None: ...
