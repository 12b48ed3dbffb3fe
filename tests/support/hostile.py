"""Run the CLI in a child process (a hang becomes a timeout, not a stuck suite), optionally as an
unprivileged user: root reads any file, so "unreadable" can only be tested without root."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534


def run_cli(*args: str, unprivileged: bool = False, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    prefix: list[str] = []
    if unprivileged and os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv, "setpriv (util-linux) is needed to drop root for this test"
        prefix = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", "HOME": "/nonexistent"}
    return subprocess.run([*prefix, sys.executable, "-m", "reconciler.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd="/")


@contextmanager
def shared_tmp() -> Iterator[Path]:
    """A temp dir an unprivileged child can enter (pytest's tmp_path is private to root)."""
    d = Path(tempfile.mkdtemp(prefix="reconciler-hostile-"))
    os.chmod(d, 0o755)  # noqa: S103 - the unprivileged child must enter it
    try:
        yield d
    finally:
        for p in [d, *d.rglob("*")]:
            if p.is_dir() and not p.is_symlink():
                os.chmod(p, 0o755)  # noqa: S103 - undo the test's 000, so it can be removed
        shutil.rmtree(d)
