"""``reconciler trigger NAME`` against a running daemon (moto behind it), and the run registry
that makes its waiter get a run that started after its request."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reconciler.daemon import control
from reconciler.daemon.api import Api
from reconciler.daemon.runs import Runs
from reconciler.daemon.server import Request
from reconciler.engine.outcome import Outcome
from tests.support.canary import CANARIES
from tests.support.cli import Workspace
from tests.support.daemon import DaemonHarness, wait_until

C1, C2, _ = CANARIES


def trigger(h: DaemonHarness, *args: str) -> Any:
    assert h.daemon.server is not None
    return h.cli("trigger", *args, "--listen", f"127.0.0.1:{h.daemon.server.port}")


def run_id(stderr: str) -> str:
    found = re.search(r"run ([0-9a-f]{12})", stderr)
    assert found, stderr
    return found.group(1)


def started_during(r: Any, rid: str, trigger: str) -> bool:
    """The daemon's log lines written while the CLI ran land in its stderr (one process)."""
    return any("reconcile.started" in line and f"run_id={rid}" in line and f"trigger={trigger}" in line
               for line in r.err.splitlines())


def test_trigger_runs_now_and_prints_applys_summary(
        ws: Workspace, sm_client: Any, daemon: Callable[..., DaemonHarness]) -> None:
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": C1})
    h = daemon()
    sm_client.put_secret_value(SecretId="app/A", SecretString=C2)  # changed out of band
    r = trigger(h, "app")
    assert r.code == 0, str(r)
    assert r.out == "app: 0 created, 1 updated, 0 deleted\n", str(r)
    assert sm_client.get_secret_value(SecretId="app/A")["SecretString"] == C1
    rid = run_id(r.err)
    assert started_during(r, rid, "trigger")
    status, body, _ = h.http("GET", f"/runs/{rid}")
    assert status == 200 and b'"result": "success"' in body


def test_trigger_waits_for_a_run_that_started_after_the_request(
        ws: Workspace, sm_client: Any, aws_endpoint: str, daemon: Callable[..., DaemonHarness]) -> None:
    from tests.emulators.faultproxy import FaultProxy

    proxy = FaultProxy(aws_endpoint)
    ws.write_connections(proxy.start(), maxAttempts=1)
    try:
        ws.write_spec("app.yaml", [ws.sync()])
        ws.set_secrets({"A": "1"})
        h = daemon()
        proxy.delay = 0.3  # the next run is still going when the trigger arrives
        ws.set_secrets({"A": "2", "B": "2"})
        wait_until(lambda: h.events("plan.computed", sync="app", create=1, update=1), 10, "the run to plan")
        in_flight = h.events("plan.computed", sync="app", create=1)[-1]["run_id"]
        sm_client.create_secret(Name="app/Z", SecretString="stray")  # after that plan: not in it
        r = trigger(h, "app")
        proxy.delay = 0
        assert r.code == 0, str(r)
        assert run_id(r.err) != in_flight
        assert r.out == "app: 0 created, 0 updated, 1 deleted\n", str(r)  # the run after saw Z
    finally:
        proxy.stop()


def test_trigger_of_a_failing_sync_prints_the_failure_and_exits_1(
        ws: Workspace, aws_endpoint: str, daemon: Callable[..., DaemonHarness]) -> None:
    from tests.emulators.faultproxy import FaultProxy

    proxy = FaultProxy(aws_endpoint)
    ws.write_connections(proxy.start(), maxAttempts=1)
    try:
        ws.write_spec("app.yaml", [ws.sync()])
        ws.set_secrets({"A": C1})
        h = daemon()
        proxy.fail(None, status=500, code="InternalFailure")
        r = trigger(h, "app")
        assert r.code == 1, str(r)
        assert r.out.startswith("app: failed: "), str(r)
        assert "result=failure" in r.err and h.on_loop(lambda: h.daemon.syncs["app"].failed_attempts) == 1
    finally:
        proxy.stop()


def test_trigger_unknown_suspended_and_manual_syncs(
        ws: Workspace, sm_client: Any, daemon: Callable[..., DaemonHarness]) -> None:
    ws.write_spec("app.yaml", [
        ws.sync(),
        ws.sync("paused", secretPath="/paused", reconcile={"suspend": True},
                syncOptions={"keySchema": "paused/{{secretKey}}"}),
        ws.sync("manual", secretPath="/manual", isAutoSyncEnabled=False,
                syncOptions={"keySchema": "manual/{{secretKey}}"}),
    ])
    ws.set_secrets({"M": "m"}, path="/manual")
    h = daemon()
    r = trigger(h, "nope")
    assert r.code == 1 and "has no sync named 'nope'" in r.err, str(r)
    r = trigger(h, "paused")
    assert r.code == 1 and "suspended (reconcile.suspend: true)" in r.err, str(r)
    r = trigger(h, "manual")  # asked for by name, like `apply --sync manual`
    assert r.code == 0 and r.out == "manual: 1 created, 0 updated, 0 deleted\n", str(r)
    assert sm_client.get_secret_value(SecretId="manual/M")["SecretString"] == "m"
    assert h.on_loop(lambda: h.daemon.schedule.next_run("manual")) is None, "still manual afterwards"


