"""Daemon settings (from the command line; every default is safe for a single host)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.daemon.listen import DEFAULT_LISTEN, parse_listen
from reconciler.errors import ConfigError

if TYPE_CHECKING:  # `trigger` reads this module; it needs none of the state's imports
    from reconciler.state.location import StateLocation

__all__ = ["DEFAULT_LISTEN", "ConfigError", "DaemonConfig", "parse_listen"]


@dataclass(frozen=True)
class DaemonConfig:
    """``state_dir`` always holds this host's ``daemon.json``; the state itself is there too
    unless ``state`` points at PostgreSQL."""

    spec_dir: Path
    state_dir: Path
    #: health/metrics/webhook server; None = off
    listen: tuple[str, int] | None = ("127.0.0.1", 9464)
    #: syncs reconciled at once, overall and per destination connection
    workers: int = 4
    per_connection: int = 2
    #: how long SIGTERM waits for reconciles in progress
    shutdown_timeout: float = 30.0
    #: watchfiles timing (milliseconds): ``step`` is the latency floor, ``debounce`` the cap
    watch_step_ms: int = 50
    watch_debounce_ms: int = 1600
    install_signals: bool = True
    #: PostgreSQL state shared by replicas (None: SQLite in ``state_dir``)
    state: StateLocation | None = None
    #: this replica's name among those sharing the state (its sessions' application_name)
    replica: str | None = None
    #: a replica silent this long has its syncs taken over (heartbeats every third of it)
    lease_seconds: float = 30.0
    #: a long-lived part (file watcher, health monitor) that dies is restarted after
    #: ``restart_pause`` seconds; dying more than ``max_restarts`` times a minute stops the
    #: daemon with exit code 1
    max_restarts: int = 5
    restart_pause: float = 1.0

    @property
    def location(self) -> StateLocation:
        from reconciler.state.location import StateLocation

        return self.state or StateLocation(self.state_dir)
