"""The daemon end to end: file source -> moto, through real file events, timers it arms and the
HTTP endpoints. Waiting is for events (a value landing, a log line), never a fixed sleep;
timers are not waited out: the test fires the job the daemon armed ("fake time")."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.canary import CANARIES
from tests.support.cli import Workspace
from tests.support.daemon import DaemonHarness, wait_until

C1, C2, C3 = CANARIES


def value(sm: Any, name: str) -> str | None:
    try:
        return str(sm.get_secret_value(SecretId=name)["SecretString"])
    except sm.exceptions.ResourceNotFoundException:
        return None


def save_atomically(path: Path, data: Any) -> None:
    """As editors and `git checkout` do: write a temp file, rename it over the old one."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=False))
    os.replace(tmp, path)


def metrics(h: DaemonHarness) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, body, headers = h.http("GET", "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=")
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_startup_reconciles_every_auto_sync_and_serves_health_metrics_status(
        ws: Workspace, sm_client: Any, daemon: Callable[..., DaemonHarness]) -> None:
    ws.write_spec("app.yaml", [ws.sync(), ws.sync("other", secretPath="/other",
                                                  syncOptions={"keySchema": "other/{{secretKey}}"})])
    ws.write_spec("manual.yaml", [ws.sync("manual", secretPath="/manual", isAutoSyncEnabled=False,
                                          syncOptions={"keySchema": "manual/{{secretKey}}"})])
    ws.set_secrets({"A": C1, "B": C2})
    ws.set_secrets({"X": C3}, path="/other")
    ws.set_secrets({"M": "m"}, path="/manual")
    h = daemon()
    assert value(sm_client, "app/A") == C1 and value(sm_client, "app/B") == C2 and value(sm_client, "other/X") == C3
    assert value(sm_client, "manual/M") is None, "isAutoSyncEnabled: false is only applied on request"

    assert h.http("GET", "/healthz")[:2] == (200, b"ok\n")
    assert h.http("GET", "/readyz")[:2] == (200, b"ready\n")
    assert h.http("GET", "/nope")[0] == 404
    assert h.http("POST", "/healthz", b"x")[0] == 405

    m = metrics(h)
    assert m[("reconciler_reconciles_total", (("result", "success"), ("sync", "app")))] == 1
    assert m[("reconciler_managed_keys", (("sync", "app"),))] == 2
    assert m[("reconciler_reconcile_duration_seconds_count", (("sync", "other"),))] == 1
    assert m[("reconciler_last_success_timestamp_seconds", (("sync", "app"),))] == pytest.approx(time.time(), abs=60)
    assert m[("reconciler_destination_api_calls_total",
              (("call", "CreateSecret"), ("destination", "aws-secrets-manager"), ("outcome", "ok")))] == 3
    assert m[("reconciler_syncs", (("state", "active"),))] == 2
    assert m[("reconciler_syncs", (("state", "manual"),))] == 1
    assert m[("reconciler_ready", ())] == 1
    assert not [k for k in m if k[0].endswith("_created")]

    status = json.loads(h.http("GET", "/status")[1])
    assert status["ready"] is True
    assert status["syncs"]["app"]["state"] == "active" and status["syncs"]["app"]["lastResult"] == "success"
    assert status["syncs"]["app"]["nextRunAt"] is not None  # the 5 minute interval is armed
    assert status["syncs"]["manual"]["state"] == "manual" and status["syncs"]["manual"]["nextRunAt"] is None

    # one run id ties the daemon's events to the engine's for the same run
    started = h.events("reconcile.started", sync="app")
    assert len(started) == 1
    run = started[0]["run_id"]
    assert {e["event"] for e in h.events(run_id=run)} >= {"reconcile.started", "plan.computed", "change.applied",
                                                          "sync.succeeded", "reconcile.finished"}
    assert all(e["destination"] == "aws-secrets-manager" for e in h.events(run_id=run))


