"""``daemon.json`` in the state directory: what the running daemon plans next (next periodic
run, next retry and how many attempts failed), for ``reconciler status`` and ``/status``.

The SQLite store keeps results; this file keeps intentions, which only mean something while
the daemon that wrote them is alive.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reconciler.daemon.daemon import Daemon

FILE_NAME = "daemon.json"


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write(state_dir: Path, data: dict[str, Any]) -> None:
    """Atomically (temp file + rename), readable by the service user only."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".daemon-", dir=state_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
        os.replace(tmp, state_dir / FILE_NAME)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


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


def summary(d: Daemon) -> str:
    """systemd's STATUS= line: how many syncs, which are failing."""
    failing = sorted(n for n, r in d.last.items() if r["result"] == "failure")
    total = len(d.specs.syncs) if d.specs else 0
    text = f"{total} sync(s), {len(failing)} failing"
    if failing:
        text += ": " + ", ".join(failing[:5]) + (" ..." if len(failing) > 5 else "")
    return text


def snapshot(d: Daemon, *, running: bool = True) -> dict[str, Any]:
    """What the file and ``/status`` hold: per sync, its state, next run, next retry."""
    syncs: dict[str, Any] = {}
    for name, sync in (d.specs.syncs.items() if d.specs else ()):
        why = d.why_not(sync)
        last = d.last.get(name, {})
        syncs[name] = {
            "state": "invalid-kept" if name in d.kept else ("active" if why is None else why.split(" ")[0]),
            "nextRunAt": iso(d.schedule.next_run(name)) if running else None,
            "nextAttemptAt": iso(d.next_attempt.get(name)) if running else None,
            "failedAttempts": d.attempts.get(name, 0),
            "lastResult": last.get("result"),
            "lastRunAt": iso(last.get("at")),
            "lastRunId": last.get("runId"),
        }
    for name in sorted(d.rejected):
        syncs[name] = {"state": "invalid"}
    return {"format_version": "1", "pid": os.getpid(), "running": running, "ready": d.ready,
            "startedAt": iso(d.started_at), "updatedAt": iso(time.time()), "syncs": syncs}
