"""End to end through the CLI against moto's server, as a user would drive it."""

from __future__ import annotations

import json
from typing import Any

from reconciler import calls
from tests.support.canary import CANARIES
from tests.support.cli import Workspace
from tests.support.cli import plan_json as _plan

C1, C2, C3 = CANARIES



def _actions(plan: dict[str, Any], sync: str = "app") -> dict[str, str]:
    s = next(s for s in plan["syncs"] if s["name"] == sync)
    return {c["key"]: c["action"] for c in s["changes"]}


def _value(sm: Any, name: str) -> str:
    return sm.get_secret_value(SecretId=name)["SecretString"]  # type: ignore[no-any-return]


def _names(sm: Any, planned: bool = False) -> set[str]:
    out: set[str] = set()
    for page in sm.get_paginator("list_secrets").paginate(IncludePlannedDeletion=planned):
        out |= {s["Name"] for s in page["SecretList"]}
    return out


def test_first_sync_plan_apply_then_noop(ws: Workspace, sm_client: Any) -> None:
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"DB_PASSWORD": C1, "API_KEY": {"value": C2, "comment": "for the api"}})

    r = ws.run("plan", "--detailed-exitcode")
    assert r.code == 2, str(r)
    assert "+ app/API_KEY" in r.out and "+ app/DB_PASSWORD" in r.out
    assert "2 to create" in r.out
    assert not ws.state.exists(), "plan must not write state"
    assert _names(sm_client) == set()

    r = ws.run("apply")
    assert r.code == 0, str(r)
    assert _value(sm_client, "app/DB_PASSWORD") == C1
    tags = {t["Key"]: t["Value"] for t in sm_client.describe_secret(SecretId="app/API_KEY")["Tags"]}
    assert tags["managed-by"] == "reconciler" and tags["reconciler-sync"] == "app"

    r = ws.run("plan", "--detailed-exitcode")
    assert r.code == 0, str(r)
    assert "No changes" in r.out
    assert ws.leaks() == []


def test_out_of_band_edit_is_corrected(ws: Workspace, sm_client: Any) -> None:
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"DB_PASSWORD": C1})
    assert ws.run("apply").code == 0
    sm_client.put_secret_value(SecretId="app/DB_PASSWORD", SecretString="edited-by-hand")

    plan = _plan(ws, "--detailed-exitcode")
    assert _actions(plan) == {"app/DB_PASSWORD": "update"}
    change = plan["syncs"][0]["changes"][0]
    assert change.get("drift") is True
    assert ws.run("apply").code == 0
    assert _value(sm_client, "app/DB_PASSWORD") == C1
    assert ws.run("plan", "--detailed-exitcode").code == 0
    assert ws.leaks() == []


def test_drift_report_only_reports(ws: Workspace, sm_client: Any) -> None:
    ws.write_spec("app.yaml", [ws.sync(reconcile={"drift": "report"})])
    ws.set_secrets({"DB_PASSWORD": C1})
    assert ws.run("apply").code == 0
    sm_client.put_secret_value(SecretId="app/DB_PASSWORD", SecretString="edited-by-hand")

    plan = _plan(ws)
    assert _actions(plan) == {}
    assert [d["key"] for d in plan["syncs"][0]["drift"]] == ["app/DB_PASSWORD"]
    r = ws.run("apply")
    assert r.code == 0, str(r)
    assert "drifted" in r.out
    assert _value(sm_client, "app/DB_PASSWORD") == "edited-by-hand"


