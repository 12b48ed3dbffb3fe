"""End to end through the CLI against the Azure DevOps emulator, as a user would drive it:
one variable group per sync, merged (never clobbered) with one PUT per apply, write-only
values judged by who last wrote the group, out-of-band edits made as another identity with
Microsoft's own client."""

from __future__ import annotations

import json
import shutil
from typing import Any

from reconciler import calls
from tests.emulators.azure_devops import AzureDevOpsEmulator, Fault
from tests.fixtures_azure_devops import (
    ADO_OTHER_PROJECT_ID,
    ADO_PROJECT_ID,
    AzureDevOpsWorkspace,
    ado_add,
    ado_edit,
)
from tests.support.canary import CANARIES
from tests.support.cli import plan_json as _plan
from tests.support.cli import steps

C1, C2, C3 = CANARIES
KIND = "azure-devops"
GROUPS = r"/emulator-org/_apis/distributedtask/variablegroups(/\d+)?"



def _steps(plan: dict[str, Any], sync: str = "app") -> list[tuple[str, str]]:
    return sorted(steps(plan, sync))


def _group(emu: AzureDevOpsEmulator, name: str = "dev", project: str = ADO_PROJECT_ID) -> Any:
    g = emu.org.group_named(project, name)
    assert g is not None, f"no group {name}"
    return g


def _value(emu: AzureDevOpsEmulator, key: str, group: str = "dev") -> str | None:
    return emu.org.secret_value(_group(emu, group).id, key)


def _writes(emu: AzureDevOpsEmulator) -> dict[str, int]:
    return {m: emu.count(m, GROUPS) for m in ("POST", "PUT", "DELETE") if emu.count(m, GROUPS)}


def test_merge_into_an_existing_group_with_one_put_then_noop(ado_ws: AzureDevOpsWorkspace) -> None:
    emu = ado_ws.emu
    ado_add(emu, "dev", {"OTHER_TOKEN": "theirs-1"}, {"LOG_LEVEL": "info"})
    ado_add(emu, "shared", {"APP_A": "not-ours"})
    shared_version = _group(emu, "shared").modified_on
    ado_ws.write_spec("app.yaml", [ado_ws.sync()])
    ado_ws.set_secrets({"A": C1, "B": C2, "C": C3})

    r = ado_ws.run("plan", "--detailed-exitcode")
    assert r.code == 2, str(r)
    assert all(f"+ APP_{k}" in r.out for k in "ABC"), r.out
    assert "OTHER_TOKEN" not in r.out and "LOG_LEVEL" not in r.out

    emu.clear()
    r = ado_ws.run("apply")
    assert r.code == 0, str(r)
    assert _writes(emu) == {"PUT": 1}, "three keys, one write"
    g = _group(emu)
    assert {k: v.is_secret for k, v in g.variables.items()} == {
        "OTHER_TOKEN": True, "LOG_LEVEL": False, "APP_A": True, "APP_B": True, "APP_C": True}
    assert [_value(emu, k) for k in ("APP_A", "APP_B", "APP_C")] == [C1, C2, C3]
    assert _value(emu, "OTHER_TOKEN") == "theirs-1" and _value(emu, "LOG_LEVEL") == "info", "foreign: untouched"
    untouched = _group(emu, "shared")
    assert untouched.modified_on == shared_version and emu.org.secret_value(untouched.id, "APP_A") == "not-ours"

    emu.clear()
    r = ado_ws.run("plan", "--detailed-exitcode")
    assert r.code == 0, str(r)
    assert "No changes" in r.out
    assert ado_ws.leaks() == []


def test_a_missing_group_is_created_with_its_project_reference(ado_ws: AzureDevOpsWorkspace) -> None:
    emu = ado_ws.emu
    ado_ws.write_spec("app.yaml", [ado_ws.sync(destinationConfig={"variableGroupName": "payments-secrets"})])
    ado_ws.set_secrets({"A": C1})
    r = ado_ws.run("apply")
    assert r.code == 0, str(r)
    assert _writes(emu) == {"POST": 1}
    g = _group(emu, "payments-secrets")
    assert g.project_ids == [ADO_PROJECT_ID] and g.modified_by.display_name == "reconciler"
    assert emu.org.secret_value(g.id, "APP_A") == C1
    assert emu.org.group_named(ADO_PROJECT_ID, "dev") is None, "named by variableGroupName, not the environment"
    assert ado_ws.run("plan", "--detailed-exitcode").code == 0


