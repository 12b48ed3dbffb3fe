"""Replace a file whole or not at all: write a temporary file beside it, then rename it over
the target. A reader (or a crash) sees the old file or the new one, never half of either.

The daemon's status file, a saved plan and a secrets file written by an import all do this;
they differ in the mode the file gets, whether its owner is kept and whether the data must
reach the disk before the rename.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def replace(path: Path, data: bytes, *, mode: int = 0o600, keep_owner: bool = False, durable: bool = False,
            prefix: str = ".reconciler-") -> None:
    """Make ``path`` hold ``data``, atomically; the file has ``mode`` from the start (and the
    owner of the file it replaces, with ``keep_owner``, where we may give it). ``durable``:
    the data is on disk before the rename, so a power cut cannot leave an empty file.

    An OSError names ``path``, the file asked for, never the temporary beside it."""
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=prefix, dir=directory)
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(path)) from None
    try:
        os.fchmod(fd, mode)
        if keep_owner:
            with contextlib.suppress(OSError):
                st = path.stat()
                os.fchown(fd, st.st_uid, st.st_gid)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise OSError(e.errno, e.strerror, str(path)) from None
        raise
