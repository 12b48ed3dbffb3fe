"""`reconciler run` as a real process: SIGHUP reloads, SIGTERM during an apply loses nothing
(when the stop timeout runs out, the apply starts no new write) and the next start converges."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from reconciler.state.store import StateStore
from tests.emulators.faultproxy import FaultProxy
from tests.support.canary import CANARIES, find_leaks
from tests.support.cli import Workspace
from tests.support.daemon import wait_until

N = 60
ROOT = Path(__file__).resolve().parents[1]


class Proc:
    """The daemon as a child process; stderr (JSON lines) collected on a thread."""

    def __init__(self, ws: Workspace, *extra: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("NOTIFY_SOCKET", None)
        self.p = subprocess.Popen(
            [sys.executable, "-m", "reconciler.cli", "run", str(ws.specs), "--state-dir", str(ws.state),
             "--listen", "off", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
        self.lines: list[str] = []
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self) -> None:
        assert self.p.stderr is not None
        for raw in self.p.stderr:
            self.lines.append(raw.decode("utf-8", "replace"))

    def events(self, name: str) -> list[dict[str, Any]]:
        out = []
        for line in list(self.lines):
            event = json.loads(line)  # one JSON object per line, always
            if event.get("event") == name:
                out.append(event)
        return out

    def wait_for(self, name: str, timeout: float = 20) -> None:
        wait_until(lambda: self.events(name) or self.p.poll() is not None, timeout, name)
        assert self.events(name), f"exited {self.p.returncode} before {name}:\n{''.join(self.lines)}"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        self.p.send_signal(sig)
        code = self.p.wait(timeout)
        self._t.join(5)
        return code


@pytest.fixture
def setup(tmp_path: Path, aws_endpoint: str) -> Any:
    proxy = FaultProxy(aws_endpoint)
    endpoint = proxy.start()
    ws = Workspace(tmp_path, endpoint)
    ws.write_spec("app.yaml", [ws.sync()])
    yield ws, proxy
    proxy.stop()


def _secrets(tag: str) -> dict[str, object]:
    return {f"K{i:03d}": f"{tag}-{i}" for i in range(N)} | {"CANARY": CANARIES[0]}


def _recorded(ws: Workspace) -> dict[str, Any]:
    state = StateStore(ws.state, readonly=True)
    try:
        return state.inventory("app")
    finally:
        state.close()


def test_sigterm_during_apply_loses_nothing_and_the_next_start_converges(
        setup: tuple[Workspace, FaultProxy], sm_client: Any) -> None:
    ws, proxy = setup
    ws.write_spec("connections.yaml", [
        {"kind": "Connection", "name": "local", "app": "file", "path": "../secrets.yaml"},
        {"kind": "Connection", "name": "aws", "app": "aws", "endpoint": ws.aws_endpoint, "region": "us-east-1",
         "maxConcurrency": 2,
         "credentials": {"method": "access-key", "accessKeyId": {"env": "AWS_ACCESS_KEY_ID"},
                         "secretAccessKey": {"env": "AWS_SECRET_ACCESS_KEY"}}}])
    ws.set_secrets(_secrets("v1"))
    proxy.delay = 0.02  # ~0.6 s for the whole first apply: long enough to stop it midway

    # 1. graceful: SIGHUP reloads; SIGTERM mid-apply lets the apply finish, then exits 0
    d = Proc(ws)
    d.wait_for("change.applied")
    d.p.send_signal(signal.SIGHUP)
    code = d.stop()
    assert code == 0, "".join(d.lines)
    assert d.events("daemon.stopped") and d.events("daemon.stopped")[0]["abandoned"] == []
    assert len(_recorded(ws)) == N + 1, "every write the apply made is in the inventory"
    assert find_leaks(d.lines) == []

    # 2. impatient: a 0.1 s stop timeout halts the apply mid-way (no new write); still exit 0
    ws.set_secrets(_secrets("v2"))
    d = Proc(ws, "--shutdown-timeout", "0.1")
    d.wait_for("change.applied")
    t0 = time.monotonic()
    code = d.stop()
    assert code == 0 and time.monotonic() - t0 < 10, "".join(d.lines)
    assert d.events("daemon.stop_timeout"), "".join(d.lines)
    assert len(d.events("change.applied")) < N, "the apply was cut short"
    assert find_leaks(d.lines) == []

    # 3. SIGHUP reload, observed on a fresh start; the next start converges
    proxy.delay = 0
    d = Proc(ws)
    d.wait_for("daemon.ready")
    d.p.send_signal(signal.SIGHUP)
    wait_until(lambda: any(e["reason"] == "signal" for e in d.events("spec.loaded")), 10, "the SIGHUP reload")
    assert d.stop(signal.SIGINT) == 0
    assert d.events("sync.succeeded") or d.events("reconcile.finished")
    for i in range(N):
        assert sm_client.get_secret_value(SecretId=f"app/K{i:03d}")["SecretString"] == f"v2-{i}"
    plan = ws.run("plan", "--detailed-exitcode")
    assert plan.code == 0, str(plan)
    assert find_leaks(d.lines) == [] and ws.leaks() == []


def test_a_stop_timeout_halts_new_writes_instead_of_abandoning_them(
        setup: tuple[Workspace, FaultProxy], sm_client: Any) -> None:
    """When --shutdown-timeout ran out, the apply was abandoned mid-flight and the process
    ended with os._exit: a write on the wire then was never recorded. Now the run is told to
    start no new write, the ones in flight finish and are recorded, and nothing is abandoned."""
    ws, proxy = setup
    ws.write_spec("connections.yaml", [
        {"kind": "Connection", "name": "local", "app": "file", "path": "../secrets.yaml"},
        {"kind": "Connection", "name": "aws", "app": "aws", "endpoint": ws.aws_endpoint, "region": "us-east-1",
         "maxConcurrency": 2,
         "credentials": {"method": "access-key", "accessKeyId": {"env": "AWS_ACCESS_KEY_ID"},
                         "secretAccessKey": {"env": "AWS_SECRET_ACCESS_KEY"}}}])
    ws.set_secrets(_secrets("v1"))
    proxy.delay = 0.05
    d = Proc(ws, "--shutdown-timeout", "0.3")
    d.wait_for("change.applied")
    assert d.stop() == 0, "".join(d.lines)
    (stopped,) = d.events("daemon.stopped")
    assert stopped["abandoned"] == [], "".join(d.lines)
    applied = {e["key"] for e in d.events("change.applied")}
    assert 0 < len(applied) < N + 1, "halted part-way"
    assert set(_recorded(ws)) == applied, "every write that landed is in the inventory"
    (failed,) = d.events("sync.failed")
    assert failed["message"].endswith("changes not started: the apply was interrupted"), failed
    assert not d.events("daemon.ready"), "a first reconcile that ends in the stop does not make it ready"
    assert find_leaks(d.lines) == []
