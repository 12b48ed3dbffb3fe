"""Fencing (two real replica processes, a real PostgreSQL, moto): a replica cut off from the
database in the middle of an apply — but not from the destination — stops writing before the
database can free its lock, ends the run as "lost the lock", and the replica that takes the
sync over finishes the apply; no key is written by both.

Each replica reaches moto through a proxy of its own (slowed, so the apply takes a while, and
watched: which replica wrote which key, and when) and r2 reaches PostgreSQL through a proxy
the test cuts. At the cut nothing passes any more; the proxy then closes each of r2's
database sessions at the earliest moment the server could end it itself (its keepalives, after
last hearing from r2), which is what frees r2's lock for r1.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from reconciler.state.pg import members
from reconciler.state.pg.database import KEEPALIVE_SECONDS
from reconciler.state.pg.fence import FENCE_SHARE
from tests.fixtures_postgres import PgState
from tests.support.cli import Workspace
from tests.support.daemon import wait_until
from tests.support.tcpproxy import Proxy
from tests.test_daemon_replicas import _events

NAMES = ["r1", "r2"]
KEYS = {f"K{i:03d}": f"v{i}" for i in range(300)}
WRITES = ("CreateSecret", "PutSecretValue")


def _workspace(root: Path, endpoint: str, sync: str) -> Workspace:
    root.mkdir()
    ws = Workspace(root, endpoint)
    ws.write_spec("connections.yaml", [
        {"kind": "Connection", "name": "local", "app": "file", "path": "../secrets.yaml"},
        {"kind": "Connection", "name": "aws", "app": "aws", "endpoint": endpoint, "region": "us-east-1",
         "maxConcurrency": 2, "credentials": {"method": "access-key", "accessKeyId": {"env": "AWS_ACCESS_KEY_ID"},
                                              "secretAccessKey": {"env": "AWS_SECRET_ACCESS_KEY"}}},
    ])
    ws.write_spec("syncs.yaml", [ws.sync(sync, secretPath="/big", syncOptions={"keySchema": "big/{{secretKey}}"},
                                         reconcile={"retryInterval": "2s"})])
    return ws


def _replica(ws: Workspace, url: str, key: Path, name: str, log: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "reconciler.cli", "run", str(ws.specs), "--state-dir", str(ws.state),
            "--state-url", url, "--state-key-file", str(key), "--replica-name", name,
            "--lease-seconds", "3", "--listen", "127.0.0.1:0", "--log-level", "debug"]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log.open("wb"))


@pytest.mark.slow
def test_a_replica_cut_off_from_the_database_stops_writing_before_its_lock_can_be_taken(
        tmp_path: Path, aws_endpoint: str, sm_client: Any, pg_state: PgState) -> None:
    sync = next(f"big{i}" for i in range(20) if members.owner(f"big{i}", NAMES) == "r2")
    moto_port = int(aws_endpoint.rsplit(":", 1)[1])
    aws = {n: Proxy(moto_port, delay=0.25) for n in NAMES}
    db = Proxy(pg_state.cluster.port)
    ws = {n: _workspace(tmp_path / n, f"http://127.0.0.1:{aws[n].port}", sync) for n in NAMES}
    urls = {"r1": pg_state.url, "r2": pg_state.url.replace(f":{pg_state.cluster.port}/", f":{db.port}/")}
    assert urls["r2"] != urls["r1"]
    logs = {n: tmp_path / f"{n}.log" for n in NAMES}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        procs["r1"] = _replica(ws["r1"], urls["r1"], pg_state.key_file, "r1", logs["r1"])
        wait_until(lambda: _events(logs["r1"], "daemon.ready"), 60, "r1 ready")
        procs["r2"] = _replica(ws["r2"], urls["r2"], pg_state.key_file, "r2", logs["r2"])
        wait_until(lambda: _events(logs["r2"], "daemon.ready"), 60, "r2 ready")
        wait_until(lambda: any(e.get("members") == NAMES for e in _events(logs["r1"], "fleet.members")), 30,
                   "r1 to see r2")
        for n in ("r2", "r1"):
            ws[n].set_secrets(KEYS, path="/big")

        def written(n: str) -> list[tuple[float, str]]:
            return [(t, name) for t, op, name in list(aws[n].requests) if op in WRITES]

        wait_until(lambda: len(written("r2")) >= 20, 60, "r2's apply to be under way")
        db.sever(free_after=KEEPALIVE_SECONDS)
        assert db.severed_at is not None
        cut = db.severed_at

        def landed() -> int:
            for _ in range(20):  # moto's listing races its writes now and then (500): ask again
                try:
                    pages = sm_client.get_paginator("list_secrets").paginate(
                        Filters=[{"Key": "name", "Values": ["big/K"]}])
                    return sum(len(p["SecretList"]) for p in pages)
                except sm_client.exceptions.ClientError:
                    time.sleep(0.05)
            raise AssertionError("moto kept failing to list")

        wait_until(lambda: landed() == len(KEYS), 150, "r1 to finish the apply")
        wait_until(lambda: _events(logs["r2"], "sync.lock_lost"), 30, "r2 to end its run")
        by_r2, by_r1 = written("r2"), written("r1")
        assert db.freed, "the proxy ended r2's database sessions"
        freed = min(db.freed)
        last_r2 = max(t for t, _ in by_r2)
        print(f"cut at 0: r2 wrote {len(by_r2)} keys ({sum(t > cut for t, _ in by_r2)} after the cut, the last at "
              f"{last_r2 - cut:.1f}s); its sessions freed from {freed - cut:.1f}s; r1 wrote {len(by_r1)} from "
              f"{min((t for t, _ in by_r1), default=cut) - cut:.1f}s")
        # r2 started no write once its last confirmation was older than the fence (at most
        # FENCE_SHARE of the keepalive bound after the cut), long before its lock could be freed
        assert last_r2 < cut + FENCE_SHARE * KEEPALIVE_SECONDS + 2.0, (last_r2 - cut)
        assert last_r2 < freed, (last_r2 - cut, freed - cut)
        assert any(t > cut for t, _ in by_r2), "r2 kept writing after the cut (the destination was reachable)"
        assert by_r1 and min(t for t, _ in by_r1) > freed, "r1 wrote only once r2's lock was free"
        assert not {k for _, k in by_r1} & {k for _, k in by_r2}, "a key written by both replicas"
        assert {k for _, k in by_r1} | {k for _, k in by_r2} == {f"big/{k}" for k in KEYS}
        lost = _events(logs["r2"], "sync.lock_lost")
        assert lost[0]["message"].startswith(f"lost the lock on sync {sync}: "), lost
        # every key is in the inventory: r2's unrecorded writes were found (not written again) by r1
        wait_until(lambda: pg_state.cluster.sql(f"SELECT count(*) FROM reconciler_inventory WHERE sync = '{sync}'",  # noqa: S608
                                                pg_state.db) == [(len(KEYS),)], 15, "the inventory to be complete")
        for k in list(KEYS)[:: len(KEYS) // 20]:
            assert len(sm_client.list_secret_version_ids(SecretId=f"big/{k}")["Versions"]) == 1, k
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(5)
        for proxy in (*aws.values(), db):
            proxy.close()
