"""The systemd unit: it verifies, its hardening scores 1.5 or lower, its credentials match the
examples' `{credential: …}` names; and the daemon speaks the notify protocol it declares."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from reconciler.daemon.systemd import Notifier
from tests.support.cli import Workspace
from tests.support.daemon import DaemonHarness

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "systemd" / "reconciler.service"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed (apt-get install systemd)")


def _settings() -> list[tuple[str, str]]:
    out = []
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            out.append((key, value))
    return out


def _one(key: str) -> str:
    values = [v for k, v in _settings() if k == key]
    assert len(values) == 1, f"{key}: {values}"
    return values[0]


def _installed_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this checkout's entry point (verify wants a real file)."""
    exe = Path(sys.executable).parent / "reconciler"
    text = UNIT.read_text().replace("/opt/reconciler/bin/reconciler", str(exe if exe.exists() else sys.executable))
    copy = tmp_path / "reconciler.service"
    copy.write_text(text)
    return copy


@needs_analyze
def test_unit_verifies(tmp_path: Path) -> None:
    r = subprocess.run([ANALYZE, "verify", str(_installed_copy(tmp_path))], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and "reconciler.service" not in r.stderr, r.stderr


@needs_analyze
def test_unit_hardening_scores_at_most_1_5(tmp_path: Path) -> None:
    r = subprocess.run([ANALYZE, "security", "--offline=true", str(_installed_copy(tmp_path))],
                       capture_output=True, text=True, timeout=60)
    found = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout)
    assert found, r.stdout + r.stderr
    assert float(found.group(1)) <= 1.5, r.stdout


def test_unit_declares_what_the_daemon_needs() -> None:
    assert _one("Type") == "notify"
    assert _one("ExecStart").split()[1] == "run"
    assert "-HUP" in _one("ExecReload")
    assert _one("StateDirectory") == "reconciler"
    assert _one("DynamicUser") == "yes" or _one("User") not in ("", "root", "0")
    assert int(_one("WatchdogSec").rstrip("s")) >= 10
    assert int(_one("TimeoutStopSec").rstrip("s")) > 30, "longer than the daemon's default --shutdown-timeout"


def test_load_credentials_cover_every_credential_reference_in_the_examples() -> None:
    loaded = {v.split(":", 1)[0] for k, v in _settings() if k == "LoadCredential"}
    used: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if set(node) == {"credential"}:
                used.add(str(node["credential"]))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for spec in (ROOT / "examples").rglob("*.yaml"):
        for doc in yaml.safe_load_all(spec.read_text()):
            walk(doc)
    used |= set(re.findall(r"\{credential: ([\w.-]+)\}", (ROOT / "README.md").read_text()))
    assert used, "the examples use {credential: …} references"
    assert used <= loaded, f"no LoadCredential= for {sorted(used - loaded)}"


def test_daemon_notifies_ready_status_watchdog_and_stopping(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    monkeypatch.setenv("WATCHDOG_USEC", "100000")  # ping every 50 ms
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    ws = Workspace(tmp_path, "http://127.0.0.1:9")  # connections only: nothing to reconcile
    h = DaemonHarness(ws, notifier=Notifier(path)).start()
    try:
        messages = [sock.recv(4096).decode() for _ in range(3)]
    finally:
        assert h.stop() == 0
    sock.settimeout(0.5)
    rest = []
    try:
        while True:
            rest.append(sock.recv(4096).decode())
    except TimeoutError:
        pass
    sock.close()
    ready = messages[0].splitlines()
    assert ready[0] == "READY=1" and ready[1].startswith("STATUS=0 sync(s), 0 failing")
    assert f"MAINPID={os.getpid()}" in ready
    assert "WATCHDOG=1" in messages[1:] + rest
    assert any(m.startswith("STOPPING=1") for m in rest)
