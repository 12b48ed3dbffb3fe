"""A state directory that is wrong in some way: a clear error naming the path and what to do,
never a raw Errno or "internal error"; and a lost fingerprint key never rewrites every secret."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from reconciler import calls
from reconciler.state.store import KEY_NAME, StateStore
from tests.support.cli import Workspace
from tests.support.hostile import run_cli, shared_tmp

MOVE_ASIDE = "move it aside: state is a cache, and the next run rebuilds it at the cost of API calls"


@pytest.fixture
def ws(tmp_path: Path, aws_endpoint: str) -> Workspace:
    w = Workspace(tmp_path, aws_endpoint)
    w.write_spec("app.yaml", [w.sync()])
    w.set_secrets({f"K{i:02d}": f"value-{i}" for i in range(30)})
    return w


def test_state_dir_that_is_a_file(ws: Workspace) -> None:
    ws.state.write_text("not a directory\n")
    r = ws.run("apply")
    assert r.code == 1
    assert f"error: state directory {ws.state} is a file, not a directory; remove it, or choose another" in r.err, r
    assert "Errno" not in r.out + r.err


def test_state_dir_not_writable() -> None:
    with shared_tmp() as d:
        state = d / "state"
        state.mkdir(mode=0o555)
        os.chmod(state, 0o555)  # noqa: S103 - readable, not writable
        (d / "specs").mkdir()
        (d / "secrets.yaml").write_text("dev:\n  /app:\n    A: x\n")
        (d / "specs" / "s.yaml").write_text(
            "kind: Connection\nname: local\napp: file\npath: ../secrets.yaml\n---\n"
            "kind: Connection\nname: aws\napp: aws\nendpoint: http://127.0.0.1:9\nregion: us-east-1\n---\n"
            "kind: SecretSync\nname: app\nsource: local\nenvironment: dev\nsecretPath: /app\n"
            "destination: aws-secrets-manager\nconnection: aws\n"
            "destinationConfig: {region: us-east-1, mappingBehavior: one-to-one}\n")
        r = run_cli("apply", str(d / "specs"), "--state-dir", str(state), unprivileged=True)
        assert r.returncode == 1, r
        assert f"error: state directory {state} is not writable by this user" in r.stderr, r
        assert "Errno" not in r.stderr and "internal error" not in r.stderr


@pytest.mark.parametrize("command", [("plan",), ("apply",), ("status",)])
def test_damaged_database(ws: Workspace, command: tuple[str, ...]) -> None:
    assert ws.run("apply").code == 0
    (ws.state / "state.db").write_bytes(b"this is not sqlite" * 100)
    for side in ("state.db-wal", "state.db-shm"):
        (ws.state / side).unlink(missing_ok=True)
    r = ws.run(*command)
    assert r.code == 1, r
    assert f"error: the state at {ws.state / 'state.db'} is damaged (file is not a database); {MOVE_ASIDE}" in r.err


@pytest.mark.parametrize("damage", ["short", "directory"])
def test_damaged_fingerprint_key(ws: Workspace, damage: str) -> None:
    assert ws.run("apply").code == 0
    key = ws.state / KEY_NAME
    key.unlink()
    if damage == "short":
        key.write_bytes(b"abc")
    else:
        key.mkdir()
    r = ws.run("apply")
    assert r.code == 1, r
    assert f"error: the fingerprint key at {key} " in r.err, r
    assert "move it aside: a new key is made and values are compared by reading them once" in r.err
    assert "Errno" not in r.err


@pytest.mark.parametrize("how", ["lost", "replaced"])
def test_lost_fingerprint_key_reads_values_instead_of_rewriting_everything(ws: Workspace, how: str) -> None:
    assert ws.run("apply").code == 0
    key = ws.state / KEY_NAME
    key.unlink()
    if how == "replaced":
        key.write_bytes(os.urandom(32))
    r = ws.run("plan", "--detailed-exitcode")
    assert r.code == 0, str(r)  # nothing to change: values were read and compared
    assert "fingerprints of 30 key(s) were reset, and values are compared by reading them" in r.err, r
    calls.reset()
    r = ws.run("apply")
    assert r.code == 0 and "app: no changes" in r.out, str(r)
    assert "reset" in r.err
    writes = {c for c in calls.by_call("aws-secrets-manager") if c.startswith(("Put", "Update", "Create"))}
    assert writes == set(), calls.snapshot()
    r = ws.run("plan", "--detailed-exitcode")
    assert r.code == 0 and "reset" not in r.err, str(r)  # said once; fingerprints are whole again


def test_reset_keeps_ownership(ws: Workspace, sm_client: Any) -> None:
    assert ws.run("apply").code == 0
    (ws.state / KEY_NAME).unlink()
    store = StateStore(ws.state)
    _ = store.fingerprinter
    inventory = store.inventory("app")
    store.close()
    assert len(inventory) == 30 and all(e.fingerprint is None and e.version for e in inventory.values())


def test_state_dir_that_is_a_device(tmp_path: Path) -> None:
    from reconciler.state.store import StateError

    with pytest.raises(StateError, match=r"^state directory /dev/null is not a directory; remove it, or choose"):
        _ = StateStore(Path("/dev/null")).fingerprinter


def test_a_database_from_before_the_key_check_still_works(ws: Workspace) -> None:
    import sqlite3

    assert ws.run("apply").code == 0
    with sqlite3.connect(ws.state / "state.db") as db:
        db.execute("DROP TABLE meta")
    r = ws.run("plan", "--detailed-exitcode")  # read-only: no migration, no complaint
    assert r.code == 0 and "reset" not in r.err and "damaged" not in r.err, str(r)
    r = ws.run("apply")
    assert r.code == 0 and "app: no changes" in r.out and "reset" not in r.err, str(r)


def test_a_full_disk_is_not_called_damage(tmp_path: Path) -> None:
    """SQLite says "database or disk is full"; "damaged ... move it aside" was the answer, and
    moving an intact state aside throws away what it knows (the inventory, the key check)."""
    import sqlite3

    from reconciler.state.store import StateError

    store = StateStore(tmp_path / "state")
    with pytest.raises(StateError) as e, store._guard():
        raise sqlite3.OperationalError("database or disk is full")
    assert "no space left" in str(e.value) and str(tmp_path / "state") in str(e.value)
    assert "damaged" not in str(e.value) and MOVE_ASIDE not in str(e.value)


@pytest.mark.parametrize("name", ["state#1", "state?x=1", "state%20y"])
def test_a_state_directory_name_with_uri_characters_reads_back(tmp_path: Path, aws_endpoint: str, name: str) -> None:
    """The read-only open put the path in a SQLite URI unquoted: '#' and '?' cut it short and
    'status' called the state damaged ("move it aside"), '%' made it unopenable."""
    w = Workspace(tmp_path, aws_endpoint)
    w.state = tmp_path / name
    w.write_spec("app.yaml", [w.sync()])
    w.set_secrets({"A": "1"})
    assert w.run("apply").code == 0
    r = w.run("status")
    assert r.code == 0 and "app (aws-secrets-manager): succeeded" in r.out, str(r)
    assert w.run("plan", "--detailed-exitcode").code == 0


def test_plan_and_status_read_a_state_they_cannot_write(tmp_path: Path, aws_endpoint: str) -> None:
    """A read-only copy of the state (a read-only volume, a user without write access): the
    WAL database needs a -shm file it cannot create, and 'plan' and 'status', which never
    write, failed with "cannot be opened for writing"."""
    with shared_tmp() as d:
        w = Workspace(d, aws_endpoint)
        w.write_spec("app.yaml", [w.sync()])
        w.set_secrets({"A": "1"})
        assert w.run("apply").code == 0
        for p in (d, w.specs, *w.specs.iterdir(), w.secrets_file):
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
        os.chmod(w.state, 0o555)  # noqa: S103 - readable, not writable
        os.chmod(w.state / "state.db", 0o444)
        assert not (w.state / "state.db-wal").exists()
        r = run_cli("status", "--state-dir", str(w.state), unprivileged=True)
        assert r.returncode == 0 and "app (aws-secrets-manager): succeeded" in r.stdout, r
