"""Bad input through the CLI: a clear diagnostic (file, line, field), exit 1, no traceback,
nothing written anywhere (no state directory, no destination call)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from reconciler import calls
from tests.support.canary import CANARIES
from tests.support.cli import Workspace


@pytest.fixture
def ws(tmp_path: Path, aws_endpoint: str) -> Workspace:
    w = Workspace(tmp_path, aws_endpoint)
    w.set_secrets({"A": CANARIES[0]})
    return w


CASES = {
    "malformed-yaml": ("kind: SecretSync\nname: x\nsyncOptions: [\n", "bad.yaml:"),
    "unknown-kind": ("kind: SecretSink\nname: x\n", "bad.yaml:1"),
    "unknown-field": (
        "kind: SecretSync\nname: x\nsource: local\nenvironment: dev\nsecretPath: /app\n"
        "destination: aws-secrets-manager\nconnection: aws\n"
        "destinationConfig: {region: us-east-1, mappingBehavior: one-to-one}\n"
        "syncOptions: {keySchema: 'x/{{secretKey}}'}\nbogus: 1\n",
        "bad.yaml:10",
    ),
    "wrong-type": (
        "kind: SecretSync\nname: x\nsource: local\nenvironment: dev\nsecretPath: /app\n"
        "destination: aws-secrets-manager\nconnection: aws\n"
        "destinationConfig: {region: us-east-1, mappingBehavior: one-to-one}\n"
        "syncOptions: {keySchema: 'x/{{secretKey}}', disableSecretDeletion: sometimes}\n",
        "disableSecretDeletion",
    ),
    "missing-connection": (
        "kind: SecretSync\nname: x\nsource: local\nenvironment: dev\nsecretPath: /app\n"
        "destination: aws-secrets-manager\nconnection: nope\n"
        "destinationConfig: {region: us-east-1, mappingBehavior: one-to-one}\n"
        "syncOptions: {keySchema: 'x/{{secretKey}}'}\n",
        "bad.yaml:7",
    ),
    "bad-key-schema": (
        "kind: SecretSync\nname: x\nsource: local\nenvironment: dev\nsecretPath: /app\n"
        "destination: aws-secrets-manager\nconnection: aws\n"
        "destinationConfig: {region: us-east-1, mappingBehavior: one-to-one}\n"
        "syncOptions:\n  keySchema: 'PIPELINE_${secretKey}'\n",
        "bad.yaml:10",
    ),
    "literal-credential": (
        "kind: Connection\nname: aws2\napp: aws\ncredentials:\n  method: access-key\n"
        "  accessKeyId: AKIAEXAMPLE\n  secretAccessKey: " + CANARIES[1] + "\n",
        "bad.yaml:7",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_spec_is_a_clear_error_and_writes_nothing(ws: Workspace, case: str, sm_client: Any) -> None:
    text, where = CASES[case]
    (ws.specs / "bad.yaml").write_text(text)
    calls.reset()
    r = ws.run("validate")
    assert r.code == 1, str(r)
    assert where in r.err, str(r)
    assert "Traceback" not in r.out + r.err
    r = ws.run("apply", "--sync", "x")
    assert r.code == 1
    assert "Traceback" not in r.out + r.err
    assert not ws.state.exists(), "nothing written"
    assert calls.snapshot() == {}, "no destination call"
    assert sm_client.list_secrets()["SecretList"] == []
    assert ws.leaks() == []


def test_overlapping_scopes_are_refused(ws: Workspace) -> None:
    ws.write_spec("a.yaml", [ws.sync("one", syncOptions={"keySchema": "app/{{secretKey}}"})])
    ws.write_spec("b.yaml", [ws.sync("two", syncOptions={"keySchema": "app/{{secretKey}}_X"})])
    r = ws.run("validate")
    assert r.code == 1
    assert "a.yaml:" in r.err and "b.yaml:" in r.err
    assert "overlap" in r.err


def test_source_with_wrong_layout(ws: Workspace) -> None:
    ws.write_spec("app.yaml", [ws.sync()])
    ws.secrets_file.write_text("dev:\n  /app:\n    - just\n    - a list\n")
    r = ws.run("plan")
    assert r.code == 1
    assert "secrets.yaml:3" in r.out + r.err
    assert "Traceback" not in r.out + r.err


def test_validate_reports_every_problem_not_the_first(ws: Workspace) -> None:
    (ws.specs / "bad.yaml").write_text(
        "kind: SecretSync\nname: Bad_Name\nsource: local\nenvironment: dev\nsecretPath: /app\n"
        "destination: aws-secrets-manager\nconnection: nope\n"
        "destinationConfig: {region: us-east-1, mappingBehavior: one-to-one}\n"
        "syncOptions: {keySchema: 'no-placeholder'}\n"
    )
    r = ws.run("validate")
    assert r.code == 1
    assert r.err.count("bad.yaml:") >= 3, r.err


def test_examples_validate() -> None:
    root = Path(__file__).resolve().parent.parent / "examples" / "syncs"
    from reconciler.cli import main

    assert main(["validate", str(root)]) == 0


def test_an_access_key_id_with_a_line_break_is_a_config_error(ws: Workspace, sm_client: Any,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A stray line break in the key id was retried to the end as "endpoint unreachable"."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE\nX-Injected: 1")
    ws.write_spec("app.yaml", [ws.sync()])
    calls.reset()
    r = ws.run("plan")
    assert r.code == 1, str(r)
    assert "credentials.accessKeyId" in r.out and "HTTP header" in r.out, str(r)
    assert "destination.retry" not in r.err and not calls.snapshot()


@pytest.mark.parametrize(("bundle", "why"), [("missing.pem", "does not exist"), ("../secrets.yaml", "no PEM")])
def test_a_ca_bundle_that_is_missing_or_not_pem_is_a_config_error(ws: Workspace, bundle: str, why: str) -> None:
    """Each client met it in its own way: an internal error (OSError, SSLError) from Key
    Vault's and Azure DevOps' clients, a retried 'connection dropped' from others."""
    ws.write_spec("connections.yaml", [
        {"kind": "Connection", "name": "local", "app": "file", "path": "../secrets.yaml"},
        {"kind": "Connection", "name": "aws", "app": "aws", "endpoint": ws.aws_endpoint, "region": "us-east-1",
         "caBundle": bundle, "credentials": {"method": "access-key", "accessKeyId": {"env": "AWS_ACCESS_KEY_ID"},
                                             "secretAccessKey": {"env": "AWS_SECRET_ACCESS_KEY"}}}])
    ws.write_spec("app.yaml", [ws.sync()])
    calls.reset()
    r = ws.run("plan")
    assert r.code == 1, str(r)
    assert f"connection aws: caBundle {os.path.abspath(ws.specs / bundle)} " in r.out, str(r)
    assert why in r.out and not calls.snapshot(), str(r)


def test_an_error_quoting_a_spec_path_stays_one_line(ws: Workspace) -> None:
    """apply printed a run's error raw: a path in a spec could carry an ANSI escape or a newline."""
    ws.write_spec("connections.yaml", [
        {"kind": "Connection", "name": "local", "app": "file", "path": "x\x1b[31m\nFAKE: line.yaml"},
        {"kind": "Connection", "name": "aws", "app": "aws", "endpoint": ws.aws_endpoint, "region": "us-east-1"}])
    ws.write_spec("app.yaml", [ws.sync()])
    r = ws.run("apply")
    assert r.code == 1 and "\x1b" not in r.out and "\\x1b[31m\\x0aFAKE: line.yaml" in r.out, str(r)
    assert not any(line.startswith("FAKE") for line in r.out.splitlines()), str(r)
    for status in (ws.run("status"), ws.run("status", str(ws.specs))):  # the stored message, shown again
        assert "\x1b" not in status.out and "\\x1b[31m" in status.out, str(status)
