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

import pytest

from tests.emulators.azure_devops import AzureDevOpsEmulator

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