def test_delete_keeps_recovery_window_and_restore(ws: Workspace, sm_client: Any) -> None:
    ws.write_spec("app.yaml", [ws.sync(syncOptions={"recoveryWindowInDays": 7})])
    ws.set_secrets({"A": C1, "B": C2})
    assert ws.run("apply").code == 0

    ws.set_secrets({"A": C1})
    assert _actions(_plan(ws)) == {"app/B": "delete"}
    assert ws.run("apply").code == 0
    assert "app/B" not in _names(sm_client)
    assert "app/B" in _names(sm_client, planned=True), "deleted with a recovery window, not forced"
    desc = sm_client.describe_secret(SecretId="app/B")
    assert "DeletedDate" in desc

    ws.set_secrets({"A": C1, "B": C2})
    steps = [(c["action"], c["key"]) for c in _plan(ws)["syncs"][0]["changes"]]
    assert steps[0] == ("restore", "app/B")
    versions = sm_client.list_secret_version_ids(SecretId="app/B", IncludeDeprecated=True)["Versions"]
    r = ws.run("apply")
    assert r.code == 0, str(r)
    assert _value(sm_client, "app/B") == C2
    after = sm_client.list_secret_version_ids(SecretId="app/B", IncludeDeprecated=True)["Versions"]
    assert len(after) == len(versions), "the restored value was compared, not written again"
    assert ws.run("plan", "--detailed-exitcode").code == 0

    ws.set_secrets({"A": C1, "B": C3})
    assert ws.run("apply").code == 0
    assert _value(sm_client, "app/B") == C3
    assert ws.leaks() == []


def test_restore_with_new_value_restores_then_updates(ws: Workspace, sm_client: Any) -> None:
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": C1, "B": C2})
    assert ws.run("apply").code == 0
    ws.set_secrets({"A": C1})
    assert ws.run("apply").code == 0
    ws.set_secrets({"A": C1, "B": C3})
    plan = _plan(ws)
    keys = [(c["action"], c["key"]) for c in plan["syncs"][0]["changes"]]
    assert keys == [("restore", "app/B"), ("update", "app/B")]
    assert ws.run("apply").code == 0
    assert _value(sm_client, "app/B") == C3


def test_disable_secret_deletion(ws: Workspace, sm_client: Any) -> None:
    ws.write_spec("app.yaml", [ws.sync(syncOptions={"disableSecretDeletion": True})])
    ws.set_secrets({"A": C1, "B": C2})
    assert ws.run("apply").code == 0
    ws.set_secrets({"A": C1})
    assert _actions(_plan(ws)) == {}
    assert ws.run("apply").code == 0
    assert "app/B" in _names(sm_client)


def test_keys_outside_scope_are_untouched(ws: Workspace, sm_client: Any) -> None:
    sm_client.create_secret(Name="other/X", SecretString="keep-me")
    sm_client.create_secret(Name="app-not-mine", SecretString="keep-me-too")
    sm_client.create_secret(Name="app/nested/Y", SecretString="nested")  # '/' rule: not in app/{{secretKey}}
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": C1})
    plan = _plan(ws)
    assert _actions(plan) == {"app/A": "create"}
    assert ws.run("apply").code == 0
    assert _value(sm_client, "other/X") == "keep-me"
    assert _value(sm_client, "app-not-mine") == "keep-me-too"
    assert _value(sm_client, "app/nested/Y") == "nested"


def test_foreign_in_scope_key_is_labelled_and_deleted_only_with_budget(ws: Workspace, sm_client: Any) -> None:
    sm_client.create_secret(Name="app/LEGACY", SecretString="old")
    ws.write_spec("app.yaml", [ws.sync(reconcile={"maxDeletes": 1})])
    ws.set_secrets({"A": C1})
    plan = _plan(ws)
    changes = {c["key"]: c for c in plan["syncs"][0]["changes"]}
    assert changes["app/LEGACY"]["action"] == "delete"
    assert changes["app/LEGACY"].get("unowned") is True
    r = ws.run("plan")
    assert "app/LEGACY" in r.out and "not created by reconciler" in r.out


def test_default_guard_allows_a_replacement_and_refuses_emptying(ws: Workspace, sm_client: Any) -> None:
    """Replacing every key while creating others leaves the scope non-empty: applied. An
    apply that would delete every in-scope key and keep or create nothing is refused."""
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": C1, "B": C2})
    assert ws.run("apply").code == 0
    ws.set_secrets({"C": C3})
    r = ws.run("apply")
    assert r.code == 0, str(r)
    assert _names(sm_client) == {"app/C"}
    ws.set_secrets({"C": ""})  # AWS cannot hold "": treated as absent, so every key would go
    r = ws.run("apply")
    assert r.code == 1 and "leave this sync's scope empty" in r.err + r.out, str(r)
    assert _names(sm_client) == {"app/C"}


