"""Issue 13 items 6, 7, 12 and 13: an interrupted apply, two runs of one sync at once, a run
that waits on a silent endpoint, and an apply of a sync that cannot run."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from reconciler.state import locks
from tests.emulators.faultproxy import FaultProxy
from tests.support.cli import Workspace

REPO = Path(__file__).resolve().parents[1]


def _aws_connection(ws: Workspace, endpoint: str, **settings: Any) -> None:
    ws.write_spec("connections.yaml", [
        {"kind": "Connection", "name": "local", "app": "file", "path": "../secrets.yaml"},
        {"kind": "Connection", "name": "aws", "app": "aws", "endpoint": endpoint, "region": "us-east-1",
         "credentials": {"method": "access-key", "accessKeyId": {"env": "AWS_ACCESS_KEY_ID"},
                         "secretAccessKey": {"env": "AWS_SECRET_ACCESS_KEY"}}, **settings},
    ])


def test_apply_of_a_disabled_sync_by_name_fails(tmp_path: Path, aws_endpoint: str) -> None:
    ws = Workspace(tmp_path, aws_endpoint)
    ws.write_spec("app.yaml", [ws.sync(isEnabled=False)])
    r = ws.run("apply", "--sync", "app")
    assert r.code == 1 and "sync app is disabled" in r.err, str(r)
    r = ws.run("apply", "--sync", "nope")
    assert r.code == 1 and "no sync named 'nope'" in r.err, str(r)


def test_a_second_run_of_a_sync_waits_then_names_the_holder(tmp_path: Path, aws_endpoint: str,
                                                            sm_client: Any) -> None:
    ws = Workspace(tmp_path, aws_endpoint)
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": "1"})
    ws.state.mkdir(parents=True)
    with locks.hold(ws.state, "app"):
        assert ws.run("plan").code == 0, "plan never waits on the lock"
        started = time.monotonic()
        r = ws.run("apply")
        assert r.code == 1 and f"sync app is being reconciled by pid {os.getpid()}" in r.out, str(r)
        assert time.monotonic() - started >= 9, "waited (bounded) before giving up"
        r = ws.run("status", "--json")
        assert "being reconciled" not in r.out and '"failed"' not in r.out, (
            "the run that waited attempted nothing: it must not record 'failed' over the holder's run")
    assert "app/A" not in {s["Name"] for s in sm_client.list_secrets()["SecretList"]}
    assert ws.run("apply").code == 0


class SilentServer:
    """Accepts connections on 127.0.0.1 and never answers."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self.held.append(self.sock.accept()[0])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def stop(self) -> None:
        self.sock.close()
        for c in self.held:
            c.close()


def test_a_silent_endpoint_ends_at_the_runs_deadline_and_says_so(tmp_path: Path, aws_endpoint: str) -> None:
    silent = SilentServer()
    try:
        ws = Workspace(tmp_path, aws_endpoint)
        _aws_connection(ws, silent.url, readTimeout=0.5, maxAttempts=20)
        ws.write_spec("app.yaml", [ws.sync(reconcile={"timeout": "3s"})])
        ws.set_secrets({"A": "1"})
        started = time.monotonic()
        r = ws.run("plan", "--log-level", "warning")
        took = time.monotonic() - started
        assert r.code == 1 and "deadline of 3s has passed" in r.out + r.err, str(r)
        assert "destination.retry" in r.err, "a log line while waiting on retries"
        assert took < 8, f"{took:.1f}s: 20 attempts x 0.5s and back-off would take far longer"
    finally:
        silent.stop()


def test_ctrl_c_while_an_apply_retries_a_silent_endpoint_stops_retrying(tmp_path: Path, aws_endpoint: str) -> None:
    """The stop flag held back writes only: an apply still reading a silent endpoint kept
    retrying to its 2-minute deadline after Ctrl-C said it was finishing up."""
    silent = SilentServer()
    try:
        ws = Workspace(tmp_path, aws_endpoint)
        _aws_connection(ws, silent.url, readTimeout=0.5, maxAttempts=20)
        ws.write_spec("app.yaml", [ws.sync()])
        ws.set_secrets({"A": "1"})
        proc = subprocess.Popen(
            [sys.executable, "-m", "reconciler.cli", "apply", str(ws.specs), "--state-dir", str(ws.state)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "NO_COLOR": "1"}, cwd=REPO)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(silent.held) < 2:  # reading, and retrying
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        started = time.monotonic()
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - started
    finally:
        silent.stop()
    assert proc.returncode == 130, out + err
    assert took < 5, f"{took:.1f}s after Ctrl-C: one read timeout at most, not the run's deadline"
    assert "interrupted" in out and "deadline" not in out, out