def test_trigger_without_a_daemon_says_so(ws: Workspace) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nobody listens there
    r = ws.run("trigger", "app", "--listen", f"127.0.0.1:{port}")
    assert r.code == 1 and f"no reconciler daemon answers at http://127.0.0.1:{port}" in r.err, str(r)
    r = ws.run("trigger", "app", "--listen", "off")
    assert r.code == 1 and "API is off" in r.err, str(r)


# -- the registry and the endpoint, without a daemon --------------------------------------------


def test_triggers_before_a_start_share_its_run_and_a_run_in_flight_is_never_theirs() -> None:
    async def scenario() -> None:
        runs = Runs()
        with runs.run("app") as in_flight:
            first, joined = runs.claim("app")
            second, joined2 = runs.claim("app")
            assert (first == second, joined, joined2) == (True, False, True)
            assert first != in_flight
            runs.finish(in_flight, Outcome("app", "aws-secrets-manager"))
        assert (await runs.wait(first, 0))["state"] == "queued"
        with runs.run("app") as nxt:
            assert nxt == first
            runs.finish(nxt, Outcome("app", "aws-secrets-manager", error="boom"))
        got = await runs.wait(first, 1)
        assert got == {"run": first, "sync": "app", "state": "finished", "result": "failure",
                       "lines": ["app: failed: boom"]}
        waiter = asyncio.create_task(runs.wait(runs.claim("other")[0], 5))
        await asyncio.sleep(0)
        runs.close("the daemon stopped")
        assert (await waiter)["lines"] == ["other: not finished: the daemon stopped"]
        assert await runs.wait("unknown", 0) is None

    asyncio.run(scenario())


class _Refusing:
    runs = Runs()

    def request_run(self, name: str) -> tuple[int, dict[str, Any]]:
        raise AssertionError("must not be reached")


def test_run_endpoints_refuse_clients_off_this_host(tmp_path: Path) -> None:
    api = Api(_Refusing(), tmp_path)  # type: ignore[arg-type]
    auth = {"authorization": f"Bearer {control.read(tmp_path)}"}
    for path, method in (("/syncs/app/trigger", "POST"), ("/runs/abc", "GET")):
        resp = asyncio.run(api.handle(Request(method, path, auth, peer="192.0.2.7")))
        assert resp.status == 403, path
    resp = asyncio.run(api.handle(Request("GET", "/syncs/app/trigger", auth, peer="127.0.0.1")))
    assert resp.status == 405
    resp = asyncio.run(api.handle(Request("GET", "/runs/abc", auth, query="wait=x", peer="::1")))
    assert resp.status == 400


def test_run_endpoints_want_the_control_token_even_from_loopback(tmp_path: Path) -> None:
    """A sidecar proxy (Istio forwards from 127.0.0.6) or a port-forward makes remote clients
    arrive from loopback: the token in the daemon's state directory is what says "this host"."""
    api = Api(_Refusing(), tmp_path)  # type: ignore[arg-type]
    token_file = tmp_path / control.FILE_NAME
    assert token_file.stat().st_mode & 0o777 == 0o600
    token = control.read(tmp_path)
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": token},
                    {"authorization": f"Basic {token}"}):
        for path, method in (("/syncs/app/trigger", "POST"), ("/runs/abc", "GET")):
            resp = asyncio.run(api.handle(Request(method, path, headers, peer="127.0.0.6")))
            assert resp.status == 401, (headers, path)
            assert token not in resp.body.decode()
    assert Api(_Refusing(), tmp_path) is not None and control.read(tmp_path) != token, "each start makes a new one"


def test_trigger_sends_the_token_of_the_state_directory_it_is_given(
        ws: Workspace, daemon: Callable[..., DaemonHarness], tmp_path: Path) -> None:
    h = daemon()
    assert h.daemon.server is not None
    listen = f"127.0.0.1:{h.daemon.server.port}"
    missing = tmp_path / "elsewhere"
    r = ws.run("trigger", "app", "--listen", listen, "--state-dir", str(missing))
    assert r.code == 1 and f"cannot read the daemon's control token {missing / control.FILE_NAME}" in r.err, str(r)
    control.create(missing)  # another daemon's token
    r = ws.run("trigger", "app", "--listen", listen, "--state-dir", str(missing))
    assert r.code == 1 and "refused the control token" in r.err and "--state-dir" in r.err, str(r)
    assert not h.events("reconcile.started", trigger="trigger")