def test_empty_source_never_deletes(ws: Workspace, sm_client: Any) -> None:
    ws.write_spec("app.yaml", [ws.sync(reconcile={"maxDeletes": "100%"})])
    ws.set_secrets({"A": C1, "B": C2})
    assert ws.run("apply").code == 0
    ws.set_secrets({})
    r = ws.run("apply")
    assert r.code == 1, str(r)
    assert {"app/A", "app/B"} <= _names(sm_client)


def test_unreadable_source_never_deletes(ws: Workspace, sm_client: Any) -> None:
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": C1})
    assert ws.run("apply").code == 0
    ws.secrets_file.write_text("dev: {/app: [unclosed\n")
    r = ws.run("apply")
    assert r.code == 1
    assert "Traceback" not in r.out + r.err
    assert "secrets.yaml:" in r.out + r.err
    assert "app/A" in _names(sm_client)


def test_many_to_one(ws: Workspace, sm_client: Any) -> None:
    ws.write_spec("app.yaml", [ws.sync(
        destinationConfig={"mappingBehavior": "many-to-one", "secretName": "bundle"},
        syncOptions={"keySchema": "app/{{secretKey}}"},
    )])
    ws.set_secrets({"A": C1, "B": C2})
    assert _actions(_plan(ws)) == {"app/bundle": "create"}
    assert ws.run("apply").code == 0
    assert json.loads(_value(sm_client, "app/bundle")) == {"A": C1, "B": C2}
    assert ws.run("plan", "--detailed-exitcode").code == 0
    ws.set_secrets({"A": C1})
    assert _actions(_plan(ws)) == {"app/bundle": "update"}
    assert ws.run("apply").code == 0
    assert json.loads(_value(sm_client, "app/bundle")) == {"A": C1}
    assert ws.leaks() == []


def test_tags_and_metadata_as_tags(ws: Workspace, sm_client: Any) -> None:
    ws.write_spec("app.yaml", [ws.sync(syncOptions={
        "tags": [{"key": "team", "value": "payments"}],
        "syncSecretMetadataAsTags": True,
    })])
    ws.set_secrets({"A": {"value": C1, "metadata": {"team": "ignored", "tier": "gold"}}})
    assert ws.run("apply").code == 0
    tags = {t["Key"]: t["Value"] for t in sm_client.describe_secret(SecretId="app/A")["Tags"]}
    assert tags["team"] == "payments", "configured tags win over metadata"
    assert tags["tier"] == "gold"
    assert ws.run("plan", "--detailed-exitcode").code == 0

    # a tag change is an update without a new value version
    def versions() -> list[str]:
        return sorted(v["VersionId"] for v in sm_client.list_secret_version_ids(SecretId="app/A")["Versions"])

    versions_before = versions()
    ws.write_spec("app.yaml", [ws.sync(syncOptions={
        "tags": [{"key": "team", "value": "core"}], "syncSecretMetadataAsTags": False})])
    plan = _plan(ws)
    assert _actions(plan) == {"app/A": "update"}
    assert ws.run("apply").code == 0
    tags = {t["Key"]: t["Value"] for t in sm_client.describe_secret(SecretId="app/A")["Tags"]}
    assert tags["team"] == "core" and "tier" not in tags
    assert versions() == versions_before
    assert ws.run("plan", "--detailed-exitcode").code == 0


def test_foreign_tags_are_kept(ws: Workspace, sm_client: Any) -> None:
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": C1})
    assert ws.run("apply").code == 0
    sm_client.tag_resource(SecretId="app/A", Tags=[{"Key": "owner", "Value": "ops"}])
    assert ws.run("plan", "--detailed-exitcode").code == 0
    assert ws.run("apply").code == 0
    tags = {t["Key"]: t["Value"] for t in sm_client.describe_secret(SecretId="app/A")["Tags"]}
    assert tags["owner"] == "ops"


def test_kms_key_unchanged_is_never_rewritten(ws: Workspace, sm_client: Any) -> None:
    ws.write_spec("app.yaml", [ws.sync(syncOptions={"keyId": "alias/aws/secretsmanager"})])
    ws.set_secrets({"A": C1})
    assert ws.run("apply").code == 0
    calls.reset()
    assert ws.run("apply").code == 0
    assert set(calls.by_call("aws-secrets-manager")) == {"ListSecrets"}

    ws.write_spec("app.yaml", [ws.sync(syncOptions={"keyId": "alias/my-key"})])
    plan = _plan(ws)
    assert _actions(plan) == {"app/A": "update"}
    assert ws.run("apply").code == 0
    assert sm_client.describe_secret(SecretId="app/A")["KmsKeyId"] == "alias/my-key"
    calls.reset()
    assert ws.run("plan", "--detailed-exitcode").code == 0
    assert set(calls.by_call("aws-secrets-manager")) == {"ListSecrets"}


