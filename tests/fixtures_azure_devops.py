"""Azure DevOps fixtures: one emulator (plain HTTP on 127.0.0.1) for the whole session with
two identities, reset per test to one organization with two projects.

Two identities so that an out-of-band edit is made by *someone else* (``modifiedBy`` moves)
just as a colleague in the web UI would. The SDK's location cache lives on disk; it is
pointed at a throwaway directory before the SDK is ever imported.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.emulators.azure_devops import AzureDevOpsEmulator
from tests.support.cli import Workspace

os.environ.setdefault("AZURE_DEVOPS_CACHE_DIR", tempfile.mkdtemp(prefix="ado-sdk-cache-"))

ADO_ORG = "emulator-org"
ADO_PROJECT_ID = "0b7b6e1e-5d0a-4c1e-9b7e-3f1c2a4d5e60"
ADO_PROJECT = "Payments"
ADO_OTHER_PROJECT_ID = "7c3d9f20-1a2b-4c5d-8e9f-0a1b2c3d4e5f"
ADO_OTHER_PROJECT = "Platform"
ADO_PAT = "reconciler-pat-not-real-0b1c2d3e4f"  # reconciler's identity
ADO_OTHER_PAT = "colleague-pat-not-real-9f8e7d6c5b"  # someone editing in the web UI
ADO_PAT_ENV = "RECONCILER_TEST_ADO_PAT"


@pytest.fixture(scope="session")
def azure_devops_server() -> Iterator[AzureDevOpsEmulator]:
    emu = AzureDevOpsEmulator(None)
    emu.add_pat("reconciler", ADO_PAT)
    emu.add_pat("A Colleague", ADO_OTHER_PAT)
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def azure_devops(azure_devops_server: AzureDevOpsEmulator, monkeypatch: pytest.MonkeyPatch) -> AzureDevOpsEmulator:
    """A clean organization per test (two projects, no groups), counts reset, reconciler's
    PAT in the environment."""
    from reconciler import calls

    emu = azure_devops_server
    emu.reset()
    emu.token_check = None
    emu.org.name = ADO_ORG
    emu.org.add_project(ADO_PROJECT, ADO_PROJECT_ID, "the payments team")
    emu.org.add_project(ADO_OTHER_PROJECT, ADO_OTHER_PROJECT_ID)
    calls.reset()
    monkeypatch.setenv(ADO_PAT_ENV, ADO_PAT)
    return emu


def ado_connection_doc(emu: AzureDevOpsEmulator, **extra: Any) -> dict[str, Any]:
    """A Connection document for the emulator's organization, reconciler's PAT by reference."""
    doc: dict[str, Any] = {"kind": "Connection", "name": "ado", "app": "azure-devops",
                           "organizationUrl": emu.org_url,
                           "credentials": {"method": "pat", "token": {"env": ADO_PAT_ENV}}}
    doc.update(extra)
    return doc


class AzureDevOpsWorkspace(Workspace):
    """The CLI workspace (file source) with an `ado` Connection to the emulator."""

    def __init__(self, root: Path, emu: AzureDevOpsEmulator) -> None:
        self.emu = emu
        super().__init__(root, "http://127.0.0.1:1")

    def write_connections(self) -> None:
        self.write_spec("connections.yaml", [
            {"kind": "Connection", "name": "local", "app": "file", "path": "../secrets.yaml"},
            ado_connection_doc(self.emu),
        ])

    def sync(self, name: str = "app", **overrides: object) -> dict[str, object]:
        doc = super().sync(name)
        doc.update({"destination": "azure-devops", "connection": "ado",
                    "destinationConfig": {"devopsProjectId": ADO_PROJECT_ID, "devopsProjectName": ADO_PROJECT},
                    "syncOptions": {"initialSyncBehavior": "overwrite-destination", "keySchema": "APP_{{secretKey}}"}})
        for k, v in overrides.items():
            if isinstance(v, dict) and isinstance(doc.get(k), dict):
                doc[k] = {**doc[k], **v}  # type: ignore[dict-item]
            else:
                doc[k] = v
        return doc


@pytest.fixture
def ado_ws(tmp_path: Path, azure_devops: AzureDevOpsEmulator) -> AzureDevOpsWorkspace:
    return AzureDevOpsWorkspace(tmp_path, azure_devops)


def ado_agent(emu: AzureDevOpsEmulator, pat: str = ADO_OTHER_PAT) -> Any:
    """Microsoft's task-agent client (SDK retries off) as someone else, for out-of-band edits."""
    from azure.devops.connection import Connection
    from msrest.authentication import BasicAuthentication

    client = Connection(base_url=emu.org_url, creds=BasicAuthentication("", pat)).clients_v7_1.get_task_agent_client()
    client.config.retry_policy.retries = 0
    return client


def ado_edit(emu: AzureDevOpsEmulator, group: str, *, set_secret: dict[str, str] | None = None,
             set_plain: dict[str, str] | None = None, remove: tuple[str, ...] = (), pat: str = ADO_OTHER_PAT) -> Any:
    """Edit a group the way the web UI does: read it, resend every secret without a value."""
    from azure.devops.v7_1.task_agent.models import VariableGroupParameters, VariableValue

    agent = ado_agent(emu, pat)
    g = next(x for x in agent.get_variable_groups(ADO_PROJECT_ID, group_name=group))
    variables = {k: VariableValue(is_secret=True) if v.is_secret else VariableValue(value=v.value)
                 for k, v in g.variables.items() if k not in remove}
    variables.update({k: VariableValue(value=v, is_secret=True) for k, v in (set_secret or {}).items()})
    variables.update({k: VariableValue(value=v) for k, v in (set_plain or {}).items()})
    params = VariableGroupParameters(name=g.name, type=g.type, description=g.description, variables=variables,
                                     variable_group_project_references=g.variable_group_project_references)
    return agent.update_variable_group(params, g.id)


def ado_add(emu: AzureDevOpsEmulator, group: str, secrets: dict[str, str], plain: dict[str, str] | None = None,
            project_id: str = ADO_PROJECT_ID, pat: str = ADO_OTHER_PAT) -> Any:
    """Create a group as someone else (foreign variables a sync must leave alone)."""
    from azure.devops.v7_1.task_agent.models import (
        ProjectReference,
        VariableGroupParameters,
        VariableGroupProjectReference,
        VariableValue,
    )

    variables = {k: VariableValue(value=v, is_secret=True) for k, v in secrets.items()}
    variables.update({k: VariableValue(value=v) for k, v in (plain or {}).items()})
    ref = VariableGroupProjectReference(name=group, project_reference=ProjectReference(id=project_id))
    return ado_agent(emu, pat).add_variable_group(VariableGroupParameters(
        name=group, type="Vsts", description="made by hand", variables=variables,
        variable_group_project_references=[ref]))
