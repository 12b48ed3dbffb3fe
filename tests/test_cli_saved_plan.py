"""Saved plans through the CLI against moto: ``plan --out`` then ``apply --plan``, applied only
while the world is the one the plan was made against; stale or edited plans write nothing."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from reconciler import calls
from tests.support.canary import CANARIES, find_leaks
from tests.support.cli import Workspace

C1, C2, C3 = CANARIES
WRITES = {"CreateSecret", "PutSecretValue", "UpdateSecret", "DeleteSecret", "RestoreSecret", "TagResource",
          "UntagResource"}


@pytest.fixture
def ws(tmp_path: Path, aws_endpoint: str) -> Workspace:
    w = Workspace(tmp_path, aws_endpoint)
    w.write_spec("app.yaml", [w.sync()])
    w.set_secrets({"DB_PASSWORD": C1, "API_KEY": C2})
    return w


def _value(sm: Any, name: str) -> str:
    return sm.get_secret_value(SecretId=name)["SecretString"]  # type: ignore[no-any-return]


def _save(ws: Workspace, *extra: str) -> Path:
    out = ws.root / "app.plan"
    r = ws.run("plan", "--out", str(out), *extra)
    assert r.code == 0, str(r)
    assert "Saved the plan" in r.err
    return out


def _writes() -> set[str]:
    return WRITES & set(calls.snapshot())


def test_saved_plan_applies_exactly_and_holds_no_value(ws: Workspace, sm_client: Any) -> None:
    out = _save(ws)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert not find_leaks([out.read_bytes()]), "the plan file holds no value in any encoding"
    saved = json.loads(out.read_text())
    (entry,) = saved["syncs"]
    assert {c["key"]: c["action"] for c in entry["plan"]["changes"]} == {
        "app/API_KEY": "create", "app/DB_PASSWORD": "create"}
    assert all(c["fingerprint"] for c in entry["plan"]["changes"])

    r = ws.run("apply", "--plan", str(out))
    assert r.code == 0, str(r)
    assert "2 created" in r.out
    assert _value(sm_client, "app/DB_PASSWORD") == C1 and _value(sm_client, "app/API_KEY") == C2
    assert not ws.leaks()


def test_stale_source_value_refuses_whole_plan(ws: Workspace, sm_client: Any) -> None:
    ws.write_spec("other.yaml", [ws.sync("other", secretPath="/other",
                                         syncOptions={"keySchema": "other/{{secretKey}}"})])
    ws.set_secrets({"X": C3}, path="/other")
    out = _save(ws)
    ws.set_secrets({"DB_PASSWORD": C3, "API_KEY": C2})  # a source value moved after review
    calls.reset()
    r = ws.run("apply", "--plan", str(out))
    assert r.code == 1, str(r)
    assert "stale" in r.err and "source changed" in r.err and "app/DB_PASSWORD" in r.err
    assert not _writes(), calls.snapshot()
    listed = {s["Name"] for s in sm_client.list_secrets()["SecretList"]}
    assert listed == set(), "nothing written, not even for the sync that did not change"
    assert not ws.leaks()


def test_stale_destination_version_refuses(ws: Workspace, sm_client: Any) -> None:
    assert ws.run("apply").code == 0
    ws.set_secrets({"DB_PASSWORD": C3, "API_KEY": C2})
    out = _save(ws)
    sm_client.put_secret_value(SecretId="app/API_KEY", SecretString="edited out of band")
    calls.reset()
    r = ws.run("apply", "--plan", str(out))
    assert r.code == 1 and "stale" in r.err and "destination changed" in r.err, str(r)
    assert not _writes()
    assert _value(sm_client, "app/DB_PASSWORD") == C1


def test_stale_specs_refuse(ws: Workspace, sm_client: Any) -> None:
    out = _save(ws)
    ws.write_spec("app.yaml", [ws.sync(syncOptions={"keySchema": "svc/{{secretKey}}"})])
    r = ws.run("apply", "--plan", str(out))
    assert r.code == 1 and "stale" in r.err and "specs changed" in r.err, str(r)
    assert sm_client.list_secrets()["SecretList"] == []


def test_comment_only_spec_edit_is_not_stale(ws: Workspace, sm_client: Any) -> None:
    out = _save(ws)
    path = ws.specs / "app.yaml"
    path.write_text("# reviewed in PR 42\n" + path.read_text())
    assert ws.run("apply", "--plan", str(out)).code == 0


def test_tampered_plan_refused(ws: Workspace, sm_client: Any) -> None:
    out = _save(ws)
    data = json.loads(out.read_text())
    data["syncs"][0]["plan"]["changes"].pop()  # drop a create a reviewer saw
    out.write_text(json.dumps(data))
    r = ws.run("apply", "--plan", str(out))
    assert r.code == 1 and "edited" in r.err, str(r)
    assert sm_client.list_secrets()["SecretList"] == []


def test_plan_from_another_state_refused(ws: Workspace, sm_client: Any) -> None:
    out = _save(ws)
    (ws.state / "fingerprint.key").unlink()  # the apply runs against a state with another key
    r = ws.run("apply", "--plan", str(out))
    assert r.code == 1 and "another state directory" in r.err, str(r)
    assert sm_client.list_secrets()["SecretList"] == []


def test_not_a_plan_file(ws: Workspace, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.plan"
    bogus.write_text("{not json")
    r = ws.run("apply", "--plan", str(bogus))
    assert r.code == 1 and "not a saved plan" in r.err
    r = ws.run("apply", "--plan", str(tmp_path / "missing.plan"))
    assert r.code == 1 and "cannot read" in r.err
    r = ws.run("apply", "--plan", "/dev/zero")  # it was read whole: MemoryError, an internal error
    assert r.code == 1 and "cannot read the plan file (is a character device, not a regular file)" in r.err, str(r)


def test_plan_with_errors_writes_no_file(ws: Workspace) -> None:
    ws.set_secrets({"TOO_BIG": "x" * 70000})
    out = ws.root / "bad.plan"
    r = ws.run("plan", "--out", str(out))
    assert r.code == 1 and "no plan file" in r.err
    assert not out.exists()


def test_plan_with_sync_selection_and_combination_errors(ws: Workspace, sm_client: Any) -> None:
    ws.write_spec("other.yaml", [ws.sync("other", secretPath="/other",
                                         syncOptions={"keySchema": "other/{{secretKey}}"})])
    ws.set_secrets({"X": C3}, path="/other")
    out = _save(ws, "--sync", "app")
    assert [s["name"] for s in json.loads(out.read_text())["syncs"]] == ["app"]
    # another sync changing does not make a plan of `app` stale
    ws.set_secrets({"X": "changed"}, path="/other")
    r = ws.run("apply", "--plan", str(out), "--sync", "app")
    assert r.code == 1 and "cannot be combined" in r.err
    assert ws.run("apply", "--plan", str(out)).code == 0
    names = {s["Name"] for s in sm_client.list_secrets()["SecretList"]}
    assert names == {"app/API_KEY", "app/DB_PASSWORD"}


def test_applied_plan_then_empty_plan(ws: Workspace) -> None:
    out = _save(ws)
    assert ws.run("apply", "--plan", str(out)).code == 0
    r = ws.run("apply", "--plan", str(out))
    assert r.code == 1 and "stale" in r.err, "a plan applies once: the world it was made against is gone"
    r = ws.run("plan", "--detailed-exitcode")
    assert r.code == 0, str(r)


def test_unwritable_out_names_the_plan_file_not_a_temporary(ws: Workspace) -> None:
    out = ws.root / "missing-dir" / "app.plan"
    r = ws.run("plan", "--out", str(out))
    assert r.code == 1 and f"{out}: " in r.err, str(r)
    assert ".plan-" not in r.err, "the user asked for app.plan; a temporary name means nothing to them"
    (ws.root / "adir.plan").mkdir()
    r = ws.run("plan", "--out", str(ws.root / "adir.plan"))
    assert r.code == 1 and f"{ws.root / 'adir.plan'}: is a directory" in r.err, str(r)
    assert not [p for p in ws.root.iterdir() if p.name.startswith(".plan-")], "no temporary left behind"