def test_import_prioritize_source_on_first_sync(ws: Workspace, sm_client: Any) -> None:
    sm_client.create_secret(Name="app/ONLY_AT_DEST", SecretString="from-aws")
    sm_client.create_secret(Name="app/BOTH", SecretString="aws-value")
    ws.write_spec("app.yaml", [ws.sync(syncOptions={"initialSyncBehavior": "import-prioritize-source"})])
    ws.set_secrets({"BOTH": C1, "NEW": C2})
    r = ws.run("apply")
    assert r.code == 0, str(r)
    src = ws.secrets_file.read_text()
    assert "ONLY_AT_DEST" in src and "from-aws" in src
    assert _value(sm_client, "app/BOTH") == C1, "source wins"
    assert _value(sm_client, "app/NEW") == C2
    assert _value(sm_client, "app/ONLY_AT_DEST") == "from-aws"
    assert ws.run("plan", "--detailed-exitcode").code == 0


def test_import_prioritize_destination_on_first_sync(ws: Workspace, sm_client: Any) -> None:
    sm_client.create_secret(Name="app/BOTH", SecretString="aws-value")
    ws.write_spec("app.yaml", [ws.sync(syncOptions={"initialSyncBehavior": "import-prioritize-destination"})])
    ws.set_secrets({"BOTH": C1})
    assert ws.run("apply").code == 0
    assert _value(sm_client, "app/BOTH") == "aws-value"
    assert "aws-value" in ws.secrets_file.read_text()
    # after the first sync the source is the truth again
    ws.set_secrets({"BOTH": C2})
    assert ws.run("apply").code == 0
    assert _value(sm_client, "app/BOTH") == C2


def test_an_import_never_deletes_or_overwrites_what_it_could_not_read(ws: Workspace, sm_client: Any) -> None:
    """A binary secret has no text to import: `import --priority destination` left it out of
    the source, then overwrote one and deleted the other as "not in source"."""
    sm_client.create_secret(Name="app/BOTH", SecretBinary=b"\xff\x00binary")
    sm_client.create_secret(Name="app/ONLY_AT_DEST", SecretBinary=b"\x00\x01binary")
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"BOTH": C1, "NEW": C2})
    r = ws.run("import", "app", "--priority", "destination")
    assert r.code == 1, str(r)
    for key in ("app/BOTH", "app/ONLY_AT_DEST"):
        assert f"{key}: value could not be read as text" in r.out, str(r)
        desc = sm_client.describe_secret(SecretId=key)
        assert "DeletedDate" not in desc, f"{key} was deleted"
        assert sm_client.get_secret_value(SecretId=key)["SecretBinary"].endswith(b"binary"), f"{key} was overwritten"
    assert _value(sm_client, "app/NEW") == C2, "the rest of the sync still runs"
    r = ws.run("import", "app", "--priority", "source")
    assert r.code == 1 and "app/ONLY_AT_DEST" in r.out and "DeletedDate" not in sm_client.describe_secret(
        SecretId="app/ONLY_AT_DEST"), str(r)
    assert _value(sm_client, "app/BOTH") == C1, "source priority: the source value wins, as asked"


def test_import_and_remove_commands(ws: Workspace, sm_client: Any) -> None:
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": C1})
    assert ws.run("apply").code == 0
    sm_client.create_secret(Name="app/EXTRA", SecretString="added-in-aws")
    r = ws.run("import", "app", "--priority", "source")
    assert r.code == 0, str(r)
    assert "added-in-aws" in ws.secrets_file.read_text()
    st = json.loads(ws.run("status", "--json").out)["syncs"][0]
    assert st["importStatus"] == "succeeded" and st["lastImportedAt"]

    r = ws.run("remove", "app", "--yes")
    assert r.code == 0, str(r)
    assert _names(sm_client) == set()
    st = json.loads(ws.run("status", "--json").out)["syncs"][0]
    assert st["removeStatus"] == "succeeded"


