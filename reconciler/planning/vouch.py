"""Which destination values state can vouch for without reading them."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from reconciler.model import InventoryEntry, Lifecycle, ObservedEntry


def vouch(observed: ObservedEntry, recorded: InventoryEntry | None) -> ObservedEntry:
    """An entry whose version has not moved since our last write still holds the value we
    wrote: take its fingerprint from state instead of reading the value. That holds for a
    soft-deleted (pending-deletion) entry too, so restoring it plans no needless update."""
    if (
        observed.fingerprint is None
        and observed.lifecycle in (Lifecycle.ACTIVE, Lifecycle.PENDING_DELETION)
        and recorded is not None
        and recorded.fingerprint is not None
        and observed.version is not None
        and observed.version == recorded.version
    ):
        return dataclasses.replace(observed, fingerprint=recorded.fingerprint)
    return observed


def vouch_all(
    observed: Mapping[str, ObservedEntry], inventory: Mapping[str, InventoryEntry]
) -> dict[str, ObservedEntry]:
    return {key: vouch(entry, inventory.get(key)) for key, entry in observed.items()}