def test_ctrl_c_mid_apply_stops_new_writes_and_records_what_landed(tmp_path: Path, aws_endpoint: str,
                                                                    sm_client: Any) -> None:
    proxy = FaultProxy(aws_endpoint)
    url = proxy.start()
    proxy.delay = 0.15
    try:
        ws = Workspace(tmp_path, aws_endpoint)
        _aws_connection(ws, url, maxConcurrency=1)
        ws.write_spec("app.yaml", [ws.sync()])
        ws.set_secrets({f"K{i:02d}": f"v{i}" for i in range(40)})
        env = {**os.environ, "NO_COLOR": "1"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "reconciler.cli", "apply", str(ws.specs), "--state-dir", str(ws.state)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proxy.requests.count("CreateSecret") < 3:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proxy.stop()
    assert proc.returncode == 130, out + err
    assert "finishing the writes in flight" in err and "Interrupted" in err
    created = {s["Name"] for p in sm_client.get_paginator("list_secrets").paginate() for s in p["SecretList"]}
    assert 0 < len(created) < 40, "stopped starting writes"
    assert "not started: the apply was interrupted" in out
    not_started = 40 - len(created)
    assert [line for line in out.splitlines() if "not started" in line] == [
        f"app: {len(created)} created, 0 updated, 0 deleted, {not_started} not started",
        f"  ! {not_started} changes not started: the apply was interrupted"], "one line, not one per key"
    assert "change.failed" not in err, "a change the user stopped did not fail: no error line per key"
    import sqlite3

    db = sqlite3.connect(ws.state / "state.db")
    recorded = {k for (k,) in db.execute("SELECT key FROM inventory WHERE sync = 'app'")}
    db.close()
    assert recorded == created, "every write that landed is in the inventory"
    (message,) = db_message(ws.state)
    assert message == f"{not_started} changes not started: the apply was interrupted", message
    assert yaml.safe_load(ws.secrets_file.read_text())  # the source is untouched


def db_message(state: Path) -> tuple[str]:
    import sqlite3

    db = sqlite3.connect(state / "state.db")
    try:
        return db.execute("SELECT lastSyncMessage FROM status WHERE sync = 'app'").fetchone()  # type: ignore[no-any-return]
    finally:
        db.close()


class HtmlServer(SilentServer):
    """Answers every request 200 with a proxy's HTML page."""

    def _accept(self) -> None:
        page = b"<html><body>Please log in to the corporate proxy</body></html>"
        with contextlib.suppress(OSError):
            while True:
                conn = self.sock.accept()[0]
                self.held.append(conn)
                conn.settimeout(5)
                with contextlib.suppress(OSError):
                    conn.recv(65536)
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
                                 b"Content-Length: %d\r\n\r\n%s" % (len(page), page))
                    conn.close()


def test_a_200_that_is_not_the_services_answer_is_an_error(tmp_path: Path, aws_endpoint: str) -> None:
    """Before: botocore parsed the page as an empty answer, so apply said "created"."""
    html = HtmlServer()
    try:
        ws = Workspace(tmp_path, aws_endpoint)
        _aws_connection(ws, html.url, maxAttempts=1)
        ws.write_spec("app.yaml", [ws.sync()])
        ws.set_secrets({"A": "1"})
        r = ws.run("apply")
        assert r.code == 1, str(r)
        assert "not an AWS answer (text/html)" in r.out and "1 created" not in r.out, str(r)
    finally:
        html.stop()


def test_syncs_whose_long_names_share_a_prefix_have_their_own_locks(tmp_path: Path) -> None:
    a, b = "a" * 255 + "x", "a" * 255 + "y"
    with locks.hold(tmp_path, a), locks.hold(tmp_path, b, wait=0):
        pass  # two syncs: two locks, held at once
    with locks.hold(tmp_path, a):
        try:
            with locks.hold(tmp_path, a, wait=0.2):
                raise AssertionError("one sync, one lock")
        except locks.StateError as e:
            assert "being reconciled" in str(e)
