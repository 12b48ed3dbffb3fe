"""Syncs triggered together run on one listing per destination target.

A ``git pull`` that changes many specs, a source change read by many syncs, and the periodic
checks of one target (given one phase, so they come due together) reach the runner as a
group: the group is announced to the shared :class:`~reconciler.engine.sharing.Listings`
first, so the first run of each target lists it for all. Interval triggers arrive one by
one from the scheduler, so they are collected for a short window before they are announced.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from reconciler.destinations import catalog as catalog_mod
from reconciler.destinations.catalog import Catalog
from reconciler.engine.reconcile import members, target_id
from reconciler.engine.sharing import Listings
from reconciler.specs.model import SpecSet

#: how long interval triggers are collected before their group is announced
WINDOW_SECONDS = 0.05


class Batches:
    def __init__(self, listings: Listings, destinations: Catalog | None,
                 specs: Callable[[], SpecSet | None]) -> None:
        self.listings = listings
        self._destinations = destinations
        self._specs = specs
        self._collected: list[tuple[str, str]] = []
        self._flush: asyncio.TimerHandle | None = None

    def _catalog(self) -> Catalog:
        return self._destinations or catalog_mod.default()

    def together(self, names: Iterable[str]) -> None:
        """Announce syncs about to be triggered at once."""
        specs = self._specs()
        if specs is None:
            return
        syncs = [specs.syncs[n] for n in names if n in specs.syncs]
        if len(syncs) > 1:
            self.listings.share(members(specs, self._catalog(), syncs))

    def phase(self, name: str) -> float | None:
        """The periodic-check phase of a sync: one per destination target."""
        specs = self._specs()
        sync = specs.syncs.get(name) if specs else None
        if specs is None or sync is None or self._catalog().get(sync.destination) is None:
            return None
        return int(target_id(specs, self._catalog(), sync)[:8], 16) / 0x1_0000_0000

    def collect(self, name: str, reason: str, fire: Callable[[str, str], object]) -> None:
        """An interval trigger: fire it, with the others of the same moment, after the window."""
        self._collected.append((name, reason))
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(WINDOW_SECONDS, self._release, fire)

    def _release(self, fire: Callable[[str, str], object]) -> None:
        collected, self._collected, self._flush = self._collected, [], None
        self.together(name for name, _ in collected)
        for name, reason in collected:
            fire(name, reason)
