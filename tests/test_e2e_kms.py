"""End to end through the CLI: a Hanzo KMS source (the emulator) into AWS Secrets Manager (moto).

Every test plants canary values in the KMS and scans every output, the state directory and
the recorded status for them at the end.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.emulators.kms import BATCH, SECRETS, KmsEmulator
from tests.fixtures_kms import KMS_CLIENT_SECRET, KMS_PROJECT, kms_workspace
from tests.support.canary import CANARIES, find_leaks, scan_tree
from tests.support.cli import Workspace

C1, C2, C3 = CANARIES
P = KMS_PROJECT
CLIENT_SECRET = KMS_CLIENT_SECRET


@pytest.fixture
def kms(kms_emulator: KmsEmulator) -> KmsEmulator:
    return kms_emulator


@pytest.fixture
def ws(tmp_path: Path, aws_endpoint: str, kms: KmsEmulator, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    return kms_workspace(tmp_path, aws_endpoint, kms, monkeypatch)


def sync(ws: Workspace, **overrides: Any) -> dict[str, object]:
    return ws.sync(source="kms", projectId=P, **overrides)


def _value(sm: Any, name: str) -> str:
    return sm.get_secret_value(SecretId=name)["SecretString"]  # type: ignore[no-any-return]


def _names(sm: Any) -> set[str]:
    return {s["Name"] for page in sm.get_paginator("list_secrets").paginate() for s in page["SecretList"]}


def _status(ws: Workspace) -> dict[str, Any]:
    return json.loads(ws.run("status", "--json").out)["syncs"][0]  # type: ignore[no-any-return]


def _no_leaks(ws: Workspace, kms: KmsEmulator) -> None:
    """Canary values, the client secret and every access token the emulator issued: nowhere in
    any output, log line, state file or recorded status."""
    assert ws.leaks() == []
    secrets = [*CANARIES, CLIENT_SECRET, *kms.issued]
    assert find_leaks(ws.outputs, secrets) == []
    if ws.state.exists():
        assert find_leaks([json.dumps(_status(ws))], secrets) == []
        assert scan_tree(ws.state, secrets) == []


def test_kms_folder_with_imports_and_references_reaches_aws(ws: Workspace, kms: KmsEmulator, sm_client: Any) -> None:
    st = kms.store
    st.put(P, "prod", "/db", "PASSWORD", C1)
    st.put(P, "dev", "/shared", "LOG_LEVEL", "debug")
    st.put(P, "dev", "/shared", "API_KEY", "overridden-by-local")
    st.put(P, "dev", "/app", "API_KEY", C2, comment="for the api", metadata={"tier": "gold"})
    st.put(P, "dev", "/app", "DB_PASSWORD", "${prod.db.PASSWORD}")
    st.add_import(P, "dev", "/app", "dev", "/shared")
    ws.write_spec("app.yaml", [sync(ws, syncOptions={"syncSecretMetadataAsTags": True})])

    r = ws.run("plan", "--detailed-exitcode")
    assert r.code == 2, str(r)
    assert "+ app/API_KEY" in r.out and "+ app/DB_PASSWORD" in r.out and "+ app/LOG_LEVEL" in r.out
    assert ws.run("apply").code == 0
    assert _value(sm_client, "app/DB_PASSWORD") == C1, "reference expanded"
    assert _value(sm_client, "app/API_KEY") == C2, "local beats the import"
    assert _value(sm_client, "app/LOG_LEVEL") == "debug"
    tags = {t["Key"]: t["Value"] for t in sm_client.describe_secret(SecretId="app/API_KEY")["Tags"]}
    assert tags["tier"] == "gold", "metadata travels as tags"

    assert ws.run("plan", "--detailed-exitcode").code == 0
    st.put(P, "prod", "/db", "PASSWORD", C3)  # a change two folders away, seen through the reference
    assert ws.run("apply").code == 0
    assert _value(sm_client, "app/DB_PASSWORD") == C3
    assert kms.count("POST", "/api/v1/auth/universal-auth/login") == 1, "the token outlives a run (one process)"
    _no_leaks(ws, kms)


def test_recursive_sync(ws: Workspace, kms: KmsEmulator, sm_client: Any) -> None:
    kms.store.put(P, "dev", "/app", "A", C1)
    kms.store.put(P, "dev", "/app/nested/deeper", "B", C2)
    ws.write_spec("app.yaml", [sync(ws, recursive=True)])
    assert ws.run("apply").code == 0
    assert _names(sm_client) == {"app/A", "app/B"}
    _no_leaks(ws, kms)


@pytest.mark.parametrize("priority", ["source", "destination"])
def test_import_behaviours_write_into_kms(ws: Workspace, kms: KmsEmulator, sm_client: Any, priority: str) -> None:
    sm_client.create_secret(Name="app/ONLY_AT_DEST", SecretString=C3)
    sm_client.create_secret(Name="app/BOTH", SecretString="aws-value")
    kms.store.put(P, "dev", "/app", "BOTH", C1)
    kms.store.put(P, "dev", "/app", "NEW", C2)
    ws.write_spec("app.yaml", [sync(ws, syncOptions={"initialSyncBehavior": f"import-prioritize-{priority}"})])
    r = ws.run("apply")
    assert r.code == 0, str(r)
    both = C1 if priority == "source" else "aws-value"
    assert kms.store.values(P, "dev", "/app") == {"BOTH": both, "NEW": C2, "ONLY_AT_DEST": C3}
    assert _value(sm_client, "app/BOTH") == both and _value(sm_client, "app/NEW") == C2
    assert kms.count("POST", BATCH) == 1
    assert kms.count("PATCH", BATCH) == (1 if priority == "destination" else 0)
    assert ws.run("plan", "--detailed-exitcode").code == 0
    _no_leaks(ws, kms)


def test_import_command_into_kms(ws: Workspace, kms: KmsEmulator, sm_client: Any) -> None:
    kms.store.put(P, "dev", "/app", "A", C1)
    ws.write_spec("app.yaml", [sync(ws)])
    assert ws.run("apply").code == 0
    sm_client.create_secret(Name="app/EXTRA", SecretString=C2)
    r = ws.run("import", "app", "--priority", "destination")
    assert r.code == 0, str(r)
    assert kms.store.values(P, "dev", "/app") == {"A": C1, "EXTRA": C2}
    assert _status(ws)["importStatus"] == "succeeded"
    _no_leaks(ws, kms)


def test_a_failed_import_is_a_clear_status_and_writes_nothing(
        ws: Workspace, kms: KmsEmulator, sm_client: Any) -> None:
    sm_client.create_secret(Name="app/ONLY_AT_DEST", SecretString=C3)
    sm_client.create_secret(Name="app/BOTH", SecretString=C2)
    kms.store.put(P, "dev", "/app", "BOTH", C1)
    kms.fault("PATCH", BATCH, 500, times=-1, retry_after="0", body=json.dumps({"message": f"bad value {C2}"}))
    ws.write_spec("app.yaml", [sync(ws, syncOptions={"initialSyncBehavior": "import-prioritize-destination"})])
    r = ws.run("apply")
    assert r.code == 1
    st = _status(ws)
    assert st["syncStatus"] == "failed"
    assert "updating BOTH failed" in st["lastSyncMessage"] and "nothing was written" in st["lastSyncMessage"]
    assert kms.store.values(P, "dev", "/app") == {"BOTH": C1}, "the created ONLY_AT_DEST was rolled back"
    assert _names(sm_client) == {"app/ONLY_AT_DEST", "app/BOTH"}
    assert _value(sm_client, "app/BOTH") == C2, "the destination saw nothing either"

    kms.clear_faults()
    assert ws.run("apply").code == 0, "still the first sync: the import runs again and lands"
    assert kms.store.values(P, "dev", "/app") == {"BOTH": C2, "ONLY_AT_DEST": C3}
    _no_leaks(ws, kms)


def test_failing_kms_read_never_deletes(ws: Workspace, kms: KmsEmulator, sm_client: Any) -> None:
    kms.store.put(P, "dev", "/app", "A", C1)
    kms.store.put(P, "dev", "/app", "B", C2)
    ws.write_spec("app.yaml", [sync(ws, reconcile={"maxDeletes": "100%"})])
    assert ws.run("apply").code == 0

    kms.fault("GET", SECRETS, 403, times=-1, body=json.dumps({"message": C1}))
    r = ws.run("apply")
    assert r.code == 1
    st = _status(ws)
    assert st["syncStatus"] == "failed" and "lacks permission (403)" in st["lastSyncMessage"]
    assert _names(sm_client) == {"app/A", "app/B"}

    kms.clear_faults()
    kms.expire_tokens()  # the cached token is refused, and so is the new login
    kms.fault("POST", "/login$", 401, times=-1)
    assert ws.run("apply").code == 1
    assert "clientId and clientSecret" in _status(ws)["lastSyncMessage"]
    assert _names(sm_client) == {"app/A", "app/B"}

    kms.clear_faults()
    kms.fault("GET", SECRETS, 503, times=-1, retry_after="0")
    assert ws.run("apply").code == 1
    assert _names(sm_client) == {"app/A", "app/B"}
    _no_leaks(ws, kms)


def test_empty_kms_folder_never_deletes(ws: Workspace, kms: KmsEmulator, sm_client: Any) -> None:
    kms.store.put(P, "dev", "/app", "A", C1)
    kms.store.put(P, "dev", "/app", "B", C2)
    ws.write_spec("app.yaml", [sync(ws, reconcile={"maxDeletes": "100%"})])
    assert ws.run("apply").code == 0
    kms.store.delete(P, "dev", "/app", "A")
    kms.store.delete(P, "dev", "/app", "B")
    r = ws.run("apply")
    assert r.code == 1, str(r)
    assert _names(sm_client) == {"app/A", "app/B"}
    ws.write_spec("app.yaml", [sync(ws, secretPath="/renamed-by-mistake", reconcile={"maxDeletes": "100%"})])
    assert ws.run("apply").code == 1
    assert _names(sm_client) == {"app/A", "app/B"}
    _no_leaks(ws, kms)


def test_faults_converge(ws: Workspace, kms: KmsEmulator, sm_client: Any) -> None:
    kms.store.put(P, "dev", "/app", "A", C1)
    kms.store.put(P, "dev", "/app", "B", C2)
    ws.write_spec("app.yaml", [sync(ws)])
    kms.fault("POST", "/login$", 503, retry_after="0")
    kms.fault("GET", SECRETS, drop=True)  # backs off 0.25-0.5 s (no Retry-After on a dropped connection)
    kms.fault("GET", SECRETS, 429, retry_after="0")
    kms.fault("GET", SECRETS, 502, retry_after="0")  # the 4th attempt of one read succeeds: bounded at 4
    r = ws.run("apply")
    assert r.code == 0, str(r)
    assert _value(sm_client, "app/A") == C1

    kms.store.put(P, "dev", "/app", "A", C3)
    kms.expire_tokens()  # revoked server-side while cached: the 401 logs in again, once
    logins = kms.count("POST", "/api/v1/auth/universal-auth/login")
    r = ws.run("apply")
    assert r.code == 0, str(r)
    assert _value(sm_client, "app/A") == C3
    assert kms.count("POST", "/api/v1/auth/universal-auth/login") == logins + 1
    assert ws.run("plan", "--detailed-exitcode").code == 0
    _no_leaks(ws, kms)