def test_noop_call_budget_with_warm_state(ws: Workspace, sm_client: Any) -> None:
    n = 250
    ws.write_spec("app.yaml", [ws.sync(reconcile={"maxDeletes": "100%"})])
    ws.set_secrets({f"K{i:04d}": f"value-{i}" for i in range(n)})
    # decoys outside the literal prefix must not even be listed (server-side name filter)
    for i in range(30):
        sm_client.create_secret(Name=f"zz-other/{i}", SecretString="x")
    assert ws.run("apply").code == 0
    calls.reset()
    r = ws.run("apply")
    assert r.code == 0, str(r)
    assert calls.by_call("aws-secrets-manager") == {"ListSecrets": 3}  # ceil(250/100), nothing else

    # losing state costs reads, never correctness: values are read in batches of 20
    import shutil

    shutil.rmtree(ws.state)
    calls.reset()
    assert ws.run("plan", "--detailed-exitcode").code == 0
    assert calls.by_call("aws-secrets-manager") == {"ListSecrets": 3, "BatchGetSecretValue": 13}


def test_status_after_failure_names_the_cause(ws: Workspace, sm_client: Any) -> None:
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": C1})
    ws.secrets_file.unlink()
    r = ws.run("apply")
    assert r.code == 1
    st = json.loads(ws.run("status", "--json").out)["syncs"][0]
    assert st["syncStatus"] == "failed"
    assert "secrets.yaml" in st["lastSyncMessage"]


def test_one_broken_spec_does_not_stop_the_others(ws: Workspace, sm_client: Any) -> None:
    ws.write_spec("app.yaml", [ws.sync()])
    (ws.specs / "broken.yaml").write_text("kind: SecretSync\nname: broken\nsyncOptions: [\n")
    ws.set_secrets({"A": C1})
    r = ws.run("apply")
    assert r.code == 1, "the broken spec makes the run fail"
    assert "broken.yaml:" in r.err
    assert _value(sm_client, "app/A") == C1, "the valid sync was still applied"


def test_json_plan_shape(ws: Workspace) -> None:
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": C1})
    plan = _plan(ws)
    assert plan["format_version"] == "1"
    s = plan["syncs"][0]
    assert {"name", "destination", "error", "changes", "summary"} <= set(s)
    assert s["summary"] == {**s["summary"], "create": 1, "update": 0, "delete": 0, "unchanged": 0}
    assert s["changes"][0]["action"] == "create" and s["changes"][0]["key"] == "app/A"
    assert "reason" in s["changes"][0]


def test_whole_session_leaks_nothing(ws: Workspace, sm_client: Any) -> None:
    ws.write_spec("app.yaml", [ws.sync(reconcile={"maxDeletes": "100%"})])
    ws.set_secrets({"A": C1, "B": C2, "C": C3})
    for args in (("plan",), ("plan", "--json"), ("apply", "--log-format", "json", "--log-level", "debug"),
                 ("status",), ("status", "--json")):
        ws.run(*args)
    sm_client.put_secret_value(SecretId="app/A", SecretString=C3)
    ws.set_secrets({"A": C2})
    for args in (("plan",), ("apply", "--log-level", "debug"), ("status",)):
        ws.run(*args)
    assert ws.leaks() == []


def test_schema_change_leaves_old_keys_and_says_so(ws: Workspace, sm_client: Any) -> None:
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": C1})
    assert ws.run("apply").code == 0
    ws.write_spec("app.yaml", [ws.sync(syncOptions={"keySchema": "svc/{{secretKey}}"})])
    plan = _plan(ws)
    assert _actions(plan) == {"svc/A": "create"}
    issues = plan["syncs"][0]["issues"]
    assert any("app/A" in i["message"] and i["severity"] == "warning" for i in issues), issues
    assert ws.run("apply").code == 0
    assert {"app/A", "svc/A"} <= _names(sm_client)


def test_noop_apply_is_quiet(ws: Workspace, sm_client: Any) -> None:
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": C1})
    assert ws.run("apply").code == 0
    r = ws.run("apply")
    assert r.code == 0
    assert r.err == ""
    assert "app: no changes" in r.out
