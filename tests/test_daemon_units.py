"""The daemon's parts on their own: backoff, reload diffing, the runner's rules, the notify
protocol, the HTTP server's limits, the status file. No waiting on real timers."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.daemon import statusfile
from reconciler.daemon.backoff import retry_delay
from reconciler.daemon.config import ConfigError, parse_listen
from reconciler.daemon.runner import Runner
from reconciler.daemon.server import HttpServer, Request, Response
from reconciler.daemon.specdiff import merge
from reconciler.daemon.systemd import Notifier, watchdog_interval
from reconciler.specs.loader import load

# -- backoff ---------------------------------------------------------------------------------


def test_backoff_doubles_from_retry_interval_and_caps_at_the_interval() -> None:
    mid = [retry_delay(n, 30, 300, rand=lambda: 0.5) for n in range(1, 7)]
    assert mid == [30, 60, 120, 240, 300, 300]


def test_backoff_jitter_stays_within_a_fifth_and_under_the_cap() -> None:
    assert retry_delay(1, 30, 300, rand=lambda: 0.0) == pytest.approx(24)
    assert retry_delay(1, 30, 300, rand=lambda: 1.0) == pytest.approx(36)
    assert retry_delay(9, 30, 300, rand=lambda: 1.0) == 300


def test_backoff_never_retries_before_retry_after() -> None:
    assert retry_delay(1, 30, 300, retry_after=90, rand=lambda: 0.5) == 90
    assert retry_delay(1, 30, 300, retry_after=5, rand=lambda: 0.5) == 30
    # the destination's word beats our cap: earlier would only be throttled again
    assert retry_delay(1, 30, 300, retry_after=900, rand=lambda: 0.5) == 900


def test_backoff_with_retry_interval_above_interval() -> None:
    assert retry_delay(3, 600, 60, rand=lambda: 0.5) == 600


# -- config ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "want"), [
    ("127.0.0.1:9464", ("127.0.0.1", 9464)),
    ("0.0.0.0:80", ("0.0.0.0", 80)),  # noqa: S104
    ("[::1]:9464", ("::1", 9464)),
    (":9000", ("127.0.0.1", 9000)),
    ("off", None),
])
def test_parse_listen(text: str, want: Any) -> None:
    assert parse_listen(text) == want


@pytest.mark.parametrize("text", ["9464", "host:", "host:99999", "host:http"])
def test_parse_listen_refuses(text: str) -> None:
    with pytest.raises(ConfigError, match="HOST:PORT"):
        parse_listen(text)


# -- systemd notify --------------------------------------------------------------------------


def test_notify_sends_one_datagram_per_message(tmp_path: Path) -> None:
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(2)
        n = Notifier(path)
        assert n.enabled
        assert n.notify(ready=1, status="2 sync(s), 0 failing")
        assert sock.recv(4096) == b"READY=1\nSTATUS=2 sync(s), 0 failing"
        assert n.notify(watchdog=1, status="multi\nline")
        assert sock.recv(4096) == b"WATCHDOG=1\nSTATUS=multi line"


def test_notify_abstract_socket_and_absent_socket() -> None:
    name = f"reconciler-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2)
        assert Notifier("@" + name).notify(stopping=1)
        assert sock.recv(100) == b"STOPPING=1"
    assert not Notifier("").enabled and not Notifier("").notify(ready=1)
    assert not Notifier("/nonexistent/socket").notify(ready=1)


def test_watchdog_pings_at_half_the_interval() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "junk"}) is None


# -- reload diffing and last-known-good --------------------------------------------------------


def _conn() -> dict[str, Any]:
    return {"kind": "Connection", "name": "aws", "app": "aws", "endpoint": "http://127.0.0.1:1",
            "region": "us-east-1"}


def _sync(name: str, schema: str, **extra: Any) -> dict[str, Any]:
    doc = {"kind": "SecretSync", "name": name, "source": "local", "environment": "dev", "secretPath": f"/{name}",
           "destination": "aws-secrets-manager", "connection": "aws",
           "destinationConfig": {"region": "us-east-1", "mappingBehavior": "one-to-one"},
           "syncOptions": {"keySchema": schema}}
    doc.update(extra)
    return doc


def _specdir(tmp_path: Path) -> Path:
    d = tmp_path / "specs"
    d.mkdir()
    (tmp_path / "secrets.yaml").write_text("dev: {}\n")
    (d / "conn.yaml").write_text(yaml.safe_dump_all([
        _conn(), {"kind": "Connection", "name": "local", "app": "file", "path": "../secrets.yaml"}]))
    (d / "a.yaml").write_text(yaml.safe_dump(_sync("a", "a/{{secretKey}}")))
    (d / "b.yaml").write_text(yaml.safe_dump(_sync("b", "b/{{secretKey}}")))
    return d


def test_reload_names_added_changed_removed(tmp_path: Path) -> None:
    d = _specdir(tmp_path)
    first = merge(None, load(d))
    assert first.added == ("a", "b") and first.changed == () and first.removed == ()
    (d / "b.yaml").write_text("# a comment moves every line\n\n" + yaml.safe_dump(_sync("b", "b/{{secretKey}}")))
    (d / "c.yaml").write_text(yaml.safe_dump(_sync("c", "c/{{secretKey}}")))
    (d / "a.yaml").unlink()
    second = merge(first.specs, load(d))
    assert second.added == ("c",)
    assert second.changed == (), "moving lines is not a change"
    assert second.removed == ("a",)
    (d / "b.yaml").write_text(yaml.safe_dump(_sync("b", "b/{{secretKey}}", reconcile={"interval": "1m"})))
    assert merge(second.specs, load(d)).changed == ("b",)


def test_invalid_sync_keeps_its_last_valid_version(tmp_path: Path) -> None:
    d = _specdir(tmp_path)
    first = merge(None, load(d))
    (d / "a.yaml").write_text(yaml.safe_dump(_sync("a", "a/{{secretKey}}", bogus=1)))
    r = merge(first.specs, load(d))
    assert set(r.kept) == {"a"} and r.removed == () and r.changed == ()
    assert r.specs.syncs["a"] == first.specs.syncs["a"]
    assert any("bogus" in d.message or "bogus" in d.path for d in r.kept["a"])
    assert r.specs.syncs["b"] == first.specs.syncs["b"]


def test_unparseable_file_keeps_its_syncs_and_a_broken_connection_is_kept_too(tmp_path: Path) -> None:
    d = _specdir(tmp_path)
    first = merge(None, load(d))
    (d / "a.yaml").write_text("kind: SecretSync\nname: [unclosed\n")
    (d / "conn.yaml").write_text(yaml.safe_dump_all([
        {**_conn(), "region": 5}, {"kind": "Connection", "name": "local", "app": "file", "path": "../secrets.yaml"}]))
    r = merge(first.specs, load(d))
    assert set(r.kept) == {"a", "b"}, "a: its file does not parse; b: its connection is invalid"
    assert r.specs.connections["aws"] == first.specs.connections["aws"]
    assert r.removed == ()


def test_a_spec_directory_that_vanishes_keeps_every_sync_running(tmp_path: Path) -> None:
    """An unmounted volume or a checkout mid-replace is no deletion of every spec: the daemon
    logged "spec directory does not exist", then stopped reconciling everything."""
    d = _specdir(tmp_path)
    first = merge(None, load(d))
    shutil.rmtree(d)
    r = merge(first.specs, load(d))
    assert r.removed == () and set(r.kept) == {"a", "b"}, r
    assert r.specs.syncs == first.specs.syncs and r.specs.connections == first.specs.connections
    d.mkdir()
    (d / "empty.yaml").write_text("")
    assert merge(first.specs, load(d)).removed == ("a", "b"), "a readable directory without them: removed"


def test_never_valid_sync_is_rejected_not_run(tmp_path: Path) -> None:
    d = _specdir(tmp_path)
    first = merge(None, load(d))
    (d / "z.yaml").write_text(yaml.safe_dump(_sync("z", "z/{{secretKey}}", destination="nowhere")))
    r = merge(first.specs, load(d))
    assert "z" in r.rejected and "z" not in r.specs.syncs


# -- runner ----------------------------------------------------------------------------------


def test_runner_never_runs_a_sync_twice_at_once_and_coalesces_triggers() -> None:
    async def scenario() -> tuple[list[str], int, int]:
        gate = asyncio.Event()
        started: list[str] = []
        active: dict[str, int] = {}
        peak = {"all": 0, "same": 0}

        async def work(name: str, reason: str) -> None:
            started.append(f"{name}:{reason}")
            active[name] = active.get(name, 0) + 1
            peak["same"] = max(peak["same"], active[name])
            peak["all"] = max(peak["all"], sum(active.values()))
            await gate.wait()
            active[name] -= 1

        runner = Runner(work, lambda name: "conn-" + name[0], workers=3, per_connection=1)
        for name in ("a1", "a2", "b1", "c1", "d1"):
            runner.trigger(name, "start")
        for _ in range(5):
            runner.trigger("a1", "again")  # five triggers during a run: one rerun
        await asyncio.sleep(0.05)
        gate.set()
        while not runner.idle():
            await asyncio.sleep(0.01)
        return started, peak["all"], peak["same"]

    started, peak_all, peak_same = asyncio.run(scenario())
    assert peak_same == 1
    assert peak_all <= 3, "bounded overall"
    assert started.count("a1:start") == 1 and started.count("a1:again") == 1
    # a1 and a2 share a connection (limit 1): a2 waited for a1
    assert started.index("a2:start") > started.index("a1:start")
    assert sorted(set(started)) == ["a1:again", "a1:start", "a2:start", "b1:start", "c1:start", "d1:start"]


def test_runner_drain_stops_new_work_and_reports_stragglers() -> None:
    async def scenario() -> tuple[list[str], bool, list[str]]:
        forever = asyncio.Event()

        async def work(name: str, reason: str) -> None:
            await forever.wait()

        runner = Runner(work, lambda _n: None, workers=1)
        runner.trigger("slow", "start")
        runner.trigger("queued", "start")  # waits for the only worker
        await asyncio.sleep(0.02)
        left = await runner.drain(0.05)
        accepted = runner.trigger("late", "start")
        forever.set()
        await asyncio.sleep(0.02)
        return left, accepted, sorted(runner.running)

    left, accepted, running = asyncio.run(scenario())
    assert left == ["slow"] and not accepted and running == []


# -- HTTP server -----------------------------------------------------------------------------


async def _raw(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    out = await reader.read()
    writer.close()
    return out


def test_http_server_limits_and_errors() -> None:
    async def handler(req: Request) -> Response:
        if req.path == "/boom":
            raise RuntimeError("handler bug")
        return Response(200, f"{req.method} {req.path} {len(req.body)}".encode())

    async def scenario() -> dict[str, bytes]:
        server = HttpServer("127.0.0.1", 0, handler)
        await server.start()
        p = server.port
        out = {
            "ok": await _raw(p, b"POST /x?q=1 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"),
            "garbage": await _raw(p, b"NOT HTTP\r\n\r\n"),
            "big": await _raw(p, b"POST /x HTTP/1.1\r\nContent-Length: 999999\r\n\r\n"),
            "chunked": await _raw(p, b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            "boom": await _raw(p, b"GET /boom HTTP/1.1\r\n\r\n"),
        }
        await server.close()
        return out

    out = asyncio.run(scenario())
    assert out["ok"].startswith(b"HTTP/1.1 200 OK") and out["ok"].endswith(b"POST /x 3")
    assert out["garbage"].startswith(b"HTTP/1.1 400")
    assert out["big"].startswith(b"HTTP/1.1 413")
    assert out["chunked"].startswith(b"HTTP/1.1 411")
    assert out["boom"].startswith(b"HTTP/1.1 500") and b"handler bug" not in out["boom"]


# -- status file -----------------------------------------------------------------------------


def test_status_file_is_private_and_only_read_while_its_daemon_lives(tmp_path: Path) -> None:
    statusfile.write(tmp_path, {"running": True, "pid": os.getpid(), "syncs": {"a": {"nextAttemptAt": "x"}}})
    assert (tmp_path / statusfile.FILE_NAME).stat().st_mode & 0o077 == 0
    assert statusfile.read_live(tmp_path) == json.loads((tmp_path / statusfile.FILE_NAME).read_text())
    statusfile.write(tmp_path, {"running": False, "pid": os.getpid()})
    assert statusfile.read_live(tmp_path) is None
    statusfile.write(tmp_path, {"running": True, "pid": 2**22 + 12345})  # no such process
    assert statusfile.read_live(tmp_path) is None
    assert statusfile.read_live(tmp_path / "missing") is None
