"""The seeds' status fields of one sync: what every state backend stores per sync."""

from __future__ import annotations

from dataclasses import dataclass, fields


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


#: the columns, in the order a row is read back
STATUS_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(SyncStatus))
