"""``daemon.json`` in the state directory: what the running daemon plans next (next periodic
run, next retry and how many attempts failed), for ``reconciler status`` and ``/status``.

The SQLite store keeps results; this file keeps intentions, which only mean something while
the daemon that wrote them is alive.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler import atomicfile
from reconciler.daemon.records import SyncRecord

FILE_NAME = "daemon.json"


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write(state_dir: Path, data: dict[str, Any]) -> None:
    """Atomically (temp file + rename), readable by the service user only."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    atomicfile.replace(state_dir / FILE_NAME, json.dumps(data, indent=2, sort_keys=True).encode("utf-8"),
                       prefix=".daemon-")


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process (systemd's DynamicUser): alive
        return True
    return True


def read_live(state_dir: Path) -> dict[str, Any] | None:
    """The file, when a daemon that is still running wrote it; else None."""
    try:
        data = json.loads((state_dir / FILE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not data.get("running") or not _alive(data.get("pid")):
        return None
    return data


def write_logged(state_dir: Path, data: dict[str, Any], log: Any) -> None:
    """:func:`write`, a failure logged: the status file is for people, never a reason to stop."""
    try:
        write(state_dir, data)
    except OSError as e:
        log.warning("status.write_failed", error=e.strerror or type(e).__name__)


def summary(records: Mapping[str, SyncRecord], total: int) -> str:
    """systemd's STATUS= line: how many syncs, which are failing."""
    failing = sorted(n for n, r in records.items() if r.last_result == "failure")
    text = f"{total} sync(s), {len(failing)} failing"
    if failing:
        text += ": " + ", ".join(failing[:5]) + (" ..." if len(failing) > 5 else "")
    return text


def snapshot(rows: Mapping[str, tuple[str, SyncRecord]], next_run: Callable[[str], float | None], *,
             ready: bool, started_at: float, running: bool = True) -> dict[str, Any]:
    """What the file and ``/status`` hold: per sync (its state and record), its next run and
    next retry; an invalid sync that runs nothing shows only its state."""
    syncs: dict[str, Any] = {}
    for name, (state, rec) in rows.items():
        if state == "invalid":
            syncs[name] = {"state": state}
            continue
        syncs[name] = {
            "state": state,
            "nextRunAt": iso(next_run(name)) if running else None,
            "nextAttemptAt": iso(rec.next_attempt) if running else None,
            "failedAttempts": rec.failed_attempts,
            "lastResult": rec.last_result,
            "lastRunAt": iso(rec.last_at),
            "lastRunId": rec.last_run_id,
        }
    return {"format_version": "1", "pid": os.getpid(), "running": running, "ready": ready,
            "startedAt": iso(started_at), "updatedAt": iso(time.time()), "syncs": syncs}
