"""End to end through the CLI against the Windmill emulator, as a user would drive it.

Out-of-band edits go through Windmill's own SDK (``wmill``), the way someone editing by hand
or from a script would; assertions read the emulator's state directly.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from reconciler import calls
from tests.emulators.windmill import Fault, WindmillEmulator
from tests.fixtures_windmill import WM_TOKEN_ENV, WM_USER, WM_WORKSPACE
from tests.support.canary import CANARIES
from tests.support.cli import Workspace
from tests.support.cli import plan_json as _plan
from tests.support.cli import steps as _steps

C1, C2, C3 = CANARIES
KIND = "windmill"
WRITES = {"create", "update", "delete"}
FOLDER = "f/team/my_app/"
API = f"/api/w/{WM_WORKSPACE}/variables"


class WindmillWorkspace(Workspace):
    def __init__(self, root: Path, wm: WindmillEmulator) -> None:
        self.wm = wm
        super().__init__(root, "http://127.0.0.1:1")

    def write_connections(self) -> None:
        self.write_spec("connections.yaml", [
            {"kind": "Connection", "name": "local", "app": "file", "path": "../secrets.yaml"},
            {"kind": "Connection", "name": "wm", "app": "windmill", "instanceUrl": self.wm.url,
             "credentials": {"method": "token", "token": {"env": WM_TOKEN_ENV}}},
        ])

    def sync(self, name: str = "app", **overrides: object) -> dict[str, object]:
        doc = super().sync(name)
        doc.update({"destination": "windmill", "connection": "wm",
                    "destinationConfig": {"workspace": WM_WORKSPACE, "path": FOLDER},
                    "syncOptions": {"initialSyncBehavior": "overwrite-destination"}})
        for k, v in overrides.items():
            if isinstance(v, dict) and isinstance(doc.get(k), dict):
                doc[k] = {**doc[k], **v}  # type: ignore[dict-item]
            else:
                doc[k] = v
        return doc

    def var(self, name: str) -> Any:
        return self.wm.store.variable(WM_WORKSPACE, FOLDER + name)

    def paths(self) -> set[str]:
        return self.wm.store.paths(WM_WORKSPACE)


@pytest.fixture
def ws(tmp_path: Path, windmill: WindmillEmulator, windmill_sleeps: list[float]) -> WindmillWorkspace:
    return WindmillWorkspace(tmp_path, windmill)




def _calls() -> dict[str, int]:
    return calls.by_call(KIND)


#: variables no sync on FOLDER may touch: a sub-folder, a sibling the LIKE '_' matches, others
OUTSIDE = {"f/team/my_app/sub/NESTED": "nested", "f/team/myXapp/SIBLING": "like-wildcard",
           "f/team/other/OTHER": "other", "u/admin/PERSONAL": "personal"}


def _seed_outside(wm: WindmillEmulator) -> None:
    for path, value in OUTSIDE.items():
        wm.store.put(WM_WORKSPACE, path, value, description="not ours")


def _outside_untouched(wm: WindmillEmulator, before: dict[str, int]) -> None:
    for path, value in OUTSIDE.items():
        v = wm.store.variable(WM_WORKSPACE, path)
        assert v is not None and v.value == value and v.edited_at == before[path], path
    assert not any(r.path.endswith(tuple(OUTSIDE)) for r in wm.log if r.method != "GET" or "get_value" in r.path)


def _stamps(wm: WindmillEmulator) -> dict[str, int]:
    return {p: wm.store.variable(WM_WORKSPACE, p).edited_at for p in OUTSIDE}  # type: ignore[union-attr]


def test_first_sync_plan_apply_then_noop(ws: WindmillWorkspace) -> None:
    _seed_outside(ws.wm)
    before = _stamps(ws.wm)
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"DB_PASSWORD": C1, "API_KEY": {"value": C2, "comment": "for the api"}})

    r = ws.run("plan", "--detailed-exitcode")
    assert r.code == 2, str(r)
    assert f"+ {FOLDER}API_KEY" in r.out and f"+ {FOLDER}DB_PASSWORD" in r.out, r.out
    assert "NESTED" not in r.out and "SIBLING" not in r.out
    assert ws.paths() == set(OUTSIDE)

    r = ws.run("apply")
    assert r.code == 0, str(r)
    db, api = ws.var("DB_PASSWORD"), ws.var("API_KEY")
    assert (db.value, db.is_secret, db.description, db.edited_by) == (C1, True, "", WM_USER)
    assert (api.value, api.is_secret, api.description) == (C2, True, "for the api")
    assert ws.paths() == set(OUTSIDE) | {FOLDER + "DB_PASSWORD", FOLDER + "API_KEY"}

    r = ws.run("plan", "--detailed-exitcode")
    assert r.code == 0, str(r)
    assert "No changes" in r.out
    _outside_untouched(ws.wm, before)
    assert ws.leaks() == []


def test_noop_costs_only_list_pages_with_warm_state(ws: WindmillWorkspace) -> None:
    n = 250
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({f"K_{i:03d}": f"value-{i}" for i in range(n)})
    assert ws.run("apply").code == 0
    ws.wm.clear()
    calls.reset()
    r = ws.run("apply")
    assert r.code == 0, str(r)
    pages = n // 100 + 1
    assert _calls() == {"list": pages}, calls.snapshot()
    # the emulator agrees: the requests were the list pages, with per_page, and nothing else
    assert ws.wm.count() == ws.wm.count("GET", f"{API}/list") == pages
    assert all("per_page=100" in r.query and "path_start=f%2Fteam%2Fmy_app%2F" in r.query for r in ws.wm.log)

    # losing state costs reads, never correctness (and still writes nothing)
    shutil.rmtree(ws.state)
    calls.reset()
    assert ws.run("plan", "--detailed-exitcode").code == 0
    assert _calls() == {"list": pages, "get_value": n}


def test_out_of_band_edit_costs_one_read_and_one_write(ws: WindmillWorkspace, wm_client: Any) -> None:
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"DB_PASSWORD": C1, "OTHER": C2})
    assert ws.run("apply").code == 0
    wm_client.set_variable(FOLDER + "DB_PASSWORD", "edited-by-hand", is_secret=True)
    calls.reset()
    plan = _plan(ws, "--detailed-exitcode")
    assert _steps(plan) == [("update", FOLDER + "DB_PASSWORD")]
    assert plan["syncs"][0]["changes"][0].get("drift") is True
    assert _calls() == {"list": 1, "get_value": 1}, "only the edited variable is read"
    calls.reset()
    assert ws.run("apply").code == 0
    assert ws.var("DB_PASSWORD").value == C1
    assert _calls() == {"list": 2, "get_value": 1, "update": 1}, "one listing more learns the new edited_at"
    calls.reset()
    assert ws.run("plan", "--detailed-exitcode").code == 0
    assert _calls() == {"list": 1}
    assert ws.leaks() == []


def test_an_edit_that_keeps_the_value_writes_nothing(ws: WindmillWorkspace, wm_client: Any) -> None:
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": C1})
    assert ws.run("apply").code == 0
    wm_client.set_variable(FOLDER + "A", C1, is_secret=True)  # edited_at moves, the value does not
    calls.reset()
    assert ws.run("apply").code == 0
    assert _calls() == {"list": 1, "get_value": 1}
    calls.reset()
    assert ws.run("apply").code == 0
    assert _calls() == {"list": 1}, "state learnt the new edited_at"


def test_description_follows_the_comment(ws: WindmillWorkspace) -> None:
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": {"value": C1, "comment": "first"}})
    assert ws.run("apply").code == 0
    ws.set_secrets({"A": {"value": C1, "comment": "second"}})
    plan = _plan(ws, "--detailed-exitcode")
    assert _steps(plan) == [("update", FOLDER + "A")]
    assert "description" in json.dumps(plan) and "first" not in json.dumps(plan)
    ws.wm.clear()
    assert ws.run("apply").code == 0
    assert (ws.var("A").value, ws.var("A").description) == (C1, "second")
    assert ws.wm.count("POST", f"{API}/update/{FOLDER}A") == 1
    ws.set_secrets({"A": {"value": C1}})
    assert _steps(_plan(ws)) == [("update", FOLDER + "A")]
    assert ws.run("apply").code == 0
    assert ws.var("A").description == ""
    assert ws.run("plan", "--detailed-exitcode").code == 0


def test_a_plain_variable_holding_the_value_is_made_secret(ws: WindmillWorkspace, wm_client: Any) -> None:
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": C1})
    assert ws.run("apply").code == 0
    wm_client.client.delete(f"/w/{WM_WORKSPACE}/variables/delete/{FOLDER}A")
    wm_client.set_variable(FOLDER + "A", C1, is_secret=False)  # same value, now shown in every list
    r = ws.run("plan")
    assert f"~ {FOLDER}A" in r.out and "secret flag" in r.out, str(r)
    calls.reset()
    assert ws.run("apply").code == 0
    var = ws.var("A")
    assert var.is_secret and var.value == C1
    assert _calls()["update"] == 1
    assert ws.run("plan", "--detailed-exitcode").code == 0
    assert ws.leaks() == []


def test_deletes_and_disable_secret_deletion(ws: WindmillWorkspace) -> None:
    _seed_outside(ws.wm)
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": C1, "B": C2})
    assert ws.run("apply").code == 0
    ws.set_secrets({"A": C1})
    ws.write_spec("app.yaml", [ws.sync(syncOptions={"disableSecretDeletion": True})])
    assert _steps(_plan(ws)) == []
    assert ws.run("apply").code == 0
    assert FOLDER + "B" in ws.paths()
    ws.write_spec("app.yaml", [ws.sync()])
    assert _steps(_plan(ws)) == [("delete", FOLDER + "B")]
    assert ws.run("apply").code == 0
    assert ws.paths() == set(OUTSIDE) | {FOLDER + "A"}


def test_variables_we_did_not_create_are_labelled(ws: WindmillWorkspace) -> None:
    ws.wm.store.put(WM_WORKSPACE, FOLDER + "STRAY", "stray")
    ws.wm.store.put(WM_WORKSPACE, FOLDER + "A", "old")
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": C1, "B": C2})
    plan = _plan(ws)
    changes = {c["key"]: c for c in plan["syncs"][0]["changes"]}
    assert changes[FOLDER + "A"]["action"] == "update" and changes[FOLDER + "A"].get("unowned") is True
    assert changes[FOLDER + "STRAY"]["action"] == "delete" and changes[FOLDER + "STRAY"].get("unowned") is True
    assert ws.run("apply").code == 0
    assert ws.paths() == {FOLDER + "A", FOLDER + "B"}


def test_key_schema_scopes_the_folder(ws: WindmillWorkspace) -> None:
    ws.wm.store.put(WM_WORKSPACE, FOLDER + "UNMANAGED", "keep")
    ws.write_spec("app.yaml", [ws.sync(syncOptions={"keySchema": "APP_{{secretKey}}"})])
    ws.set_secrets({"A": C1})
    assert _steps(_plan(ws)) == [("create", FOLDER + "APP_A")]
    assert ws.run("apply").code == 0
    assert ws.paths() == {FOLDER + "UNMANAGED", FOLDER + "APP_A"}


def test_a_name_windmill_refuses_is_a_plan_error_for_that_key(ws: WindmillWorkspace) -> None:
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"GOOD": C1, "user.email": C2})
    r = ws.run("plan")
    assert "user.email" in r.out + r.err and "letters, digits" in r.out + r.err, str(r)
    ws.run("apply")
    assert ws.paths() == {FOLDER + "GOOD"}
    assert ws.leaks() == []


def test_import_prioritize_source_on_first_sync(ws: WindmillWorkspace) -> None:
    ws.wm.store.put(WM_WORKSPACE, FOLDER + "ONLY_AT_DEST", "from-windmill")
    ws.wm.store.put(WM_WORKSPACE, FOLDER + "BOTH", "windmill-value")
    ws.wm.store.put(WM_WORKSPACE, FOLDER + "sub/NESTED", "not-in-scope")
    ws.write_spec("app.yaml", [ws.sync(syncOptions={"initialSyncBehavior": "import-prioritize-source"})])
    ws.set_secrets({"BOTH": C1, "NEW": C2})
    r = ws.run("apply")
    assert r.code == 0, str(r)
    src = ws.secrets_file.read_text()
    assert 'ONLY_AT_DEST: "from-windmill"' in src and "NESTED" not in src
    assert ws.var("BOTH").value == C1, "source wins"
    assert ws.var("NEW").value == C2 and ws.var("ONLY_AT_DEST").value == "from-windmill"
    assert ws.run("plan", "--detailed-exitcode").code == 0


def test_import_prioritize_destination_on_first_sync(ws: WindmillWorkspace) -> None:
    ws.wm.store.put(WM_WORKSPACE, FOLDER + "BOTH", "windmill-value")
    ws.write_spec("app.yaml", [ws.sync(syncOptions={"initialSyncBehavior": "import-prioritize-destination"})])
    ws.set_secrets({"BOTH": C1})
    before = ws.var("BOTH").edited_at
    assert ws.run("apply").code == 0
    assert ws.var("BOTH").value == "windmill-value" and "windmill-value" in ws.secrets_file.read_text()
    assert ws.var("BOTH").edited_at == before, "nothing rewritten"
    ws.set_secrets({"BOTH": C2})
    assert ws.run("apply").code == 0
    assert ws.var("BOTH").value == C2


def test_import_and_remove_commands(ws: WindmillWorkspace) -> None:
    _seed_outside(ws.wm)
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": C1})
    assert ws.run("apply").code == 0
    ws.wm.store.put(WM_WORKSPACE, FOLDER + "EXTRA_KEY", "added-in-windmill")
    r = ws.run("import", "app", "--priority", "destination")
    assert r.code == 0, str(r)
    assert 'EXTRA_KEY: "added-in-windmill"' in ws.secrets_file.read_text()
    st = json.loads(ws.run("status", "--json").out)["syncs"][0]
    assert st["importStatus"] == "succeeded"

    r = ws.run("remove", "app", "--yes")
    assert r.code == 0, str(r)
    assert ws.paths() == set(OUTSIDE), "exactly what the sync manages"
    st = json.loads(ws.run("status", "--json").out)["syncs"][0]
    assert st["removeStatus"] == "succeeded"


def test_a_list_without_edited_at_falls_back_to_reading_values(ws: WindmillWorkspace) -> None:
    ws.wm.store.list_edited_at = False
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": C1, "B": C2})
    assert ws.run("apply").code == 0
    calls.reset()
    r = ws.run("apply", "--log-format", "json")
    assert r.code == 0, str(r)
    assert _calls() == {"list": 1, "get_value": 2}, "no marker: each value is read, and nothing written"
    assert "edited_at" in r.out + r.err
    assert ws.leaks() == []


def test_faults_converge_without_duplicate_writes(ws: WindmillWorkspace, windmill_sleeps: list[float]) -> None:
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": C1, "B": C2, "C": C3})
    ws.wm.inject(Fault("POST", rf"{API}/create", status=429, headers={"Retry-After": "2"}))
    ws.wm.inject(Fault("POST", rf"{API}/create", drop="after"))
    ws.wm.inject(Fault("GET", rf"{API}/list", status=502))
    r = ws.run("apply")
    assert r.code == 0, str(r)
    assert 2.0 in windmill_sleeps
    assert {ws.var(k).value for k in "ABC"} == {C1, C2, C3}
    assert ws.wm.count("POST", rf"{API}/update/.*") == 1, "the create that landed unanswered became an update"
    assert ws.run("plan", "--detailed-exitcode").code == 0
    assert ws.leaks() == []


def test_exhausted_retries_fail_the_sync_and_the_next_run_converges(ws: WindmillWorkspace) -> None:
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": C1, "B": C2})
    ws.wm.inject(Fault("POST", rf"{API}/create", status=503, times=10))  # five tries each
    r = ws.run("apply")
    assert r.code == 1, str(r)
    assert "503" in r.out + r.err
    assert ws.run("apply").code == 0
    assert ws.var("A").value == C1 and ws.var("B").value == C2
    assert ws.run("plan", "--detailed-exitcode").code == 0


def test_a_wrong_token_is_a_clear_error(ws: WindmillWorkspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WM_TOKEN_ENV, C1)
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": C2})
    r = ws.run("apply")
    assert r.code == 1, str(r)
    lines = [line for line in (r.out + r.err).splitlines() if "401" in line]
    assert lines and all("token" in line for line in lines), str(r)
    assert ws.leaks() == []


def test_whole_session_leaks_nothing(ws: WindmillWorkspace, wm_client: Any) -> None:
    ws.write_spec("app.yaml", [ws.sync(reconcile={"maxDeletes": "100%"})])
    ws.set_secrets({"A": C1, "B_X": {"value": C2, "comment": "a comment"}, "C": C3})
    for args in (("plan",), ("plan", "--json"), ("apply", "--log-format", "json", "--log-level", "debug"),
                 ("status",), ("status", "--json")):
        ws.run(*args)
    wm_client.set_variable(FOLDER + "A", C3, is_secret=True)
    ws.set_secrets({"A": C2})
    ws.wm.inject(method="POST", status=503, process=True)
    for args in (("plan",), ("apply", "--log-level", "debug"), ("status",), ("plan", "--json")):
        ws.run(*args)
    ws.set_secrets({"A": C2, "B_X": C1})
    for args in (("plan", "--json"), ("apply", "--log-format", "json", "--log-level", "debug"),
                 ("import", "app", "--priority", "source"), ("remove", "app"), ("status", "--json")):
        ws.run(*args)
    assert ws.leaks() == []


def test_https_instance_with_a_ca_bundle(tmp_path: Path, windmill_sleeps: list[float],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import trustme

    from tests.fixtures_windmill import WM_TOKEN

    monkeypatch.setenv(WM_TOKEN_ENV, WM_TOKEN)
    wm = WindmillEmulator(trustme.CA())
    wm.add_token(WM_TOKEN, WM_WORKSPACE)
    wm.start()
    try:
        ca = wm.write_ca(tmp_path / "ca.pem")
        (tmp_path / "ws").mkdir()
        ws = WindmillWorkspace(tmp_path / "ws", wm)
        ws.write_spec("app.yaml", [ws.sync()])
        ws.set_secrets({"A": C1})
        r = ws.run("apply")
        assert r.code == 1 and "caBundle" in r.out + r.err, str(r)
        ws.write_spec("connections.yaml", [
            {"kind": "Connection", "name": "local", "app": "file", "path": "../secrets.yaml"},
            {"kind": "Connection", "name": "wm", "app": "windmill", "instanceUrl": wm.url, "caBundle": str(ca),
             "credentials": {"method": "token", "token": {"env": WM_TOKEN_ENV}}},
        ])
        assert ws.run("apply").code == 0
        assert wm.url.startswith("https://") and wm.store.value(WM_WORKSPACE, FOLDER + "A") == C1
        assert ws.leaks() == []
    finally:
        wm.stop()


def test_syncs_on_one_workspace_share_one_listing(ws: WindmillWorkspace, wm_client: Any) -> None:
    import yaml

    folders = ["f/team/a/", "f/team/b/", "u/admin/c/"]  # no common prefix: one listing of the workspace
    docs = [ws.sync(f"s{i}", secretPath=f"/s{i}", destinationConfig={"path": f}) for i, f in enumerate(folders)]
    ws.write_spec("app.yaml", docs)
    ws.secrets_file.write_text(yaml.safe_dump({"dev": {f"/s{i}": {"A": f"a{i}", "B": f"b{i}"} for i in range(3)}}))
    ws.wm.store.put(WM_WORKSPACE, "f/team/a/sub/NESTED", "nested")
    assert ws.run("apply").code == 0
    assert ws.paths() == {f + k for f in folders for k in "AB"} | {"f/team/a/sub/NESTED"}
    calls.reset()
    r = ws.run("apply")
    assert r.code == 0 and "3 succeeded" in r.out, str(r)
    assert _calls() == {"list": 1}, "one listing for the three syncs"
    wm_client.set_variable("f/team/b/A", "edited", is_secret=True)
    ws.wm.store.workspaces[WM_WORKSPACE].pop("u/admin/c/B")
    r = ws.run("plan")
    assert "f/team/b/A" in r.out and "+ u/admin/c/B" in r.out and "NESTED" not in r.out, r.out
    assert ws.run("apply").code == 0
    assert ws.wm.store.value(WM_WORKSPACE, "f/team/b/A") == "a1" and ws.var("A") is None
    assert ws.wm.store.value(WM_WORKSPACE, "u/admin/c/B") == "b2"
    assert ws.wm.store.value(WM_WORKSPACE, "f/team/a/sub/NESTED") == "nested"
    assert ws.run("plan", "--detailed-exitcode").code == 0


@pytest.mark.parametrize("stray", ["\u00e9", "\nX-Injected: 1", "\x01"], ids=["non-ascii", "newline", "control"])
def test_a_token_no_http_header_can_carry_is_a_config_error(ws: WindmillWorkspace, monkeypatch: pytest.MonkeyPatch,
                                                            stray: str) -> None:
    """It used to crash the whole command (UnicodeEncodeError), or be retried five times as a
    dropped connection (a line break): a stray byte in a token file is the user's to fix."""
    monkeypatch.setenv(WM_TOKEN_ENV, C1[:8] + stray + C1[8:])
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": C2})
    r = ws.run("plan")
    assert r.code == 1, str(r)
    assert "credentials.token" in r.out and "HTTP header" in r.out, str(r)
    assert "destination.retry" not in r.err and not ws.wm.log, "nothing was sent, nothing retried"
    assert ws.leaks() == []
