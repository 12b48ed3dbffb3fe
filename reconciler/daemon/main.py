"""Entry point behind ``reconciler run``: check the arguments, then run the loop."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

from reconciler.daemon.config import ConfigError, DaemonConfig, parse_listen
from reconciler.logging import get_logger
from reconciler.state.location import StateLocation

#: a lease shorter than a second beats faster than a busy database answers; one longer than
#: an hour leaves a dead replica's syncs unreconciled that long
MIN_LEASE, MAX_LEASE = 1.0, 3600.0
#: a replica's name is also its sessions' application_name, which PostgreSQL shows in ASCII
#: (other characters as "?"; and only the first 63)
_REPLICA_NAME = re.compile(r"[\x21-\x7e][\x20-\x7e]{0,252}")


def run(spec_dir: Path, state: StateLocation, *, listen: str, workers: int, per_connection: int,
        shutdown_timeout: float, replica: str | None = None, lease_seconds: float = 30.0) -> int:
    """0 after a graceful stop (SIGTERM/SIGINT); 1 when the daemon cannot start."""
    from reconciler.daemon.daemon import Daemon

    try:
        address = parse_listen(listen)
        if workers < 1 or per_connection < 1:
            raise ConfigError("--workers and --per-connection must be at least 1")
        if not shutdown_timeout >= 0:  # also refuses nan
            raise ConfigError("--shutdown-timeout must not be negative")
        if replica is not None and not _REPLICA_NAME.fullmatch(replica):
            raise ConfigError(f"--replica-name {replica!r} must be 1 to 253 printable ASCII characters (a "
                              "Kubernetes pod name fits; PostgreSQL shows sessions' names in ASCII)")
        if not MIN_LEASE <= lease_seconds <= MAX_LEASE:  # also refuses nan
            raise ConfigError(f"--lease-seconds must be between {MIN_LEASE:g} and {MAX_LEASE:g} seconds "
                              f"(got {lease_seconds:g})")
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if not spec_dir.is_dir():
        print(f"error: spec directory {spec_dir} does not exist (or is not a directory)", file=sys.stderr)
        return 1
    state = StateLocation(state.directory.absolute(), state.url, state.key_file)
    config = DaemonConfig(spec_dir=spec_dir.absolute(), state_dir=state.directory, listen=address,
                          workers=workers, per_connection=per_connection, shutdown_timeout=shutdown_timeout,
                          state=state if state.shared else None, replica=replica, lease_seconds=lease_seconds)
    get_logger(component="daemon").info("daemon.starting", specs=str(config.spec_dir),
                                        state=state.describe(), listen=listen)
    from reconciler.state.store import StateError

    daemon = Daemon(config)
    try:
        code = asyncio.run(daemon.run())
        if daemon.abandoned:
            # the stop timeout ran out: end now rather than wait at interpreter exit for the
            # engine's worker threads (every write that landed is already recorded)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        return code
    except OSError as e:  # the listen address is taken, the state directory is not writable, ...
        print(f"error: cannot start the daemon: {e.strerror or e}"
              f"{' (' + str(e.filename) + ')' if e.filename else ''}", file=sys.stderr)
        return 1
    except StateError as e:
        print(f"error: cannot start the daemon: {e}", file=sys.stderr)
        return 1
