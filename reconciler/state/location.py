"""Where the state is, and opening it: a SQLite state directory (the default) or, with a
``postgresql://`` URL, the PostgreSQL state that replicas share.

The directory is always there: with PostgreSQL it still holds what is only this host's (the
daemon's ``daemon.json``). The CLI opens a state per command; the daemon opens one
:class:`Opener` and takes a store from it for each run — SQLite stores are per thread, a
PostgreSQL one shares a single pool.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.state.backend import StateBackend
from reconciler.state.store import StateStore


@dataclass(frozen=True)
class StateLocation:
    directory: Path
    #: ``postgresql://…`` (checked: no literal password); None = SQLite in ``directory``
    url: str | None = None
    #: the shared fingerprint key (PostgreSQL only; SQLite keeps its own in ``directory``)
    key_file: Path | None = None

    @property
    def shared(self) -> bool:
        return self.url is not None

    def describe(self) -> str:
        if self.url is None:
            return str(self.directory)
        from reconciler.state.pg.url import parse

        return f"postgresql://{parse(self.url).where}"

    def check(self) -> None:
        """Refuse a bad URL (a literal password, another scheme) before anything connects."""
        if self.url is not None:
            from reconciler.state.pg.url import parse

            parse(self.url)

    def database(self, *, readonly: bool = False, pool_size: int = 4, name: str | None = None) -> Any:
        """A :class:`reconciler.state.pg.database.Database` (PostgreSQL only); ``name`` is the
        replica's, as its sessions show in ``pg_stat_activity``."""
        from reconciler.state.pg.database import Database
        from reconciler.state.pg.url import parse

        assert self.url is not None
        return Database(parse(self.url), self.key_file, readonly=readonly, pool_size=pool_size, name=name)

    def open(self, *, readonly: bool = False) -> StateBackend:
        """A store for one command; ``close()`` releases everything it opened."""
        if self.url is None:
            return StateStore(self.directory, readonly=readonly)
        from reconciler.state.pg.store import PostgresStore

        return PostgresStore(self.database(readonly=readonly, pool_size=2))


class Opener:
    """The daemon's state: ``open()`` for each run (thread-safe), ``close()`` once at the end."""

    def __init__(self, location: StateLocation, *, pool_size: int = 4, name: str | None = None) -> None:
        self.location = location
        self._pool_size = pool_size
        self.name = name
        self._db: Any = None
        self._lock = threading.Lock()

    def database(self) -> Any:
        """The shared PostgreSQL database (made on first use)."""
        with self._lock:
            if self._db is None:
                self._db = self.location.database(pool_size=self._pool_size, name=self.name)
            return self._db

    def open(self) -> StateBackend:
        if self.location.url is None:
            return StateStore(self.location.directory)
        from reconciler.state.pg.store import PostgresStore

        return PostgresStore(self.database(), owns=False)

    def ping(self) -> str | None:
        """Why the state cannot be used now (None: it can). SQLite is local: always usable."""
        if self.location.url is None or self._db is None:
            return None
        reason: str | None = self._db.ping()
        return reason

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