def test_changes_reach_the_destination_under_load_of_several_syncs(
        ws: Workspace, sm_client: Any, daemon: Callable[..., DaemonHarness]) -> None:
    n, keys = 6, 4
    ws.write_spec("syncs.yaml", [
        ws.sync(f"s{i}", secretPath=f"/s{i}", syncOptions={"keySchema": f"s{i}/{{{{secretKey}}}}"}) for i in range(n)])
    data: dict[str, Any] = {"dev": {f"/s{i}": {f"K{k}": f"v0-{i}-{k}" for k in range(keys)} for i in range(n)}}
    save_atomically(ws.secrets_file, data)
    h = daemon(workers=3, per_connection=2)
    latencies = []
    for rnd in range(1, 4):
        for i in range(n):
            data["dev"][f"/s{i}"] = {f"K{k}": f"v{rnd}-{i}-{k}" for k in range(keys)}
        data["dev"]["/s0"]["K0"] = CANARIES[rnd % 3]
        t0 = time.monotonic()
        save_atomically(ws.secrets_file, data)
        wait_until(lambda rnd=rnd: all(value(sm_client, f"s{i}/K{keys - 1}") == f"v{rnd}-{i}-{keys - 1}"
                                       for i in range(n)), 20, f"round {rnd} to land")
        latencies.append(time.monotonic() - t0)
        assert value(sm_client, "s0/K0") == CANARIES[rnd % 3]
    assert max(latencies) < 10, latencies

    # a spec saved while running is applied at once
    ws.write_spec("late.yaml", [ws.sync("late", secretPath="/late", syncOptions={"keySchema": "late/{{secretKey}}"})])
    ws.set_secrets({"L": "late-value"}, path="/late")
    wait_until(lambda: value(sm_client, "late/L") == "late-value", 10, "the new spec to be applied")

    h.wait_idle()
    # never two runs of one sync at once: per sync, started/finished strictly alternate
    for i in range(n):
        seq = [e["event"] for e in h.events(sync=f"s{i}") if e["event"] in ("reconcile.started", "reconcile.finished")]
        assert seq and seq == ["reconcile.started", "reconcile.finished"] * (len(seq) // 2), seq


def test_invalid_spec_keeps_last_known_good_and_does_not_stop_the_others(
        ws: Workspace, sm_client: Any, daemon: Callable[..., DaemonHarness]) -> None:
    a = ws.write_spec("a.yaml", [ws.sync("a", secretPath="/a", syncOptions={"keySchema": "a/{{secretKey}}"})])
    b = ws.write_spec("b.yaml", [ws.sync("b", secretPath="/b", syncOptions={"keySchema": "b/{{secretKey}}"})])
    ws.set_secrets({"K": "a1"}, path="/a")
    ws.set_secrets({"K": "b1"}, path="/b")
    h = daemon()
    assert value(sm_client, "a/K") == "a1" and value(sm_client, "b/K") == "b1"

    bad = ws.sync("a", secretPath="/a", syncOptions={"keySchema": "a/{{secretKey}}"}, reconcile={"interval": "soon"})
    save_atomically(a, bad)
    wait_until(lambda: h.events("spec.invalid", sync="a"), 10, "the invalid spec to be reported")
    assert h.events("spec.invalid", sync="a")[0]["running"] == "last-known-good"
    diags = h.events("spec.diagnostic", file=str(a))
    assert diags and all(d["line"] > 0 and d["path"].startswith("$") for d in diags)

    ws.set_secrets({"K": "a2"}, path="/a")
    ws.set_secrets({"K": "b2"}, path="/b")
    wait_until(lambda: value(sm_client, "b/K") == "b2", 10, "b to apply")
    wait_until(lambda: value(sm_client, "a/K") == "a2", 10, "a (last known good) to apply")
    status = json.loads(h.http("GET", "/status")[1])
    assert status["syncs"]["a"]["state"] == "invalid-kept" and status["syncs"]["b"]["state"] == "active"
    assert metrics(h)[("reconciler_syncs", (("state", "invalid_kept"),))] == 1

    # a spec file that no longer parses at all is not a deletion either
    a.write_text("kind: SecretSync\nname: [a\n")
    wait_until(lambda: len(h.events("spec.invalid", sync="a")) >= 2, 10, "the broken file to be reported")
    assert not h.events("sync.removed")

    # deleting a spec stops its sync and records it; its secrets stay where they are
    b.unlink()
    wait_until(lambda: h.events("sync.removed", sync="b"), 10, "the removal to be noticed")
    h.wait_idle()
    wait_until(lambda: "spec removed" in (h.cli("status", "--json").out), 5, "the removal to be recorded")
    before = len(h.events("reconcile.started", sync="b"))
    ws.set_secrets({"K": "b3"}, path="/b")
    ws.set_secrets({"K": "a3"}, path="/a")
    wait_until(lambda: value(sm_client, "a/K") == "a3", 10, "a to apply")
    h.wait_idle()
    assert value(sm_client, "b/K") == "b2", "a removed sync's destination is left as it was"
    assert len(h.events("reconcile.started", sync="b")) == before
    assert "b" not in json.loads(h.http("GET", "/status")[1])["syncs"]


def test_suspended_sync_is_not_scheduled_or_triggered(
        ws: Workspace, sm_client: Any, daemon: Callable[..., DaemonHarness]) -> None:
    spec = ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": "1"})
    h = daemon()
    assert h.on_loop(lambda: h.daemon.schedule.next_run("app")) is not None
    save_atomically(spec, ws.sync(reconcile={"suspend": True}))
    wait_until(lambda: h.on_loop(lambda: h.daemon.schedule.next_run("app")) is None, 10, "the interval to be dropped")
    ws.set_secrets({"A": "2"})
    wait_until(lambda: h.events("reconcile.skipped", sync="app", trigger="source-changed"), 10, "the skip")
    assert value(sm_client, "app/A") == "1"
    save_atomically(spec, ws.sync(reconcile={"suspend": False}))
    wait_until(lambda: value(sm_client, "app/A") == "2", 10, "resumed sync to apply")


# -- failures, retries, backoff ----------------------------------------------------------------


def test_suspend_lets_the_run_in_progress_finish_and_stops_the_next(
        ws: Workspace, sm_client: Any, aws_endpoint: str, daemon: Callable[..., DaemonHarness]) -> None:
    from tests.emulators.faultproxy import FaultProxy

    proxy = FaultProxy(aws_endpoint)
    ws.write_connections(proxy.start(), maxAttempts=1)
    try:
        spec = ws.write_spec("app.yaml", [ws.sync()])
        ws.set_secrets({"A": "1"})
        h = daemon()
        proxy.delay = 0.3  # every AWS call is slow: the next run is still going when suspend lands
        ws.set_secrets({"A": "2", "B": "2", "C": "2"})
        wait_until(lambda: "app" in h.on_loop(lambda: set(h.daemon.runner.running)), 10, "the run to start")
        save_atomically(spec, ws.sync(reconcile={"suspend": True}))
        wait_until(lambda: h.on_loop(lambda: h.daemon.schedule.next_run("app")) is None, 10, "the suspend")
        assert "app" in h.on_loop(lambda: set(h.daemon.runner.running)), "suspend did not abort the run"
        h.wait_idle()
        proxy.delay = 0
        assert [value(sm_client, f"app/{k}") for k in "ABC"] == ["2", "2", "2"], "the run finished its writes"
        assert h.events("reconcile.finished", sync="app")[-1]["result"] == "success"
        runs = len(h.events("reconcile.started", sync="app"))
        ws.set_secrets({"A": "3", "B": "2", "C": "2"})
        wait_until(lambda: h.events("reconcile.skipped", sync="app", trigger="source-changed"), 10, "the skip")
        assert len(h.events("reconcile.started", sync="app")) == runs and value(sm_client, "app/A") == "2"
        assert h.on_loop(lambda: h.daemon.schedule.next_retry("app")) is None
    finally:
        proxy.stop()


def test_failures_retry_with_backoff_and_converge(
        ws: Workspace, sm_client: Any, aws_endpoint: str, daemon: Callable[..., DaemonHarness]) -> None:
    from tests.emulators.faultproxy import FaultProxy

    proxy = FaultProxy(aws_endpoint)
    ws.write_connections(proxy.start(), maxAttempts=1)
    try:
        ws.write_spec("app.yaml", [ws.sync(reconcile={"retryInterval": "10s", "interval": "5m"})])
        ws.set_secrets({"A": C1})
        proxy.fail(None, status=500, code="InternalFailure")
        h = daemon()  # ready: the first reconcile ran (and failed)
        d = h.daemon
        t0 = time.time()
        assert h.on_loop(lambda: d.syncs["app"].failed_attempts) == 1
        first = h.on_loop(lambda: d.schedule.next_retry("app"))
        assert first == pytest.approx(t0 + 10, abs=2), "first retry after retryInterval"
        assert h.events("retry.scheduled", sync="app")[0]["attempt"] == 1
        status = h.cli("status")
        assert "failed" in status.out and "next attempt:" in status.out, str(status)
        assert json.loads(h.http("GET", "/status")[1])["syncs"]["app"]["nextAttemptAt"] is not None

        # fake time: fire the armed retry now instead of waiting for it
        h.call(d._due("app", "retry"))
        h.wait_idle()
        second = h.on_loop(lambda: d.schedule.next_retry("app"))
        assert h.on_loop(lambda: d.syncs["app"].failed_attempts) == 2
        assert second == pytest.approx(time.time() + 20, abs=2), "the wait doubles"

        proxy.heal()
        h.call(d._due("app", "retry"))
        h.wait_idle()
        assert value(sm_client, "app/A") == C1
        assert h.on_loop(lambda: (d.syncs["app"].failed_attempts, d.schedule.next_retry("app"))) == (0, None)
        assert h.events("sync.recovered", sync="app")
        m = metrics(h)
        assert m[("reconciler_reconciles_total", (("result", "failure"), ("sync", "app")))] == 2
        assert m[("reconciler_reconciles_total", (("result", "success"), ("sync", "app")))] == 1
        assert m[("reconciler_sync_failing", (("sync", "app"),))] == 0
        assert "next attempt" not in h.cli("status").out
    finally:
        proxy.stop()


def test_retry_honours_retry_after(ws: Workspace, daemon: Callable[..., DaemonHarness]) -> None:
    from reconciler.daemon.daemon import RunResult
    from reconciler.engine.outcome import Outcome

    ws.write_spec("app.yaml", [ws.sync(reconcile={"retryInterval": "5s"})])
    h = daemon()
    d = h.daemon
    assert d.specs is not None
    sync = d.specs.syncs["app"]
    throttled = Outcome("app", sync.destination, error="throttled", retry_after=120.0)
    t0 = time.time()
    h.on_loop(lambda: d._after(sync, RunResult(throttled, 0.1, None, "r1")))
    assert h.on_loop(lambda: d.schedule.next_retry("app")) == pytest.approx(t0 + 120, abs=2)


def test_engine_passes_a_destinations_retry_after_on(ws: Workspace) -> None:
    from reconciler.destinations.errors import Throttled
    from reconciler.engine.reconcile import Reconciler
    from reconciler.specs.loader import load
    from reconciler.state.store import StateStore
    from tests.support import memory

    ws.write_spec("app.yaml", [ws.sync()])
    store = memory.MemoryStore()
    store.fail_next["list"] = Throttled("ListSecrets failed: ThrottlingException", retry_after=42.0)
    state = StateStore(ws.state)
    specs = load(ws.specs)
    out = Reconciler(specs, state, destinations=memory.catalog({"aws-secrets-manager": store})).apply_sync(
        specs.syncs["app"])
    state.close()
    assert out.failed and out.retry_after == 42.0
