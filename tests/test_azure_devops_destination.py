"""The Azure DevOps session against the emulator, opened through the catalog: listing, the
one write per apply, shared groups, vault-linked groups, and failures reported per change."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.changes import Action, Change, ChangeResult
from reconciler.destinations import errors
from reconciler.destinations.contract import ConnectionInfo
from reconciler.model import SecretValue
from tests.emulators.azure_devops import AzureDevOpsEmulator, Fault
from tests.fixtures_azure_devops import ADO_OTHER_PROJECT_ID, ADO_PAT, ADO_PROJECT_ID, ado_add, ado_agent
from tests.support.dest import Dest, view

GROUPS = r"/emulator-org/_apis/distributedtask/variablegroups(/\d+)?"


def _dest(emu: AzureDevOpsEmulator, **config: Any) -> Dest:
    conn = ConnectionInfo("ado", "azure-devops", settings={"organizationUrl": emu.org_url}, method="pat",
                          credentials={"token": SecretValue(ADO_PAT)})
    v = view(environment="dev", config={"devopsProjectId": ADO_PROJECT_ID, **config},
             settings={"organizationUrl": emu.org_url})
    return Dest("azure-devops", v, conn)


def _apply(d: Dest, *changes: Change) -> list[ChangeResult]:
    out: list[ChangeResult] = []
    d.apply(list(changes), out.append)
    return out


def _set(key: str, value: str, action: Action = Action.UPDATE) -> Change:
    return Change(action, key, value=SecretValue(value), fingerprint="f")


def test_listing_marks_who_wrote_and_plain_variables(azure_devops: AzureDevOpsEmulator) -> None:
    ado_add(azure_devops, "dev", {"S": "1"}, {"P": "x"})
    azure_devops.clear()
    d = _dest(azure_devops)
    listed = {e.key: e.version for e in d.session.list(d.scope())}
    assert listed["S"].startswith("by:") and listed["P"].startswith("plain:")
    assert d.read_values(["S", "P"]) == {}
    assert azure_devops.count() == 1


def test_one_write_for_many_changes_and_every_change_reported(azure_devops: AzureDevOpsEmulator) -> None:
    ado_add(azure_devops, "dev", {"OLD": "1", "KEEP": "k"})
    d = _dest(azure_devops)
    d.session.list(d.scope())
    azure_devops.clear()
    results = _apply(d, _set("A", "a", Action.CREATE), _set("KEEP2", "b", Action.CREATE),
                     Change(Action.DELETE, "OLD"))
    assert azure_devops.count("PUT", GROUPS) == 1 and azure_devops.count() == 2, "read afresh, then one write"
    assert [r.ok for r in results] == [True, True, True]
    assert results[0].version == results[1].version and results[0].version.startswith("by:")  # type: ignore[union-attr]
    assert results[2].version is None
    g = azure_devops.org.group_named(ADO_PROJECT_ID, "dev")
    assert g is not None and set(g.variables) == {"KEEP", "A", "KEEP2"}
    assert azure_devops.org.secret_value(g.id, "KEEP") == "k"


def test_a_failed_write_fails_every_change_with_the_wait(azure_devops: AzureDevOpsEmulator) -> None:
    ado_add(azure_devops, "dev", {"A": "1"})
    d = _dest(azure_devops)
    d.session.list(d.scope())
    azure_devops.inject(Fault("PUT", GROUPS, status=429, headers={"Retry-After": "900"}))
    results = _apply(d, _set("A", "2"), _set("B", "3", Action.CREATE))
    assert [r.ok for r in results] == [False, False]
    assert all(r.retry_after == 900 and "Azure DevOps asks to wait 900s" in (r.error or "") for r in results)


def test_a_shared_group_stays_shared_and_an_emptied_one_goes_everywhere(azure_devops: AzureDevOpsEmulator) -> None:
    from azure.devops.v7_1.task_agent.models import (
        ProjectReference,
        VariableGroupParameters,
        VariableGroupProjectReference,
        VariableValue,
    )

    g = ado_add(azure_devops, "dev", {"A": "1"})
    refs = [VariableGroupProjectReference(name="dev", project_reference=ProjectReference(id=p))
            for p in (ADO_PROJECT_ID, ADO_OTHER_PROJECT_ID)]
    ado_agent(azure_devops).update_variable_group(VariableGroupParameters(
        name="dev", type="Vsts", variables={"A": VariableValue(is_secret=True)},
        variable_group_project_references=refs), g.id)
    d = _dest(azure_devops)
    d.session.list(d.scope())
    assert all(r.ok for r in _apply(d, _set("A", "2")))
    assert azure_devops.org.groups[g.id].project_ids == [ADO_PROJECT_ID, ADO_OTHER_PROJECT_ID]
    assert all(r.ok for r in _apply(d, Change(Action.DELETE, "A")))
    assert azure_devops.org.groups == {}


def test_a_vault_linked_group_is_refused(azure_devops: AzureDevOpsEmulator) -> None:
    azure_devops.org.add_group({"name": "dev", "type": "AzureKeyVault", "variables": {"kv-secret": {}},
                                "variableGroupProjectReferences": [{"projectReference": {"id": ADO_PROJECT_ID}}]},
                               next(iter(azure_devops.pats.values())))
    d = _dest(azure_devops)
    with pytest.raises(errors.Permanent) as exc:
        d.session.list(d.scope())
    assert "AzureKeyVault" in str(exc.value)


def test_a_missing_group_with_only_deletes_writes_nothing(azure_devops: AzureDevOpsEmulator) -> None:
    azure_devops.clear()
    d = _dest(azure_devops, variableGroupName="elsewhere")
    assert d.session.list(d.scope()) == []
    assert [r.ok for r in _apply(d, Change(Action.DELETE, "A"))] == [True]
    assert azure_devops.count() == azure_devops.count("GET") == 2, "listed, read again, nothing written"


def test_a_bad_organization_url_or_project_id_is_a_config_error(azure_devops: AzureDevOpsEmulator) -> None:
    with pytest.raises(errors.ConfigError):
        _dest(azure_devops, devopsProjectId="Payments")
    conn = ConnectionInfo("ado", "azure-devops", settings={"organizationUrl": "ftp://x"}, method="pat",
                          credentials={"token": SecretValue(ADO_PAT)})
    with pytest.raises(errors.ConfigError):
        Dest("azure-devops", view(config={"devopsProjectId": ADO_PROJECT_ID}), conn)


def test_two_syncs_writing_one_group_at_once_lose_nothing(azure_devops: AzureDevOpsEmulator) -> None:
    """The daemon runs syncs in parallel; two on one group (disjoint scopes) must not undo
    each other with full-replace PUTs built from the same read."""
    import threading

    ado_add(azure_devops, "dev", {"FOREIGN": "f"})
    a, b = _dest(azure_devops), _dest(azure_devops)
    a.session.list(a.scope())
    b.session.list(b.scope())
    azure_devops.inject(Fault("GET", delay=0.2, times=2))  # both reads before either write, unless serialised
    threads = [threading.Thread(target=_apply, args=(d, _set(k, v, Action.CREATE)))
               for d, k, v in ((a, "A_ONE", "1"), (b, "B_ONE", "2"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    g = azure_devops.org.group_named(ADO_PROJECT_ID, "dev")
    assert g is not None and set(g.variables) == {"FOREIGN", "A_ONE", "B_ONE"}


def test_a_pending_only_ask_costs_nothing(azure_devops: AzureDevOpsEmulator) -> None:
    from reconciler.destinations.naming import Scope

    azure_devops.clear()
    d = _dest(azure_devops)
    assert d.session.list(Scope(exact=frozenset({"A"}), wanted=frozenset({"A"}), pending_only=True)) == []
    assert azure_devops.count() == 0
