"""Usage errors exit 1: argparse's own 2 means "changes pending" under plan --detailed-exitcode,
so a typo'd flag in CI must never read as "there is a diff"."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys

import pytest

from reconciler.cli import main


def _run(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(list(argv))
    return code, err.getvalue()


@pytest.mark.parametrize("argv", [
    (),
    ("plan", "--no-such-flag"),
    ("plan", "--detailed-exitcode", "--bogus"),
    ("frobnicate",),
    ("run", "--workers", "many"),
    ("import",),
    ("trigger", "app", "--timeout", "nan"),  # float() takes it; it failed after the run was triggered
    ("run", "--shutdown-timeout", "inf"),
    ("run", "--lease-seconds", "nan"),
])
def test_usage_error_exits_1(argv: tuple[str, ...]) -> None:
    code, err = _run(*argv)
    assert code == 1, err
    assert "error:" in err and "usage:" in err


def test_help_and_version_exit_0() -> None:
    assert _run("--help")[0] == 0
    assert _run("--version")[0] == 0


def test_console_script_exit_code_is_1() -> None:
    r = subprocess.run([sys.executable, "-m", "reconciler.cli", "plan", "--bogus"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1, r.stderr
