"""A KMS emulator with one identity and a Workspace whose `kms` Connection logs in as it:
what the end-to-end tests of the KMS source (CLI and daemon) start from."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.sources.kms_client import TOKENS
from tests.emulators.kms import KmsEmulator
from tests.support.cli import Workspace

KMS_PROJECT = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
KMS_CLIENT_ID = "reconciler-identity"
KMS_CLIENT_SECRET = "kms-client-secret-for-tests"


@pytest.fixture
def kms_emulator() -> Iterator[KmsEmulator]:
    with KmsEmulator() as emu:
        emu.add_identity(KMS_CLIENT_ID, KMS_CLIENT_SECRET)
        emu.store.folder(KMS_PROJECT, "dev", "/app")
        yield emu


def kms_workspace(root: Path, aws_endpoint: str, kms: KmsEmulator, monkeypatch: pytest.MonkeyPatch,
                  **connection: Any) -> Workspace:
    """A Workspace (file source + moto) plus a `kms` Connection; ``connection`` adds settings."""
    monkeypatch.setenv("TEST_KMS_CLIENT_SECRET", KMS_CLIENT_SECRET)
    TOKENS.clear()  # no token from an earlier test's emulator
    w = Workspace(root, aws_endpoint)
    w.write_spec("kms.yaml", [{
        "kind": "Connection", "name": "kms", "app": "kms", "siteUrl": kms.url, **connection,
        "credentials": {"method": "universal-auth", "clientId": KMS_CLIENT_ID,
                        "clientSecret": {"env": "TEST_KMS_CLIENT_SECRET"}},
    }])
    return w