def test_noop_costs_one_read_and_no_write(ado_ws: AzureDevOpsWorkspace) -> None:
    emu = ado_ws.emu
    n = 200
    ado_ws.write_spec("app.yaml", [ado_ws.sync()])
    ado_ws.set_secrets({f"K_{i:03d}": f"value-{i}" for i in range(n)})
    assert ado_ws.run("apply").code == 0
    emu.clear()
    calls.reset()
    r = ado_ws.run("apply")
    assert r.code == 0, str(r)
    assert calls.by_call(KIND) == {"list-groups": 1}, calls.snapshot()
    assert emu.count() == emu.count("GET") == 1, "the emulator agrees: one authorised request"

    # losing state costs one rewrite (values cannot be compared), never correctness
    shutil.rmtree(ado_ws.state)
    plan = _plan(ado_ws)
    assert len(_steps(plan)) == n and all(a == "update" for a, _ in _steps(plan))
    emu.clear()
    assert ado_ws.run("apply").code == 0
    assert _writes(emu) == {"PUT": 1}
    assert ado_ws.run("plan", "--detailed-exitcode").code == 0


def test_a_partial_change_is_one_put_and_the_next_plan_is_empty(ado_ws: AzureDevOpsWorkspace) -> None:
    emu = ado_ws.emu
    ado_ws.write_spec("app.yaml", [ado_ws.sync()])
    ado_ws.set_secrets({"A": C1, "B": C2, "C": "c"})
    assert ado_ws.run("apply").code == 0
    ado_ws.set_secrets({"A": C1, "B": C3, "D": "d"})
    assert _steps(_plan(ado_ws)) == [("create", "APP_D"), ("delete", "APP_C"), ("update", "APP_B")]
    emu.clear()
    assert ado_ws.run("apply").code == 0
    assert _writes(emu) == {"PUT": 1}
    assert set(_group(emu).variables) == {"APP_A", "APP_B", "APP_D"}
    assert [_value(emu, k) for k in ("APP_A", "APP_B", "APP_D")] == [C1, C3, "d"], "kept A resent without value"
    assert ado_ws.run("plan", "--detailed-exitcode").code == 0, "untouched keys stay vouched for"
    assert ado_ws.leaks() == []


def test_an_edit_by_someone_else_is_rewritten_once(ado_ws: AzureDevOpsWorkspace) -> None:
    emu = ado_ws.emu
    ado_add(emu, "dev", {}, {"LOG_LEVEL": "info"})
    ado_ws.write_spec("app.yaml", [ado_ws.sync()])
    ado_ws.set_secrets({"A": C1, "B": C2})
    assert ado_ws.run("apply").code == 0
    ado_edit(emu, "dev", set_secret={"APP_A": "edited-in-the-ui"}, set_plain={"LOG_LEVEL": "debug"})

    calls.reset()
    plan = _plan(ado_ws, "--detailed-exitcode")
    assert calls.by_call(KIND) == {"list-groups": 1}, "nothing to read: values are write-only"
    assert _steps(plan) == [("update", "APP_A"), ("update", "APP_B")]
    assert all(c["reason"] == "values cannot be compared: the group changed outside reconciler"
               for c in plan["syncs"][0]["changes"])
    emu.clear()
    assert ado_ws.run("apply").code == 0
    assert _writes(emu) == {"PUT": 1}
    assert _value(emu, "APP_A") == C1 and _value(emu, "APP_B") == C2
    assert _value(emu, "LOG_LEVEL") == "debug", "their edit of their variable stays"
    assert ado_ws.run("plan", "--detailed-exitcode").code == 0
    assert ado_ws.leaks() == []


def test_removed_added_or_made_plain_out_of_band(ado_ws: AzureDevOpsWorkspace) -> None:
    emu = ado_ws.emu
    ado_ws.write_spec("app.yaml", [ado_ws.sync()])
    ado_ws.set_secrets({"A": C1, "B": C2})
    assert ado_ws.run("apply").code == 0
    ado_edit(emu, "dev", remove=("APP_B",), set_plain={"APP_A": "now-visible", "APP_STRAY": "x"})
    assert _steps(_plan(ado_ws)) == [("create", "APP_B"), ("delete", "APP_STRAY"), ("update", "APP_A")]
    assert ado_ws.run("apply").code == 0
    g = _group(emu)
    assert {k: v.is_secret for k, v in g.variables.items()} == {"APP_A": True, "APP_B": True}
    assert _value(emu, "APP_A") == C1 and _value(emu, "APP_B") == C2
    assert ado_ws.run("plan", "--detailed-exitcode").code == 0


