"""One run of a sync at a time, across processes sharing a state directory.

Two ``apply`` runs of one sync (or an ``apply`` beside the daemon) would each plan the same
creates and race to make them. A run that writes takes an exclusive lock on
``<state>/locks/<sync>.lock`` (``flock``: released by the kernel when the process dies, so a
crash never leaves it held) for as long as that sync runs; ``plan`` and ``status`` never take
it. A second run waits a bounded time, then fails naming the holder.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from reconciler.errors import StateError

POLL_SECONDS = 0.1


@contextlib.contextmanager
def hold(state_dir: Path, sync: str, *, wait: float = 10.0) -> Iterator[None]:
    """Hold the lock of ``sync`` (a slug: safe as a file name) while the body runs."""
    locks = state_dir / "locks"
    try:
        locks.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(locks / _file_name(sync), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as e:
        raise StateError(f"cannot create the lock for sync {sync} under {locks}: "
                         f"{e.strerror or type(e).__name__}") from None
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StateError(f"sync {sync} is being reconciled by {_holder(fd)} (state at {state_dir}); "
                                     "try again when it is done") from None
                time.sleep(POLL_SECONDS)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _file_name(sync: str) -> str:
    """``<sync>.lock``; a name longer than a file name may be (a slug may have 256 characters)
    keeps a readable prefix and a digest of the whole name, so two long names never share one."""
    name = f"{sync}.lock"
    if len(name.encode()) <= 255:
        return name
    return f"{sync[:180]}-{hashlib.sha256(sync.encode()).hexdigest()[:32]}.lock"


def _holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode().strip()
    except OSError:
        pid = ""
    return f"pid {pid}" if pid.isdigit() else "another process"
