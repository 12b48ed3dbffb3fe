"""The CLI end to end on a PostgreSQL state (moto for AWS): apply, then a plan with nothing to
do; and two replicas applying one sync at once — one waits, every key is written once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from reconciler.state.location import StateLocation
from tests.fixtures_postgres import PgState
from tests.support.canary import CANARIES, find_leaks
from tests.support.cli import Workspace


def _flags(pg: PgState) -> list[str]:
    return ["--state-url", pg.url, "--state-key-file", str(pg.key_file)]


def test_apply_then_a_plan_with_nothing_to_do(tmp_path: Path, aws_endpoint: str, sm_client: Any,
                                              pg_state: PgState) -> None:
    ws = Workspace(tmp_path, aws_endpoint)
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": CANARIES[0], "B": CANARIES[1]})
    r = ws.run("apply", *_flags(pg_state))
    assert r.code == 0 and "app: 2 created" in r.out, str(r)
    assert sm_client.get_secret_value(SecretId="app/A")["SecretString"] == CANARIES[0]
    r = ws.run("plan", "--detailed-exitcode", "--json", *_flags(pg_state))
    assert r.code == 0, str(r)
    assert [s["changes"] for s in json.loads(r.out)["syncs"]] == [[]]
    r = ws.run("status", "--json", *_flags(pg_state))
    assert [(s["sync"], s["syncStatus"]) for s in json.loads(r.out)["syncs"]] == [("app", "succeeded")]
    # the environment works as the flags do
    env = {"RECONCILER_STATE_URL": pg_state.url, "RECONCILER_STATE_KEY_FILE": str(pg_state.key_file)}
    os.environ.update(env)
    try:
        ws.set_secrets({"A": CANARIES[0], "B": CANARIES[2]})
        r = ws.run("apply")
        assert r.code == 0 and "app: 0 created, 1 updated" in r.out, str(r)
    finally:
        for k in env:
            del os.environ[k]
    assert not (ws.state / "state.db").exists(), "nothing went to the SQLite state"
    rows = pg_state.cluster.sql("SELECT * FROM reconciler_inventory", pg_state.db)
    assert len(rows) == 2 and find_leaks([repr(rows)]) == []
    assert ws.leaks() == []


def test_a_literal_password_on_the_command_line_is_refused(tmp_path: Path, aws_endpoint: str) -> None:
    ws = Workspace(tmp_path, aws_endpoint)
    ws.write_spec("app.yaml", [ws.sync()])
    r = ws.run("plan", "--state-url", "postgresql://u:hunter2hunter2@127.0.0.1/db")
    assert r.code == 1 and "literal password" in r.err and "hunter2" not in r.out + r.err, str(r)


def _apply(ws: Workspace, pg: PgState) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "reconciler.cli", "apply", str(ws.specs), "--state-dir", str(ws.state),
            *_flags(pg)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_replicas_applying_one_sync_at_once_write_each_key_once(tmp_path: Path, aws_endpoint: str,
                                                                    sm_client: Any, pg_state: PgState) -> None:
    ws = Workspace(tmp_path, aws_endpoint)
    ws.write_spec("app.yaml", [ws.sync()])
    keys = {f"K{i:02d}": f"value-{i}" for i in range(25)}
    ws.set_secrets(keys)
    holder = StateLocation(ws.state, pg_state.url, pg_state.key_file).open()
    with holder.hold("app"):  # both start, and both wait for the sync's lock
        procs = [_apply(ws, pg_state), _apply(ws, pg_state)]
        time.sleep(4)
    outs = [p.communicate(timeout=120) for p in procs]
    holder.close()
    assert [p.returncode for p in procs] == [0, 0], outs
    summaries = sorted(line for out, _ in outs for line in out.splitlines() if line.startswith("app:"))
    assert summaries == ["app: 25 created, 0 updated, 0 deleted", "app: no changes"], outs
    for name in (f"app/{k}" for k in keys):
        versions = sm_client.list_secret_version_ids(SecretId=name)["Versions"]
        assert len(versions) == 1, (name, versions)


def test_a_replica_with_another_key_is_refused(tmp_path: Path, aws_endpoint: str, pg_state: PgState) -> None:
    ws = Workspace(tmp_path, aws_endpoint)
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": "1"})
    assert ws.run("apply", *_flags(pg_state)).code == 0
    other = tmp_path / "other.key"
    other.write_bytes(os.urandom(32))
    argv = [sys.executable, "-m", "reconciler.cli", "run", str(ws.specs), "--state-dir", str(ws.state),
            "--state-url", pg_state.url, "--state-key-file", str(other), "--listen", "off"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done
    assert "cannot start the daemon" in done.stderr and "every replica must use the same key file" in done.stderr
    assert str(other) in done.stderr
