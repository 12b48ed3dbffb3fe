"""The Azure DevOps emulator, proven with Microsoft's own client: every behaviour the
destination relies on is driven here through the ``azure-devops`` SDK (Connection, the
core client's projects, the task-agent client's variable groups), location discovery and
error shapes included. The last few tests use raw HTTP only for what the SDK cannot send
(api-version in the query, a request without the FedAuth header).
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.emulators.azure_devops import SERVICE_PRINCIPAL, AzureDevOpsEmulator, Fault
from tests.fixtures_azure_devops import (
    ADO_OTHER_PAT,
    ADO_OTHER_PROJECT_ID,
    ADO_PAT,
    ADO_PROJECT,
    ADO_PROJECT_ID,
)

GROUPS = r"/emulator-org/_apis/distributedtask/variablegroups(/\d+)?"


def _connection(emu: AzureDevOpsEmulator, pat: str = ADO_PAT, creds: Any = None) -> Any:
    from azure.devops.connection import Connection
    from msrest.authentication import BasicAuthentication

    return Connection(base_url=emu.org_url, creds=creds or BasicAuthentication("", pat))


def _agent(emu: AzureDevOpsEmulator, pat: str = ADO_PAT, retries: int = 0, creds: Any = None) -> Any:
    client = _connection(emu, pat, creds).clients_v7_1.get_task_agent_client()
    client.config.retry_policy.retries = retries
    return client


def _params(name: str, variables: dict[str, tuple[str | None, bool]], project_id: str = ADO_PROJECT_ID,
            extra_projects: tuple[str, ...] = ()) -> Any:
    from azure.devops.v7_1.task_agent.models import (
        ProjectReference,
        VariableGroupParameters,
        VariableGroupProjectReference,
        VariableValue,
    )

    refs = [VariableGroupProjectReference(name=name, project_reference=ProjectReference(id=pid))
            for pid in (project_id, *extra_projects)]
    return VariableGroupParameters(
        name=name, type="Vsts", description="d", variable_group_project_references=refs,
        variables={k: VariableValue(value=v, is_secret=s or None) for k, (v, s) in variables.items()})


def _error(exc: BaseException) -> Any:
    from azure.devops.exceptions import AzureDevOpsServiceError

    assert isinstance(exc, AzureDevOpsServiceError), repr(exc)
    return exc


# -- discovery, auth, projects -----------------------------------------------------------------
def test_location_discovery_then_version_in_the_accept_header(azure_devops: AzureDevOpsEmulator) -> None:
    azure_devops.org.name = f"fresh-{uuid.uuid4().hex[:8]}"  # a URL the SDK has never cached
    org = azure_devops.org.name
    core = _connection(azure_devops).clients_v7_1.get_core_client()
    projects = core.get_projects()
    assert {p.name for p in projects} == {"Payments", "Platform"}
    assert azure_devops.count("OPTIONS", rf"/{org}/_apis") == 1
    assert azure_devops.count("GET", rf"/{org}/_apis/ResourceAreas") == 1
    listing = [r for r in azure_devops.log if r.path == f"/{org}/_apis/projects"]
    assert len(listing) == 1 and "api-version" not in listing[0].query  # it came in the Accept header
    assert (Path(os.environ["AZURE_DEVOPS_CACHE_DIR"]) / "options.json").exists()
    _connection(azure_devops).clients_v7_1.get_core_client().get_projects()
    assert azure_devops.count("OPTIONS") == 1, "the second connection used the SDK's location cache"


def test_projects_by_id_and_by_name(azure_devops: AzureDevOpsEmulator) -> None:
    core = _connection(azure_devops).clients_v7_1.get_core_client()
    by_id = core.get_project(ADO_PROJECT_ID)
    by_name = core.get_project("payments")
    assert (by_id.id, by_id.name, by_id.state) == (ADO_PROJECT_ID, ADO_PROJECT, "wellFormed")
    assert by_name.id == ADO_PROJECT_ID
    with pytest.raises(Exception) as exc:
        core.get_project("NoSuchProject")
    err = _error(exc.value)
    assert err.type_key == "ProjectDoesNotExistWithNameException" and "TF200016" in err.message
    assert azure_devops.log[-1].status == 404


def test_a_wrong_pat_is_an_authentication_error(azure_devops: AzureDevOpsEmulator) -> None:
    from azure.devops.exceptions import AzureDevOpsAuthenticationError

    azure_devops.org.name = f"fresh-{uuid.uuid4().hex[:8]}"
    with pytest.raises(AzureDevOpsAuthenticationError):
        _agent(azure_devops, pat="not-a-token").get_variable_groups(ADO_PROJECT)
    assert azure_devops.log[-1].status == 401 and not azure_devops.log[-1].authorized
    assert azure_devops.count(authorized=True) == 0


def test_two_identities_and_a_bearer_token(azure_devops: AzureDevOpsEmulator) -> None:
    from msrest.authentication import BasicTokenAuthentication

    mine = _agent(azure_devops)
    group = mine.add_variable_group(_params("prod", {"A": ("1", True)}))
    assert group.created_by.display_name == group.modified_by.display_name == "reconciler"
    theirs = _agent(azure_devops, pat=ADO_OTHER_PAT)
    edited = theirs.update_variable_group(_params("prod", {"A": (None, True), "B": ("2", False)}), group.id)
    assert edited.modified_by.display_name == "A Colleague" and edited.created_by.display_name == "reconciler"
    assert edited.modified_on > group.modified_on
    azure_devops.token_check = lambda token: token == "entra-token"
    sp = _agent(azure_devops, creds=BasicTokenAuthentication({"access_token": "entra-token"}))
    by_sp = sp.update_variable_group(_params("prod", {"A": (None, True)}), group.id)
    assert by_sp.modified_by.id == SERVICE_PRINCIPAL.id


# -- variable groups ---------------------------------------------------------------------------
def test_add_then_read_back_secrets_masked(azure_devops: AzureDevOpsEmulator) -> None:
    agent = _agent(azure_devops)
    added = agent.add_variable_group(_params("prod", {"DB_PASSWORD": ("s3cr3t", True), "LOG_LEVEL": ("info", False)}))
    assert added.id == 1 and added.name == "prod" and added.type == "Vsts" and added.is_shared is False
    assert added.variables["DB_PASSWORD"].value is None and added.variables["DB_PASSWORD"].is_secret
    assert added.variables["LOG_LEVEL"].value == "info" and not added.variables["LOG_LEVEL"].is_secret
    assert added.created_on == added.modified_on
    ref = added.variable_group_project_references[0]
    assert (ref.project_reference.id, ref.project_reference.name, ref.name) == (ADO_PROJECT_ID, ADO_PROJECT, "prod")
    got = agent.get_variable_group(ADO_PROJECT_ID, added.id)
    assert got.variables["DB_PASSWORD"].value is None and got.modified_on == added.modified_on
    assert azure_devops.org.secret_value(added.id, "DB_PASSWORD") == "s3cr3t"
    assert azure_devops.count("POST", GROUPS) == 1


def test_list_by_name_wildcard_order_and_continuation(azure_devops: AzureDevOpsEmulator) -> None:
    agent = _agent(azure_devops)
    for name in ("app-dev", "app-prod", "other", "App-Staging"):
        agent.add_variable_group(_params(name, {"X": ("1", False)}))
    agent.add_variable_group(_params("elsewhere", {"X": ("1", False)}, project_id=ADO_OTHER_PROJECT_ID))
    assert [g.name for g in agent.get_variable_groups(ADO_PROJECT, group_name="app-prod")] == ["app-prod"]
    assert [g.name for g in agent.get_variable_groups(ADO_PROJECT, group_name="APP-PROD")] == ["app-prod"]
    assert [g.id for g in agent.get_variable_groups(ADO_PROJECT, group_name="app*")] == [4, 2, 1]
    assert agent.get_variable_groups(ADO_PROJECT, group_name="nothing") == []
    assert [g.id for g in agent.get_variable_groups(ADO_PROJECT)] == [4, 3, 2, 1], "idDescending by default"
    assert [g.id for g in agent.get_variable_groups(ADO_PROJECT, top=2)] == [4, 3]
    assert [g.id for g in agent.get_variable_groups(ADO_PROJECT, top=2, continuation_token=2)] == [2, 1]
    assert [g.id for g in agent.get_variable_groups(ADO_PROJECT, query_order="IdAscending")] == [1, 2, 3, 4]
    assert [g.id for g in agent.get_variable_groups_by_id(ADO_PROJECT, [1, 5, 3])] == [3, 1]
    assert [g.name for g in agent.get_variable_groups(ADO_OTHER_PROJECT_ID)] == ["elsewhere"]


def test_get_an_unknown_group_is_200_null(azure_devops: AzureDevOpsEmulator) -> None:
    agent = _agent(azure_devops)
    assert agent.get_variable_group(ADO_PROJECT, 99) is None
    assert azure_devops.log[-1].status == 200
    other = agent.add_variable_group(_params("theirs", {"X": ("1", False)}, project_id=ADO_OTHER_PROJECT_ID))
    assert agent.get_variable_group(ADO_PROJECT, other.id) is None, "not in this project"
    azure_devops.org.unknown_get_404 = True  # Azure DevOps Server
    with pytest.raises(Exception) as exc:
        agent.get_variable_group(ADO_PROJECT, 99)
    assert _error(exc.value).type_key == "VariableGroupNotFoundException"


def test_add_refuses_a_duplicate_name_with_409(azure_devops: AzureDevOpsEmulator) -> None:
    agent = _agent(azure_devops)
    agent.add_variable_group(_params("prod", {"A": ("1", False)}))
    with pytest.raises(Exception) as exc:
        agent.add_variable_group(_params("PROD", {"B": ("2", False)}))
    err = _error(exc.value)
    assert err.type_key == "VariableGroupExistsException" and err.message == "Variable group 'PROD' already exists."
    assert "DistributedTask" in err.type_name and azure_devops.log[-1].status == 409
    agent.add_variable_group(_params("prod", {"A": ("1", False)}, project_id=ADO_OTHER_PROJECT_ID))  # other project


@pytest.mark.parametrize(("variables", "refs", "message"), [
    ({}, True, "Variable group must have at least one variable defined."),
    ({"A": ("1", False)}, False, "Atleast one variable group project reference is required."),
])
def test_add_refuses_no_variables_or_no_project_reference(azure_devops: AzureDevOpsEmulator, variables: Any,
                                                           refs: bool, message: str) -> None:
    body = _params("bad", variables)
    if not refs:
        body.variable_group_project_references = None
    with pytest.raises(Exception) as exc:
        _agent(azure_devops).add_variable_group(body)
    assert _error(exc.value).message == message and azure_devops.log[-1].status == 400
    assert azure_devops.org.groups == {}


def test_update_replaces_everything_but_keeps_secrets_sent_without_a_value(azure_devops: AzureDevOpsEmulator) -> None:
    agent = _agent(azure_devops)
    g = agent.add_variable_group(_params("prod", {"KEEP": ("k", True), "EMPTY": ("e", True), "NEW": ("old", True),
                                                  "DEMOTE": ("d", True), "DROP": ("x", True), "PLAIN": ("p", False)}))
    updated = agent.update_variable_group(_params("prod", {
        "KEEP": (None, True),      # no value key: the stored secret stays
        "EMPTY": ("", True),       # an empty value is ignored too
        "NEW": ("fresh", True),    # a value replaces it
        "DEMOTE": (None, False),   # made non-secret without a value: emptied
        "PLAIN": ("p2", False),
        "ADDED": ("a", True),
    }), g.id)
    org = azure_devops.org
    assert set(updated.variables) == {"KEEP", "EMPTY", "NEW", "DEMOTE", "PLAIN", "ADDED"}, "DROP is gone"
    assert [org.secret_value(g.id, k) for k in ("KEEP", "EMPTY", "NEW", "DEMOTE", "PLAIN", "ADDED")] == \
        ["k", "e", "fresh", "", "p2", "a"]
    assert updated.variables["DEMOTE"].value == "" and updated.variables["PLAIN"].value == "p2"
    assert updated.modified_on > g.modified_on and updated.created_on == g.created_on
    assert azure_devops.count("PUT", GROUPS) == 1


def test_update_errors(azure_devops: AzureDevOpsEmulator) -> None:
    agent = _agent(azure_devops)
    with pytest.raises(Exception) as exc:
        agent.update_variable_group(_params("ghost", {"A": ("1", False)}), 42)
    assert _error(exc.value).type_key == "VariableGroupNotFoundException" and azure_devops.log[-1].status == 404
    g = agent.add_variable_group(_params("prod", {"A": ("1", False)}))
    agent.add_variable_group(_params("dev", {"A": ("1", False)}))
    with pytest.raises(Exception) as exc:
        agent.update_variable_group(_params("prod", {}), g.id)
    assert _error(exc.value).message == "Variable group must have at least one variable defined."
    with pytest.raises(Exception) as exc:
        agent.update_variable_group(_params("Dev", {"A": ("1", False)}), g.id)
    assert _error(exc.value).type_key == "VariableGroupExistsException"


def test_delete_per_project_then_gone(azure_devops: AzureDevOpsEmulator) -> None:
    agent = _agent(azure_devops)
    shared = agent.add_variable_group(_params("shared", {"A": ("1", True)}, extra_projects=(ADO_OTHER_PROJECT_ID,)))
    assert shared.is_shared
    agent.delete_variable_group(shared.id, [ADO_OTHER_PROJECT_ID])
    assert azure_devops.log[-1].status == 204
    assert agent.get_variable_group(ADO_OTHER_PROJECT_ID, shared.id) is None
    assert agent.get_variable_group(ADO_PROJECT_ID, shared.id).is_shared is False
    agent.delete_variable_group(shared.id, [ADO_PROJECT_ID])
    assert azure_devops.org.groups == {}
    with pytest.raises(Exception) as exc:
        agent.delete_variable_group(shared.id, [ADO_PROJECT_ID])
    assert _error(exc.value).type_key == "VariableGroupNotFoundException"
    with pytest.raises(Exception) as exc:
        agent.delete_variable_group(1, ["Payments"])
    assert azure_devops.log[-1].status == 400 and "not a valid Guid" in _error(exc.value).message


# -- faults ------------------------------------------------------------------------------------
def test_throttled_write_changes_nothing(azure_devops: AzureDevOpsEmulator) -> None:
    agent = _agent(azure_devops)
    g = agent.add_variable_group(_params("prod", {"A": ("1", True)}))
    azure_devops.inject(Fault("PUT", GROUPS, status=429, headers={"Retry-After": "7"}))
    with pytest.raises(Exception) as exc:
        agent.update_variable_group(_params("prod", {"A": ("2", True)}), g.id)
    assert "TF400733" in _error(exc.value).message
    assert azure_devops.org.secret_value(g.id, "A") == "1"


def test_the_sdk_retries_a_503_and_a_lost_answer_still_landed(azure_devops: AzureDevOpsEmulator) -> None:
    agent = _agent(azure_devops, retries=2)
    g = agent.add_variable_group(_params("prod", {"A": ("1", True)}))
    read = r"/emulator-org/[^/]+/_apis/distributedtask/variablegroups/\d+"
    azure_devops.inject(Fault("GET", read, status=503, headers={"Retry-After": "0"}))
    assert agent.get_variable_group(ADO_PROJECT, g.id).id == g.id  # msrest retries idempotent reads only
    assert azure_devops.count("GET", read) == 2 and azure_devops.log[-2].status == 503
    agent = _agent(azure_devops, retries=0)
    azure_devops.inject(Fault("PUT", GROUPS, drop="after"))
    with pytest.raises(Exception):
        agent.update_variable_group(_params("prod", {"A": ("2", True)}), g.id)
    assert azure_devops.org.secret_value(g.id, "A") == "2", "the write landed; its answer was lost"


# -- what the SDK cannot send ------------------------------------------------------------------
def _raw(emu: AzureDevOpsEmulator, method: str, path: str, headers: dict[str, str]) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=5)
    conn.request(method, path, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, json.loads(data) if data and resp.getheader("Content-Type", "").startswith(
        "application/json") else data


def _basic(pat: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f":{pat}".encode()).decode()


def test_api_version_from_the_query_and_its_absence(azure_devops: AzureDevOpsEmulator) -> None:
    path = f"/emulator-org/{ADO_PROJECT_ID}/_apis/distributedtask/variablegroups"
    auth = {"Authorization": _basic(ADO_PAT)}
    assert _raw(azure_devops, "GET", path + "?api-version=7.1", auth) == (200, {"count": 0, "value": []})
    status, body = _raw(azure_devops, "GET", path, auth)
    assert status == 400 and body["typeKey"] == "VssVersionNotSpecifiedException"
    status, body = _raw(azure_devops, "GET", path + "?api-version=7.2", auth)
    assert status == 400 and body["typeKey"] == "VssInvalidPreviewVersionException"
    assert _raw(azure_devops, "GET", path + "?api-version=7.2-preview.2", auth)[0] == 200


def test_bad_credentials_without_the_fedauth_header_get_a_203_sign_in_page(azure_devops: AzureDevOpsEmulator) -> None:
    path = "/emulator-org/_apis/projects?api-version=7.1"
    status, body = _raw(azure_devops, "GET", path, {"Authorization": _basic("wrong")})
    assert status == 203 and b"Sign In" in body
    status, _ = _raw(azure_devops, "GET", path, {"Authorization": _basic("wrong"), "X-TFS-FedAuthRedirect": "Suppress"})
    assert status == 401


def test_main_serves_a_seeded_organization(tmp_path: Path) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text("organization: demo-org\nprojects: [{name: Demo}]\n"
                    "groups: [{project: Demo, name: shared, variables: {LOG_LEVEL: {value: info}}}]\n")
    env = {**os.environ, "DEMO_PAT": "demo-pat-value"}
    proc = subprocess.Popen([sys.executable, "-m", "tests.emulators.azure_devops", "--port", "0", "--seed", str(seed),
                             "--pat", "Demo User:DEMO_PAT"], stdout=subprocess.PIPE, text=True, env=env,
                            cwd=Path(__file__).resolve().parents[1])
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("azure devops organization on http://127.0.0.1:") and "Demo (" in line
        url = line.split()[4].rstrip(",")
        from azure.devops.connection import Connection
        from msrest.authentication import BasicAuthentication

        agent = Connection(base_url=url, creds=BasicAuthentication("", "demo-pat-value")).clients_v7_1 \
            .get_task_agent_client()
        assert [g.name for g in agent.get_variable_groups("Demo")] == ["shared"]
    finally:
        proc.terminate()
        proc.wait(5)
