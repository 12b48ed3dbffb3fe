"""Usage errors exit 1: argparse's own 2 means "changes pending" under plan --detailed-exitcode,
so a typo'd flag in CI must never read as "there is a diff"."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

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


def _exe(*argv: str, cwd: str | None = None) -> subprocess.CompletedProcess[str]:
    """The executable as installed (`python -m reconciler.cli` runs the same entry point)."""
    return subprocess.run([sys.executable, "-m", "reconciler.cli", *argv], capture_output=True, text=True,
                          timeout=60, cwd=cwd)


def test_executable_flushes_what_it_prints_before_its_fast_exit(tmp_path: Path) -> None:
    """validate, --help, --version and usage errors end without the interpreter's teardown:
    everything they print must still arrive, through pipes, with the right exit code."""
    (tmp_path / "c.yaml").write_text("kind: Connection\nname: local\napp: file\npath: s.yaml\n")
    ok = _exe("validate", str(tmp_path))
    assert (ok.returncode, ok.stdout.startswith("Valid: 0 sync(s), 1 connection(s)")) == (0, True), ok
    (tmp_path / "bad.yaml").write_text("kind: SecretSync\nname: x\nbogus: 1\n")
    bad = _exe("validate", str(tmp_path))
    assert bad.returncode == 1 and "bad.yaml:3" in bad.stderr and "Invalid:" in bad.stderr, bad
    usage = _exe("--help")
    assert usage.returncode == 0 and "validate" in usage.stdout
    assert _exe("--version").stdout.startswith("reconciler ")
    assert _exe("validate", "--bogus").returncode == 1


def test_executable_with_its_output_closed_exits_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("kind: Connection\nname: local\napp: file\npath: s.yaml\n")
    proc = subprocess.Popen([sys.executable, "-m", "reconciler.cli", "validate", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # as `| head -0` does, before anything is written
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 1
    assert "Traceback" not in err, err


def test_a_reader_that_stops_early_gets_no_broken_pipe_error(tmp_path: Path) -> None:
    """`reconciler status DIR | head -1`: a reader that has gone (here: before anything was
    written) is no error to report, as with git or cat."""
    (tmp_path / "s.yaml").write_text("kind: SecretSync\nname: app\nsource: local\nenvironment: dev\n"
                                     "secretPath: /app\ndestination: aws-secrets-manager\nconnection: aws\n"
                                     "destinationConfig: {region: us-east-1}\n")
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        r = subprocess.run([sys.executable, "-m", "reconciler.cli", "status", str(tmp_path),
                            "--state-dir", str(tmp_path / "state")], stdout=write_end, stderr=subprocess.PIPE,
                           text=True, timeout=60)
    finally:
        os.close(write_end)
    assert r.returncode == 1
    assert "broken pipe" not in r.stderr.lower() and "Traceback" not in r.stderr, r.stderr
    assert "Exception ignored" not in r.stderr, r.stderr