def test_disable_secret_deletion_is_honoured(ado_ws: AzureDevOpsWorkspace) -> None:
    """Upstream drops variables whatever the option says (its issue #7609)."""
    emu = ado_ws.emu
    ado_ws.write_spec("app.yaml", [ado_ws.sync(syncOptions={"disableSecretDeletion": True})])
    ado_ws.set_secrets({"A": C1, "B": C2})
    assert ado_ws.run("apply").code == 0
    ado_ws.set_secrets({"A": C3})
    assert _steps(_plan(ado_ws)) == [("update", "APP_A")]
    assert ado_ws.run("apply").code == 0
    assert _value(emu, "APP_B") == C2 and _value(emu, "APP_A") == C3


def test_two_environments_on_one_project_are_two_groups(ado_ws: AzureDevOpsWorkspace) -> None:
    emu = ado_ws.emu
    ado_ws.write_spec("app.yaml", [ado_ws.sync("app-dev"), ado_ws.sync("app-prod", environment="prod")])
    ado_ws.set_secrets({"A": C1})
    ado_ws.set_secrets({"A": C2}, environment="prod")
    r = ado_ws.run("validate")
    assert r.code == 0, str(r)
    assert ado_ws.run("apply").code == 0
    assert _value(emu, "APP_A", "dev") == C1 and _value(emu, "APP_A", "prod") == C2
    assert ado_ws.run("plan", "--detailed-exitcode").code == 0

    ado_ws.write_spec("app.yaml", [ado_ws.sync("app-dev"), ado_ws.sync(
        "app-prod", environment="prod", destinationConfig={"variableGroupName": "DEV"})])
    r = ado_ws.run("validate")
    assert r.code == 1 and "overlaps" in r.out + r.err, str(r)


def test_one_group_name_in_two_projects_does_not_overlap(ado_ws: AzureDevOpsWorkspace) -> None:
    ado_ws.write_spec("app.yaml", [ado_ws.sync("a"), ado_ws.sync(
        "b", destinationConfig={"devopsProjectId": ADO_OTHER_PROJECT_ID, "devopsProjectName": "Platform"})])
    r = ado_ws.run("validate")
    assert r.code == 0, str(r)


def test_import_is_refused_at_validation(ado_ws: AzureDevOpsWorkspace) -> None:
    ado_ws.write_spec("app.yaml", [ado_ws.sync(syncOptions={"initialSyncBehavior": "import-prioritize-source"})])
    r = ado_ws.run("validate")
    assert r.code == 1 and "initialSyncBehavior" in r.out + r.err, str(r)


def test_reconciler_import_is_refused_and_deletes_nothing(ado_ws: AzureDevOpsWorkspace) -> None:
    """Before: `reconciler import` imported nothing, then synced and deleted what the user
    meant to import."""
    emu = ado_ws.emu
    ado_add(emu, "dev", {"APP_THEIRS": "keep-me"}, {})
    ado_ws.write_spec("app.yaml", [ado_ws.sync()])
    ado_ws.set_secrets({"A": C1})
    emu.clear()
    r = ado_ws.run("import", "app")
    assert r.code == 1 and "Azure DevOps cannot import" in r.out, str(r)
    assert _writes(emu) == {} and "APP_THEIRS" in _group(emu).variables


def test_a_project_name_where_the_id_belongs_is_a_spec_error(ado_ws: AzureDevOpsWorkspace) -> None:
    ado_ws.write_spec("app.yaml", [ado_ws.sync(destinationConfig={"devopsProjectId": "Payments"})])
    r = ado_ws.run("validate")
    assert r.code == 1 and "devopsProjectId must be the project's ID" in r.out + r.err, str(r)


def test_remove_keeps_foreign_variables_then_deletes_an_emptied_group(ado_ws: AzureDevOpsWorkspace) -> None:
    emu = ado_ws.emu
    ado_add(emu, "dev", {"OTHER_TOKEN": "theirs"})
    ado_ws.write_spec("app.yaml", [ado_ws.sync(), ado_ws.sync("solo", environment="prod")])
    ado_ws.set_secrets({"A": C1, "B": C2})
    ado_ws.set_secrets({"A": C3}, environment="prod")
    assert ado_ws.run("apply").code == 0

    emu.clear()
    r = ado_ws.run("remove", "app", "--yes")
    assert r.code == 0, str(r)
    assert _writes(emu) == {"PUT": 1}
    assert set(_group(emu).variables) == {"OTHER_TOKEN"} and _value(emu, "OTHER_TOKEN") == "theirs"

    emu.clear()
    r = ado_ws.run("remove", "solo", "--yes")
    assert r.code == 0, str(r)
    assert _writes(emu) == {"DELETE": 1}, "nothing else was in it, and a group cannot be empty"
    assert emu.org.group_named(ADO_PROJECT_ID, "prod") is None
    assert ado_ws.leaks() == []


