"""Daemon replicas sharing one PostgreSQL state (moto for AWS): the syncs spread across them,
each is run only by its owner, a replica that stops or dies (kill -9) has its syncs taken
over within a lease, and a source change is written exactly once across the fleet."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from reconciler.state.location import StateLocation
from reconciler.state.pg import members
from tests.fixtures_postgres import PgState
from tests.support.cli import Workspace
from tests.support.daemon import DaemonHarness, wait_until
from tests.support.postgres import APP_PASSWORD, Cluster

SYNCS = [f"s{i}" for i in range(9)]
LEASE = 3.0


def _specs(ws: Workspace) -> None:
    docs = [ws.sync(n, secretPath=f"/{n}", syncOptions={"keySchema": f"{n}/{{{{secretKey}}}}"}) for n in SYNCS]
    ws.write_spec("syncs.yaml", docs)
    for n in SYNCS:
        ws.set_secrets({"A": f"{n}-1"}, path=f"/{n}")


def _name(h: DaemonHarness) -> str:
    assert h.daemon.state.fleet is not None
    return h.daemon.state.fleet.replica


def _members(h: DaemonHarness) -> list[str]:
    return h.daemon.state.fleet.members if h.daemon.state.fleet is not None else []


def _runs(h: DaemonHarness) -> dict[str, float]:
    """Reconciles this replica ran, per sync (its own metrics registry)."""
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(h.daemon.metrics_text().decode()):
        for s in fam.samples:
            if s.name == "reconciler_reconciles_total":
                out[s.labels["sync"]] = out.get(s.labels["sync"], 0) + s.value
    return out


@pytest.fixture
def fleet(tmp_path: Path, aws_endpoint: str, pg_state: PgState) -> Iterator[list[DaemonHarness]]:
    ws = Workspace(tmp_path, aws_endpoint)
    _specs(ws)
    loc = StateLocation(ws.state, pg_state.url, pg_state.key_file)
    started: list[DaemonHarness] = []
    for name in ("r1", "r2", "r3"):
        h = DaemonHarness(ws, state=loc, replica=name, lease_seconds=LEASE, state_dir=tmp_path / f"local-{name}")
        started.append(h.start())
    yield started
    for h in started:
        if h._thread.is_alive():
            assert h.stop() == 0
        assert h.leaks() == []


def test_syncs_spread_and_each_runs_only_on_its_owner(fleet: list[DaemonHarness], sm_client: Any) -> None:
    names = ["r1", "r2", "r3"]
    wait_until(lambda: all(_members(h) == names for h in fleet),
               3 * LEASE, "every replica to see all three")
    for h in fleet:
        h.wait_idle()
    owners = {s: members.owner(s, names) for s in SYNCS}
    assert len(set(owners.values())) >= 2, owners  # fixed names: this spread is deterministic
    before = [_runs(h) for h in fleet]
    for h in fleet:  # every replica hears of every change (each watches the same files)
        for s in SYNCS:
            h.on_loop(lambda h=h, s=s: h.daemon.trigger(s, "test"))
    for h in fleet:
        h.wait_idle()
    for h, was in zip(fleet, before, strict=True):
        ran = {s for s, n in _runs(h).items() if n > was.get(s, 0)}
        mine = {s for s, o in owners.items() if o == _name(h)}
        assert ran == mine, (_name(h), ran, mine)
        body = h.http("GET", "/metrics")[1].decode()
        held = [line for line in body.splitlines() if line.startswith("reconciler_replica_held_syncs")]
        assert held == [f'reconciler_replica_held_syncs{{replica="{_name(h)}"}} {len(mine)}.0'], held
    pg = fleet[0].config.state
    assert pg is not None and pg.url is not None and pg.key_file is not None
    r = fleet[0].cli("status", "--json", "--state-url", pg.url, "--state-key-file", str(pg.key_file))
    assert {row["sync"]: row["heldBy"] for row in json.loads(r.out)["syncs"]} == owners
    r = fleet[0].cli("status", str(fleet[0].ws.specs), "--state-url", pg.url, "--state-key-file", str(pg.key_file))
    assert "s0: synced (aws-secrets-manager)" in r.out and f"  held by replica {owners['s0']}" in r.out, r.out
    for s in SYNCS:
        assert sm_client.get_secret_value(SecretId=f"{s}/A")["SecretString"] == f"{s}-1"
        assert len(sm_client.list_secret_version_ids(SecretId=f"{s}/A")["Versions"]) == 1


def test_a_trigger_that_reaches_another_replica_is_run_by_the_owner(fleet: list[DaemonHarness],
                                                                     sm_client: Any) -> None:
    """`reconciler trigger` may reach any replica (a Service in front of them): the receiver
    hands the run to the owner (a request row), waits for its result and answers with it."""
    names = ["r1", "r2", "r3"]
    wait_until(lambda: all(_members(h) == names for h in fleet), 3 * LEASE, "every replica to see all three")
    for h in fleet:
        h.wait_idle()
    sync = next(s for s in SYNCS if members.owner(s, names) == "r1")
    before = [_runs(h).get(sync, 0) for h in fleet]
    other = fleet[1]
    sm_client.put_secret_value(SecretId=f"{sync}/A", SecretString="changed out of band")
    assert other.daemon.server is not None
    r = other.cli("trigger", sync, "--listen", f"127.0.0.1:{other.daemon.server.port}")
    assert r.code == 0 and r.out == f"{sync}: 0 created, 1 updated, 0 deleted\n", str(r)
    assert sm_client.get_secret_value(SecretId=f"{sync}/A")["SecretString"] == f"{sync}-1"
    for h in fleet:
        h.wait_idle()
    after = [_runs(h).get(sync, 0) for h in fleet]
    assert after == [before[0] + 1, *before[1:]], "the owner ran it, once; the receiver did not"
    assert any(e.get("sync") == sync for e in other.events("fleet.handed_over"))


def test_a_webhook_that_reaches_another_replica_is_handed_to_the_owner(fleet: list[DaemonHarness],
                                                                       sm_client: Any) -> None:
    """A webhook lands on whichever replica the load balancer picks: a replica that does not
    own the sync hands it to the owner (NOTIFY), which runs it; the receiver does not."""
    names = ["r1", "r2", "r3"]
    wait_until(lambda: all(_members(h) == names for h in fleet), 3 * LEASE, "every replica to see all three")
    for h in fleet:
        h.wait_idle()
    sync = next(s for s in SYNCS if members.owner(s, names) == "r1")
    before = [_runs(h).get(sync, 0) for h in fleet]
    fleet[2].on_loop(lambda: fleet[2].daemon.trigger(sync, "webhook"))
    wait_until(lambda: _runs(fleet[0]).get(sync, 0) > before[0], 10, "the owner to run it")
    for h in fleet:
        h.wait_idle()
    assert [_runs(h).get(sync, 0) for h in fleet][1:] == before[1:], "only the owner ran it"


def test_a_stopped_replicas_syncs_are_taken_over(fleet: list[DaemonHarness]) -> None:
    names = ["r1", "r2", "r3"]
    wait_until(lambda: all(_members(h) == names for h in fleet),
               3 * LEASE, "every replica to see all three")
    gone = fleet[1]
    theirs = {s for s in SYNCS if members.owner(s, names) == "r2"}
    assert theirs
    assert gone.stop() == 0  # a graceful stop leaves the table: no need to wait out the lease
    wait_until(lambda: all(_members(h) == ["r1", "r3"] for h in (fleet[0], fleet[2])),
               2 * LEASE, "the others to see r2 gone")
    for h in (fleet[0], fleet[2]):
        h.wait_idle()
    taken = sum(h.daemon.state.fleet.takeovers for h in (fleet[0], fleet[2]) if h.daemon.state.fleet is not None)
    assert taken == len(theirs)
    for h in (fleet[0], fleet[2]):
        assert h.http("GET", "/readyz")[0] == 200


# -- real processes: kill -9 ------------------------------------------------------------------
def _replica(ws: Workspace, pg: PgState, name: str, log: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "reconciler.cli", "run", str(ws.specs), "--state-dir", str(ws.state / name),
            "--state-url", pg.url, "--state-key-file", str(pg.key_file), "--replica-name", name,
            "--lease-seconds", str(LEASE), "--listen", "127.0.0.1:0", "--log-level", "debug"]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log.open("wb"))


def _events(log: Path, name: str) -> list[dict[str, Any]]:
    out = []
    for line in log.read_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == name:
            out.append(event)
    return out


@pytest.mark.slow
def test_kill_9_a_replica_its_syncs_are_taken_over_and_a_change_is_written_once(
        tmp_path: Path, aws_endpoint: str, sm_client: Any, pg_state: PgState) -> None:
    ws = Workspace(tmp_path, aws_endpoint)
    _specs(ws)
    names = ["r1", "r2", "r3"]
    logs = {n: tmp_path / f"{n}.log" for n in names}
    procs = {n: _replica(ws, pg_state, n, logs[n]) for n in names}
    try:
        wait_until(lambda: all(any(e.get("members") == names for e in _events(logs[n], "fleet.members"))
                               for n in names), 30, "three replicas to see each other")
        wait_until(lambda: all(_events(logs[n], "daemon.ready") for n in names), 60, "all ready")
        victim = "r2"
        theirs = sorted(s for s in SYNCS if members.owner(s, names) == victim)
        assert theirs
        killed_at = time.time()
        os.kill(procs[victim].pid, signal.SIGKILL)
        procs[victim].wait(10)

        def taken() -> list[dict[str, Any]]:
            return [e for n in names if n != victim for e in _events(logs[n], "fleet.takeover")]

        wait_until(lambda: sorted(s for e in taken() for s in e["syncs"]) == theirs, 4 * LEASE,
                   "the others to take over r2's syncs")
        took = time.time() - killed_at  # seen in the logs: an upper bound
        assert took <= LEASE + 1.5, f"took {took:.1f}s over a {LEASE}s lease"
        # a source change to one of r2's syncs: every live replica sees the file change,
        # only the new owner writes, exactly once
        s = theirs[0]
        ws.set_secrets({"A": f"{s}-2"}, path=f"/{s}")
        wait_until(lambda: sm_client.get_secret_value(SecretId=f"{s}/A")["SecretString"] == f"{s}-2", 30,
                   "the change to land")
        time.sleep(2)  # any second write would have landed by now
        assert len(sm_client.list_secret_version_ids(SecretId=f"{s}/A")["Versions"]) == 2
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            p.wait(30)
    assert [procs[n].returncode for n in names if n != "r2"] == [0, 0]


@pytest.mark.slow
def test_the_database_going_away_and_coming_back(tmp_path: Path, aws_endpoint: str, sm_client: Any,
                                                 pg_cluster: Cluster) -> None:
    """Its own cluster (stopped and started here): /readyz fails and the replica holds
    nothing while the database is away; when it is back, the replica takes its syncs again
    and runs them at once."""
    own = Cluster(pg_cluster.bin)
    own.start()
    try:
        own.create_app_role()
        db = own.new_database()
        password = tmp_path / "pw"
        password.write_text(APP_PASSWORD)
        key = tmp_path / "key"
        key.write_bytes(os.urandom(32))
        ws = Workspace(tmp_path, aws_endpoint)
        _specs(ws)
        loc = StateLocation(ws.state, own.app_url(db, password), key)
        h = DaemonHarness(ws, state=loc, replica="only", lease_seconds=LEASE).start()
        assert h.http("GET", "/readyz")[0] == 200
        own.stop("immediate")
        wait_until(lambda: h.http("GET", "/readyz")[0] == 503, 3 * LEASE, "/readyz to fail")
        _code, body, _ = h.http("GET", "/readyz")
        assert b"holding no sync" in body and b"PostgreSQL state" in body, body
        assert h.daemon.state.fleet is not None and h.daemon.state.fleet.held() == []
        ws.set_secrets({"A": "s0-2"}, path="/s0")  # heard, but not run: we hold nothing
        own.start()
        wait_until(lambda: h.http("GET", "/readyz")[0] == 200, 4 * LEASE, "/readyz to pass again")
        wait_until(lambda: sm_client.get_secret_value(SecretId="s0/A")["SecretString"] == "s0-2", 15,
                   "the change made while away to land")
        assert h.stop() == 0
        assert h.leaks() == []
    finally:
        own.destroy()


@pytest.mark.slow
def test_an_apply_cut_short_by_kill_9_is_finished_by_the_next_holder_without_a_second_write(
        tmp_path: Path, aws_endpoint: str, sm_client: Any, pg_state: PgState) -> None:
    ws = Workspace(tmp_path, aws_endpoint)
    _specs(ws)
    names = ["r1", "r2"]
    target = next(s for s in SYNCS if members.owner(s, names) == "r2")
    logs = {n: tmp_path / f"{n}.log" for n in names}
    procs = {"r1": _replica(ws, pg_state, "r1", logs["r1"])}
    try:
        wait_until(lambda: _events(logs["r1"], "daemon.ready"), 60, "r1 ready")
        procs["r2"] = _replica(ws, pg_state, "r2", logs["r2"])
        wait_until(lambda: any(e.get("members") == names for e in _events(logs["r1"], "fleet.members")), 30,
                   "r1 to see r2")
        wait_until(lambda: _events(logs["r2"], "daemon.ready"), 60, "r2 ready")
        keys = {f"K{i:03d}": f"v{i}" for i in range(300)}
        ws.set_secrets(keys, path=f"/{target}")

        def landed() -> int:
            """How many keys are at the destination (moto's listing is not thread-safe: a
            listing that races a write answers 500, and is asked again)."""
            for _ in range(20):
                try:
                    pages = sm_client.get_paginator("list_secrets").paginate(
                        Filters=[{"Key": "name", "Values": [f"{target}/K"]}])
                    return sum(len(p["SecretList"]) for p in pages)
                except sm_client.exceptions.ClientError:
                    time.sleep(0.05)
            raise AssertionError("moto kept failing to list")

        wait_until(lambda: landed() >= 20, 60, "r2's apply to be under way")
        os.kill(procs["r2"].pid, signal.SIGKILL)
        procs["r2"].wait(10)
        assert landed() < len(keys), "the apply was cut short"
        wait_until(lambda: landed() == len(keys), 120, "r1 to finish the apply")
        wait_until(lambda: any(e.get("sync") == target and e.get("trigger") == "takeover"
                               for e in _events(logs["r1"], "reconcile.started")), 10, "the takeover run")
        for k in keys:
            versions = sm_client.list_secret_version_ids(SecretId=f"{target}/{k}")["Versions"]
            assert len(versions) == 1, (k, versions)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            p.wait(30)
