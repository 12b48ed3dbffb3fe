"""The Azure DevOps REST transport against the emulator: auth (PAT, Entra), retries that
honour Retry-After, a lost answer that never makes a second group, errors in our words."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler import calls
from reconciler.destinations import errors
from reconciler.destinations.azure_devops.client import DevOpsClient, authorization
from tests.emulators.azure_devops import AzureDevOpsEmulator, Fault
from tests.emulators.azure_keyvault import DEFAULT_TENANT, FakeIdentityProvider
from tests.fixtures_azure import AZ_CLIENT_ID, AZ_CLIENT_SECRET
from tests.fixtures_azure_devops import ADO_OTHER_PAT, ADO_PAT, ADO_PROJECT_ID

GROUPS = r"/emulator-org/_apis/distributedtask/variablegroups(/\d+)?"


def _client(emu: AzureDevOpsEmulator, pat: str = ADO_PAT, waits: list[float] | None = None, **kw: Any) -> DevOpsClient:
    secrets = {"token": pat}
    return DevOpsClient(emu.org_url, authorization("pat", secrets.get, {}),
                        sleep=(waits.append if waits is not None else lambda _s: None), **kw)


def _body(name: str, **variables: str) -> dict[str, Any]:
    return {"name": name, "type": "Vsts", "description": "",
            "variables": {k: {"value": v, "isSecret": True} for k, v in variables.items()},
            "variableGroupProjectReferences": [{"name": name, "projectReference": {"id": ADO_PROJECT_ID}}]}


def test_round_trip_and_counts(azure_devops: AzureDevOpsEmulator) -> None:
    c = _client(azure_devops)
    assert c.find_group(ADO_PROJECT_ID, "prod") is None
    g = c.add_group(_body("prod", A="1"), ADO_PROJECT_ID)
    assert c.find_group(ADO_PROJECT_ID, "PROD")["id"] == g["id"]  # type: ignore[index]
    c.update_group(g["id"], _body("prod", B="2"))
    assert azure_devops.org.secret_value(g["id"], "B") == "2"
    c.delete_group(g["id"], ADO_PROJECT_ID)
    c.delete_group(g["id"], ADO_PROJECT_ID)  # already gone: fine
    assert azure_devops.org.groups == {}
    assert calls.by_call("azure-devops") == {"list-groups": 2, "add-group": 1, "update-group": 1, "delete-group": 2}
    assert all("api-version=7.1" in r.query for r in azure_devops.log)


def test_a_wildcard_in_a_name_matches_only_itself(azure_devops: AzureDevOpsEmulator) -> None:
    c = _client(azure_devops)
    c.add_group(_body("prod-eu", A="1"), ADO_PROJECT_ID)
    assert c.find_group(ADO_PROJECT_ID, "prod*") is None


def test_a_wrong_pat_is_one_clear_line(azure_devops: AzureDevOpsEmulator) -> None:
    with pytest.raises(errors.AuthError) as exc:
        _client(azure_devops, pat="wrong").find_group(ADO_PROJECT_ID, "prod")
    assert "did not accept the credentials (HTTP 401)" in str(exc.value) and "\n" not in str(exc.value)
    assert "wrong" not in str(exc.value)


def test_throttling_waits_what_retry_after_says(azure_devops: AzureDevOpsEmulator) -> None:
    waits: list[float] = []
    azure_devops.inject(Fault("GET", times=2, status=429, headers={"Retry-After": "3"}))
    assert _client(azure_devops, waits=waits).find_group(ADO_PROJECT_ID, "x") is None
    assert waits == [3.0, 3.0]
    azure_devops.inject(Fault("GET", status=429, headers={"Retry-After": "600"}))
    with pytest.raises(errors.Throttled) as exc:
        _client(azure_devops).find_group(ADO_PROJECT_ID, "x")
    assert exc.value.retry_after == 600


def test_bounded_retries_then_a_transient_error(azure_devops: AzureDevOpsEmulator) -> None:
    azure_devops.inject(Fault("PUT", GROUPS, times=9, status=503))
    g = _client(azure_devops).add_group(_body("prod", A="1"), ADO_PROJECT_ID)
    with pytest.raises(errors.Transient) as exc:
        _client(azure_devops, attempts=3).update_group(g["id"], _body("prod", A="2"))
    assert "HTTP 503 ServiceUnavailableException" in str(exc.value)
    assert azure_devops.count("PUT", GROUPS) == 3


def test_a_lost_add_answer_never_makes_a_second_group(azure_devops: AzureDevOpsEmulator) -> None:
    azure_devops.inject(Fault("POST", GROUPS, drop="after"))
    g = _client(azure_devops).add_group(_body("prod", A="1"), ADO_PROJECT_ID)
    assert g["name"] == "prod" and len(azure_devops.org.groups) == 1
    assert azure_devops.count("POST", GROUPS) == 1


def test_conflict_and_not_found_carry_the_type_key(azure_devops: AzureDevOpsEmulator) -> None:
    c = _client(azure_devops)
    c.add_group(_body("prod", A="1"), ADO_PROJECT_ID)
    with pytest.raises(errors.Conflict) as exc:
        c.add_group(_body("Prod", A="1"), ADO_PROJECT_ID)
    assert exc.value.code == "VariableGroupExistsException"
    with pytest.raises(errors.NotFound) as nf:
        c.update_group(99, _body("prod", A="1"))
    assert nf.value.code == "VariableGroupNotFoundException"
    with pytest.raises(errors.NotFound):
        c.project("NoSuchProject")


def test_entra_client_secret(azure_devops: AzureDevOpsEmulator, azure_idp_server: FakeIdentityProvider,
                             azure_ca_file: Path) -> None:
    from tests.emulators.azure_devops import SERVICE_PRINCIPAL

    azure_devops.token_check = azure_idp_server.issued
    secrets = {"tenantId": DEFAULT_TENANT, "clientId": AZ_CLIENT_ID, "clientSecret": AZ_CLIENT_SECRET}
    auth = authorization("client-secret", secrets.get,
                         {"authorityHost": azure_idp_server.url, "caBundle": str(azure_ca_file)})
    c = DevOpsClient(azure_devops.org_url, auth)
    g = c.add_group(_body("prod", A="1"), ADO_PROJECT_ID)
    assert g["modifiedBy"]["id"] == SERVICE_PRINCIPAL.id
    bad = authorization("client-secret", {**secrets, "clientSecret": "nope"}.get,
                        {"authorityHost": azure_idp_server.url, "caBundle": str(azure_ca_file)})
    with pytest.raises(errors.AuthError) as exc:
        DevOpsClient(azure_devops.org_url, bad).find_group(ADO_PROJECT_ID, "prod")
    assert "AADSTS7000215" in str(exc.value) and "nope" not in str(exc.value)


def test_someone_elses_edit_shows_in_modified_by(azure_devops: AzureDevOpsEmulator) -> None:
    mine, theirs = _client(azure_devops), _client(azure_devops, pat=ADO_OTHER_PAT)
    g = mine.add_group(_body("prod", A="1"), ADO_PROJECT_ID)
    theirs.update_group(g["id"], _body("prod", A="2"))
    assert mine.find_group(ADO_PROJECT_ID, "prod")["modifiedBy"]["displayName"] == "A Colleague"  # type: ignore[index]