def test_an_empty_value_cannot_be_stored_over_a_secret(ado_ws: AzureDevOpsWorkspace) -> None:
    ado_ws.write_spec("app.yaml", [ado_ws.sync()])
    ado_ws.set_secrets({"A": C1, "EMPTY": ""})
    plan = _plan(ado_ws)
    assert _steps(plan) == [("create", "APP_A")]
    assert "empty" in json.dumps(plan["syncs"][0]).lower()


def test_a_wrong_pat_is_one_clear_line(ado_ws: AzureDevOpsWorkspace, monkeypatch: Any) -> None:
    monkeypatch.setenv("RECONCILER_TEST_ADO_PAT", "not-the-token")
    ado_ws.write_spec("app.yaml", [ado_ws.sync()])
    ado_ws.set_secrets({"A": C1})
    r = ado_ws.run("apply")
    assert r.code == 1, str(r)
    lines = [ln for ln in r.out.splitlines() if "did not accept the credentials (HTTP 401)" in ln]
    assert len(lines) == 1 and "not-the-token" not in r.out + r.err, str(r)


def test_throttled_write_waits_and_lands_once(ado_ws: AzureDevOpsWorkspace) -> None:
    emu = ado_ws.emu
    ado_ws.write_spec("app.yaml", [ado_ws.sync()])
    ado_ws.set_secrets({"A": C1})
    assert ado_ws.run("apply").code == 0
    ado_ws.set_secrets({"A": C2})
    emu.clear()
    emu.inject(Fault("PUT", GROUPS, status=429, headers={"Retry-After": "0"}))
    r = ado_ws.run("apply")
    assert r.code == 0, str(r)
    assert emu.count("PUT", GROUPS) == 2 and _value(emu, "APP_A") == C2
    assert ado_ws.leaks() == []


def test_two_syncs_on_one_group_share_it(ado_ws: AzureDevOpsWorkspace) -> None:
    """Disjoint scopes on one group: one listing for both, each writes its own, neither undoes
    the other, and the next plan of both is empty."""
    emu = ado_ws.emu
    ado_ws.write_spec("app.yaml", [ado_ws.sync("api"), ado_ws.sync(
        "web", secretPath="/web", syncOptions={"keySchema": "WEB_{{secretKey}}"})])
    ado_ws.set_secrets({"A": C1})
    ado_ws.set_secrets({"A": C2}, path="/web")
    assert ado_ws.run("validate").code == 0
    assert ado_ws.run("apply").code == 0
    assert _value(emu, "APP_A") == C1 and _value(emu, "WEB_A") == C2
    emu.clear()
    calls.reset()
    r = ado_ws.run("plan", "--detailed-exitcode")
    assert r.code == 0, str(r)
    assert calls.by_call(KIND) == {"list-groups": 1}, "one listing for both syncs"
    ado_ws.set_secrets({"A": C3}, path="/web")
    assert ado_ws.run("apply").code == 0
    assert _value(emu, "APP_A") == C1 and _value(emu, "WEB_A") == C3
    assert ado_ws.run("plan", "--detailed-exitcode").code == 0
    assert ado_ws.leaks() == []


def test_an_entra_application_instead_of_a_pat(ado_ws: AzureDevOpsWorkspace, azure_idp_server: Any,
                                              azure_ca_file: Any, monkeypatch: Any) -> None:
    from tests.emulators.azure_devops import SERVICE_PRINCIPAL
    from tests.emulators.azure_keyvault import DEFAULT_TENANT
    from tests.fixtures_azure import AZ_CLIENT_ID, AZ_CLIENT_SECRET, AZ_SECRET_ENV
    from tests.fixtures_azure_devops import ado_connection_doc

    emu = ado_ws.emu
    emu.token_check = azure_idp_server.issued
    monkeypatch.setenv(AZ_SECRET_ENV, AZ_CLIENT_SECRET)
    ado_ws.write_spec("connections.yaml", [
        {"kind": "Connection", "name": "local", "app": "file", "path": "../secrets.yaml"},
        ado_connection_doc(emu, authorityHost=azure_idp_server.url, caBundle=str(azure_ca_file),
                           credentials={"method": "client-secret", "tenantId": DEFAULT_TENANT,
                                        "clientId": AZ_CLIENT_ID, "clientSecret": {"env": AZ_SECRET_ENV}}),
    ])
    ado_ws.write_spec("app.yaml", [ado_ws.sync()])
    ado_ws.set_secrets({"A": C1})
    r = ado_ws.run("apply")
    assert r.code == 0, str(r)
    assert _group(emu).modified_by.id == SERVICE_PRINCIPAL.id and _value(emu, "APP_A") == C1
    assert ado_ws.run("plan", "--detailed-exitcode").code == 0
    assert ado_ws.leaks() == [] and AZ_CLIENT_SECRET not in "".join(ado_ws.outputs)
