"""Loading a spec directory: every bad input is a diagnostic at the right file, line and path."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from reconciler.specs.loader import load
from reconciler.specs.model import Diagnostic, SpecSet
from tests.support.canary import CANARIES, find_leaks

DATA = Path(__file__).parent / "data" / "specs"


def _dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


WINDMILL = _dedent("""
    kind: SecretSync
    name: wm-sync
    environment: dev
    secretPath: /app
    destination: windmill
    connection: wm
    destinationConfig:
      workspace: ws
      path: f/app/
    syncOptions:
      keySchema: "{{secretKey}}"
    """)

AWS = _dedent("""
    kind: SecretSync
    name: aws-sync
    environment: dev
    secretPath: /app
    destination: aws-secrets-manager
    connection: aws
    destinationConfig:
      region: us-east-1
      mappingBehavior: one-to-one
    syncOptions:
      keySchema: "app/{{secretKey}}"
    """)


def specdir(tmp_path: Path, files: dict[str, str]) -> Path:
    """The base directory (one valid Connection per app) plus ``files``."""
    shutil.copytree(DATA / "base", tmp_path, dirs_exist_ok=True)
    for name, text in files.items():
        (tmp_path / name).write_text(_dedent(text))
    return tmp_path


def errors(specs: SpecSet) -> list[Diagnostic]:
    return [d for d in specs.diagnostics if d.severity == "error"]


def _edit(base: str, old: str, new: str) -> str:
    assert old in base, old
    return base.replace(old, new)


# (id, files, [(file, line, path, message fragment)])
CASES: list[tuple[str, dict[str, str], list[tuple[str, int, str, str]]]] = [
    ("malformed-yaml", {"s.yaml": "kind: SecretSync\nname: a\n  bad: indent\n"},
     [("s.yaml", 3, "$", "invalid YAML: mapping values are not allowed here")]),
    ("unknown-kind", {"s.yaml": "kind: Secret\nname: a\n"},
     [("s.yaml", 1, "$.kind", "unknown kind 'Secret'; allowed kinds: SecretSync, Connection")]),
    ("missing-kind", {"s.yaml": "name: a\n"},
     [("s.yaml", 1, "$.kind", "missing required field 'kind' (SecretSync, Connection or Notifier)")]),
    ("not-a-mapping", {"s.yaml": "- kind: SecretSync\n"},
     [("s.yaml", 1, "$", "must be a mapping (got a list)")]),
    ("unknown-field", {"s.yaml": _edit(WINDMILL, "  keySchema:", "  keyschema:")},
     [("s.yaml", 11, "$.syncOptions.keyschema", "unknown field 'keyschema' (did you mean 'keySchema'?)")]),
    ("unknown-top-level-field", {"s.yaml": WINDMILL + "region: us-east-1\n"},
     [("s.yaml", 12, "$.region", "unknown field 'region'")]),
    ("wrong-type", {"s.yaml": WINDMILL + "isEnabled: yes please\n"},
     [("s.yaml", 12, "$.isEnabled", "must be true or false (got a string)")]),
    ("missing-required", {"s.yaml": _edit(WINDMILL, "  workspace: ws\n", "")},
     [("s.yaml", 7, "$.destinationConfig.workspace", "missing required field 'workspace'")]),
    ("missing-connection", {"s.yaml": _edit(WINDMILL, "connection: wm", "connection: nope")},
     [("s.yaml", 6, "$.connection",
       "connection 'nope' is not defined (connections with app 'windmill': wm)")]),
    ("wrong-connection-app", {"s.yaml": _edit(WINDMILL, "connection: wm", "connection: aws")},
     [("s.yaml", 6, "$.connection",
       "connection 'aws' has app 'aws', but destination 'windmill' needs a connection with app 'windmill'")]),
    ("literal-credential", {"c.yaml": """
        kind: Connection
        name: wm2
        app: windmill
        credentials:
          method: token
          token: CANARY-7f3a9c1e-do-not-leak
        """},
     [("c.yaml", 6, "$.credentials.token", "credentials must be references, never literal values")]),
    ("literal-credential-nested", {"c.yaml": """
        kind: Connection
        name: aws2
        app: aws
        credentials:
          method: access-key
          accessKeyId: AKIAEXAMPLE
          secretAccessKey: {value: canary-pw-Zq8!x2#Lm}
        """},
     [("c.yaml", 7, "$.credentials.secretAccessKey", "credentials must be references")]),
    ("keyschema-no-placeholder", {"s.yaml": _edit(WINDMILL, '"{{secretKey}}"', "APP_")},
     [("s.yaml", 11, "$.syncOptions.keySchema", "key schema must contain {{secretKey}}")]),
    ("keyschema-charset", {"s.yaml": _edit(WINDMILL, '"{{secretKey}}"', '"APP.{{secretKey}}"')},
     [("s.yaml", 11, "$.syncOptions.keySchema", "may only contain letters, digits, '_', '-', '/'")]),
    ("keyschema-dollar-brace", {"s.yaml": _edit(WINDMILL, '"{{secretKey}}"', '"PIPELINE_${secretKey}"')},
     [("s.yaml", 11, "$.syncOptions.keySchema", "(placeholders are written exactly {{secretKey}}"),
      ("s.yaml", 11, "$.syncOptions.keySchema", "key schema must contain {{secretKey}}")]),
    ("bad-slug-name", {"s.yaml": _edit(WINDMILL, "name: wm-sync", "name: My_Sync")},
     [("s.yaml", 2, "$.name", "'My_Sync' does not match a slug")]),
    ("bad-environment", {"s.yaml": _edit(WINDMILL, "environment: dev", "environment: " + "e" * 65)},
     [("s.yaml", 3, "$.environment", "must be at most 64 characters (got 65)")]),
    ("secret-path-relative", {"s.yaml": _edit(WINDMILL, "secretPath: /app", "secretPath: app")},
     [("s.yaml", 4, "$.secretPath", "'app' does not match an absolute folder path like /app")]),
    ("secret-path-dot-dot", {"s.yaml": _edit(WINDMILL, "secretPath: /app", "secretPath: /app/../other")},
     [("s.yaml", 4, "$.secretPath", "'/app/../other' does not match an absolute folder path like /app")]),
    ("secret-path-empty-folder", {"s.yaml": _edit(WINDMILL, "secretPath: /app", "secretPath: //app")},
     [("s.yaml", 4, "$.secretPath", "does not match an absolute folder path like /app")]),
    ("secret-path-control-character", {"s.yaml": _edit(WINDMILL, "secretPath: /app", 'secretPath: "/app\\tx"')},
     [("s.yaml", 4, "$.secretPath", "does not match an absolute folder path like /app")]),
    ("windmill-path-no-owner", {"s.yaml": _edit(WINDMILL, "path: f/app/", "path: folder/app/")},
     [("s.yaml", 9, "$.destinationConfig.path", "'folder/app/' does not match a Windmill owner path")]),
    ("windmill-path-no-trailing-slash", {"s.yaml": _edit(WINDMILL, "path: f/app/", "path: f/app")},
     [("s.yaml", 9, "$.destinationConfig.path", "does not match a Windmill owner path")]),
    ("windmill-path-empty-segment", {"s.yaml": _edit(WINDMILL, "path: f/app/", "path: f//app/")},
     [("s.yaml", 9, "$.destinationConfig.path", "does not match a Windmill owner path")]),
    ("oci-bad-ocid", {"s.yaml": """
        kind: SecretSync
        name: oci-sync
        environment: dev
        secretPath: /app
        destination: oci-vault
        connection: oci
        destinationConfig:
          compartmentOcid: ocid1.compartment.oc1..aaaa
          vaultOcid: ocid1.key.oc1.iad.aaaa
          keyOcid: ocid1.key.oc1.iad.bbbb
        """},
     [("s.yaml", 9, "$.destinationConfig.vaultOcid",
       "'ocid1.key.oc1.iad.aaaa' does not match a vault OCID")]),
    ("aws-bad-region", {"s.yaml": _edit(AWS, "region: us-east-1", "region: US-East-1")},
     [("s.yaml", 8, "$.destinationConfig.region",
       "'US-East-1' does not match an AWS region such as us-east-1")]),
    ("aws-many-to-one-needs-secret-name", {"s.yaml": _edit(AWS, "one-to-one", "many-to-one")},
     [("s.yaml", 7, "$.destinationConfig.secretName", "missing required field 'secretName'")]),
    ("aws-secret-name-charset", {"s.yaml": _edit(AWS, "mappingBehavior: one-to-one",
                                                 "mappingBehavior: many-to-one\n  secretName: my secret")},
     [("s.yaml", 10, "$.destinationConfig.secretName", "'my secret' does not match an AWS secret name")]),
    ("aws-secret-name-only-many-to-one", {"s.yaml": _edit(AWS, "mappingBehavior: one-to-one",
                                                          "mappingBehavior: one-to-one\n  secretName: x")},
     [("s.yaml", 10, "$.destinationConfig.secretName",
       "secretName is only used with mappingBehavior: many-to-one")]),
    ("aws-tag-aws-prefix", {"s.yaml": AWS + "  tags: [{key: 'aws:team', value: x}]\n"},
     [("s.yaml", 12, "$.syncOptions.tags[0].key", "tag keys starting with 'aws:' are reserved by AWS")]),
    ("aws-tag-duplicate", {"s.yaml": AWS + "  tags:\n    - {key: team, value: a}\n"
                                          "    - {key: team, value: b}\n"},
     [("s.yaml", 14, "$.syncOptions.tags[1].key", "duplicate tag key 'team' (also tags[0])")]),
    ("aws-tag-reserved-marker", {"s.yaml": AWS + "  tags: [{key: managed-by, value: me}]\n"},
     [("s.yaml", 12, "$.syncOptions.tags[0].key", "reserved for reconciler's ownership markers")]),
    ("aws-tag-bad-char", {"s.yaml": AWS + "  tags: [{key: team, value: 'a<b>'}]\n"},
     [("s.yaml", 12, "$.syncOptions.tags[0].value", "'a<b>' does not match AWS tag text")]),
    ("aws-tag-too-long", {"s.yaml": AWS + f"  tags: [{{key: {'k' * 129}, value: v}}]\n"},
     [("s.yaml", 12, "$.syncOptions.tags[0].key", "must be at most 128 characters (got 129)")]),
    ("aws-key-id", {"s.yaml": AWS + "  keyId: 'alias/my key'\n"},
     [("s.yaml", 12, "$.syncOptions.keyId", "does not match a KMS key ID, ARN or alias")]),
    ("aws-recovery-window", {"s.yaml": AWS + "  recoveryWindowInDays: 3\n"},
     [("s.yaml", 12, "$.syncOptions.recoveryWindowInDays", "must be at least 7 (got 3)")]),
    ("aws-metadata-tags-many-to-one", {
        "s.yaml": _edit(AWS, "mappingBehavior: one-to-one", "mappingBehavior: many-to-one\n  secretName: cfg")
        + "  syncSecretMetadataAsTags: true\n"},
     [("s.yaml", 13, "$.syncOptions.syncSecretMetadataAsTags",
       "syncSecretMetadataAsTags cannot be used with mappingBehavior many-to-one")]),
    ("azure-devops-import", {"s.yaml": """
        kind: SecretSync
        name: ado-sync
        environment: dev
        secretPath: /app
        destination: azure-devops
        connection: ado
        destinationConfig: {devopsProjectId: 0b7b6e1e-5d0a-4c1e-9b7e-3f1c2a4d5e60}
        syncOptions:
          initialSyncBehavior: import-prioritize-source
        """},
     [("s.yaml", 9, "$.syncOptions.initialSyncBehavior", "this destination cannot import secrets")]),
    ("akv-slash-in-key-schema", {"s.yaml": """
        kind: SecretSync
        name: akv-sync
        environment: dev
        secretPath: /app
        destination: azure-key-vault
        connection: akv
        destinationConfig: {vaultBaseUrl: "https://v.vault.azure.net"}
        syncOptions: {keySchema: "app/{{secretKey}}"}
        """},
     [("s.yaml", 8, "$.syncOptions.keySchema", "Azure Key Vault secret names cannot contain '/'")]),
    ("akv-http-url", {"s.yaml": """
        kind: SecretSync
        name: akv-sync
        environment: dev
        secretPath: /app
        destination: azure-key-vault
        connection: akv
        destinationConfig: {vaultBaseUrl: "http://v.vault.azure.net"}
        """},
     [("s.yaml", 7, "$.destinationConfig.vaultBaseUrl", "does not match an https URL")]),
    ("reconcile-values", {"s.yaml": WINDMILL + _dedent("""
        reconcile:
          interval: 5 minutes
          retryInterval: 0s
          drift: ignore
          maxDeletes: 150%
        """)},
     [("s.yaml", 13, "$.reconcile.interval", "'5 minutes' does not match a duration such as 30s, 5m"),
      ("s.yaml", 14, "$.reconcile.retryInterval", "retryInterval must be at least 1s"),
      ("s.yaml", 15, "$.reconcile.drift", "must be one of: correct, report (got 'ignore')"),
      ("s.yaml", 16, "$.reconcile.maxDeletes", "must be a non-negative integer or a percentage")]),
    ("reconcile-zero-interval", {"s.yaml": WINDMILL + "reconcile: {interval: 0s}\n"},
     [("s.yaml", 12, "$.reconcile.interval", "interval must be at least 1s")]),
    # the daemon added it to now() and died at start with OverflowError, every other sync with it
    ("reconcile-endless-interval", {"s.yaml": WINDMILL + "reconcile: {interval: 999999999d, timeout: 400d}\n"},
     [("s.yaml", 12, "$.reconcile.interval", "interval must be at most 365d"),
      ("s.yaml", 12, "$.reconcile.timeout", "timeout must be at most 365d")]),
    ("ambiguous-source", {"k.yaml": """
        kind: Connection
        name: kms
        app: kms
        credentials: {method: universal-auth, clientId: abc, clientSecret: {env: KMS_SECRET}}
        """, "s.yaml": WINDMILL},
     [("s.yaml", 1, "$.source",
       "source is required when several source connections exist (candidates: kms, src)")]),
    ("kms-source-needs-project", {"k.yaml": """
        kind: Connection
        name: kms
        app: kms
        credentials: {method: universal-auth, clientId: abc, clientSecret: {env: KMS_SECRET}}
        """, "s.yaml": WINDMILL + "source: kms\n"},
     [("s.yaml", 1, "$.projectId", "projectId is required for a kms source ('kms')")]),
    ("source-wrong-app", {"s.yaml": WINDMILL + "source: aws\n"},
     [("s.yaml", 12, "$.source",
       "source 'aws' has app 'aws'; a source must be a Connection with app kms or file")]),
    ("connection-unknown-method", {"c.yaml": """
        kind: Connection
        name: wm2
        app: windmill
        credentials: {method: password, password: {env: X}}
        """},
     [("c.yaml", 4, "$.credentials.method", "must be one of: token (got 'password')")]),
    ("connection-missing-field", {"c.yaml": """
        kind: Connection
        name: ado2
        app: azure-devops
        credentials:
          method: pat
        """},
     [("c.yaml", 1, "$.organizationUrl", "missing required field 'organizationUrl'"),
      ("c.yaml", 4, "$.credentials.token", "missing required field 'token'")]),
    ("connection-field-of-other-app", {"c.yaml": """
        kind: Connection
        name: wm2
        app: windmill
        region: us-east-1
        credentials: {method: token, token: {env: T}}
        """},
     [("c.yaml", 4, "$.region", "unknown field 'region'")]),
    ("bad-env-ref", {"c.yaml": """
        kind: Connection
        name: wm2
        app: windmill
        credentials: {method: token, token: {env: 'NOT-A-NAME'}}
        """},
     [("c.yaml", 4, "$.credentials.token.env", "does not match an environment variable name")]),
]


@pytest.mark.parametrize(("files", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(tmp_path: Path, files: dict[str, str], expected: list[tuple[str, int, str, str]]) -> None:
    specs = load(specdir(tmp_path, files))
    got = errors(specs)
    assert [(d.file.name, d.line, d.path) for d in got] == [(f, n, p) for f, n, p, _ in expected], got
    for d, (_, _, _, fragment) in zip(got, expected, strict=True):
        assert fragment in d.message, d.message
    assert not find_leaks(str(d) for d in specs.diagnostics)
    # the base connections are never collateral damage
    assert {"src", "aws", "akv", "oci", "ado", "wm"} <= set(specs.connections)


def test_no_credential_value_in_any_message(tmp_path: Path) -> None:
    """Literal credentials anywhere (wrong field, wrong type, wrong app) are never echoed."""
    a, b, c = CANARIES
    specs = load(specdir(tmp_path, {"c.yaml": f"""
        kind: Connection
        name: leaky
        app: azure-key-vault
        credentials:
          method: client-secret
          tenantId: [{a}]
          clientId: {{env: X, file: {b}}}
          clientSecret: {c}
          extra: {a}
        """}))
    assert len(errors(specs)) >= 3
    assert not find_leaks(str(d) for d in specs.diagnostics)


def test_multiple_errors_are_reported_together(tmp_path: Path) -> None:
    specs = load(specdir(tmp_path, {"s.yaml": """
        kind: SecretSync
        name: Bad_Name
        environment: dev
        secretPath: app
        destination: windmill
        connection: nope
        destinationConfig:
          workspace: ws
          path: x/
          colour: blue
        syncOptions:
          initialSyncBehavior: sometimes
          keySchema: no-placeholder
        """}))
    got = [(d.line, d.path) for d in errors(specs)]
    assert got == [  # schema and semantic problems, in one pass
        (2, "$.name"), (4, "$.secretPath"), (6, "$.connection"), (9, "$.destinationConfig.path"),
        (10, "$.destinationConfig.colour"), (12, "$.syncOptions.initialSyncBehavior"),
        (13, "$.syncOptions.keySchema"),
    ]
    assert specs.invalid_syncs["Bad_Name"] == tuple(errors(specs))


def test_errors_across_documents_and_files_sorted(tmp_path: Path) -> None:
    specs = load(specdir(tmp_path, {
        "a.yaml": "kind: Nope\n---\nkind: SecretSync\nname: x\n",
        "b.yaml": "kind: Connection\nname: c\napp: nope\n",
    }))
    assert [(d.file.name, d.line, d.path) for d in errors(specs)] == [
        ("a.yaml", 1, "$.kind"),
        ("a.yaml", 3, "$.connection"), ("a.yaml", 3, "$.destination"), ("a.yaml", 3, "$.destinationConfig"),
        ("a.yaml", 3, "$.environment"), ("a.yaml", 3, "$.secretPath"),
        ("b.yaml", 3, "$.app"),
    ]


def test_one_broken_file_does_not_stop_the_others(tmp_path: Path) -> None:
    specs = load(specdir(tmp_path, {
        "1-broken.yaml": "kind: SecretSync\nname: [\n",
        "2-good.yaml": WINDMILL,
        "3-bad-doc.yaml": _edit(WINDMILL, "name: wm-sync", "name: other") + "bogus: 1\n---\n"
        + _edit(AWS, "name: aws-sync", "name: aws-ok"),
    }))
    assert set(specs.syncs) == {"wm-sync", "aws-ok"}
    assert set(specs.invalid_syncs) == {"other"}
    assert not specs.ok
    assert sorted(d.file.name for d in errors(specs)) == ["1-broken.yaml", "3-bad-doc.yaml"]


def test_duplicate_names_error_at_both_places(tmp_path: Path) -> None:
    other = _edit(WINDMILL, "path: f/app/", "path: f/b/")
    specs = load(specdir(tmp_path, {"a.yaml": WINDMILL, "b.yaml": other}))
    got = errors(specs)
    assert [(d.file.name, d.line, d.path) for d in got] == [("a.yaml", 2, "$.name"), ("b.yaml", 2, "$.name")]
    assert "duplicate SecretSync name 'wm-sync' (also defined at " in got[0].message
    assert str(tmp_path / "b.yaml") + ":2" in got[0].message
    assert "wm-sync" not in specs.syncs and len(specs.invalid_syncs["wm-sync"]) == 2


def test_duplicate_connection_breaks_its_users(tmp_path: Path) -> None:
    specs = load(specdir(tmp_path, {
        "c.yaml": "kind: Connection\nname: wm\napp: windmill\n"
                  "credentials: {method: token, token: {env: T}}\n",
        "s.yaml": WINDMILL,
    }))
    got = [(d.file.name, d.line, d.path) for d in errors(specs)]
    assert got == [("c.yaml", 2, "$.name"), ("connections.yaml", 42, "$.name"), ("s.yaml", 6, "$.connection")]
    assert "wm" not in specs.connections
    assert "connection 'wm' is defined more than once" in specs.invalid_syncs["wm-sync"][0].message


def test_broken_connection_breaks_its_users(tmp_path: Path) -> None:
    specs = load(specdir(tmp_path, {
        "c.yaml": "kind: Connection\nname: wm2\napp: windmill\n"
                  "credentials: {method: token, token: literal}\n",
        "s.yaml": _edit(WINDMILL, "connection: wm", "connection: wm2"),
    }))
    got = errors(specs)
    assert [(d.file.name, d.line, d.path) for d in got] == [("c.yaml", 4, "$.credentials.token"),
                                                            ("s.yaml", 6, "$.connection")]
    assert got[1].message == f"connection 'wm2' is invalid (see {tmp_path / 'c.yaml'}:2)"


def test_models_are_built_with_defaults_and_normalisation(tmp_path: Path) -> None:
    sync = _edit(AWS, "secretPath: /app", "secretPath: /app/")
    specs = load(specdir(tmp_path, {"s.yaml": sync + _dedent("""
        reconcile:
          interval: 1h30m
          retryInterval: 45s
          suspend: true
          drift: report
          maxDeletes: 3
        """)}))
    assert specs.diagnostics == ()
    s = specs.syncs["aws-sync"]
    assert s.secret_path == "/app" and s.source == "src" and s.location.line == 2
    assert s.is_enabled and s.is_auto_sync_enabled and s.project_id is None
    assert s.initial_sync_behavior == "overwrite-destination"
    assert s.sync_options["recoveryWindowInDays"] == 30 and s.disable_secret_deletion is False
    assert s.key_schema == "app/{{secretKey}}"
    r = s.reconcile
    assert (r.interval_seconds, r.retry_interval_seconds, r.suspend, r.drift, r.max_deletes) == (
        5400.0, 45.0, True, "report", (3.0, False))
    with pytest.raises(TypeError):
        s.destination_config["region"] = "x"  # type: ignore[index]


def test_connections_are_built_with_refs_and_absolute_paths(tmp_path: Path) -> None:
    from reconciler.specs.model import CredentialRef

    specs = load(specdir(tmp_path, {}))
    akv = specs.connections["akv"]
    assert akv.method == "client-secret"
    assert akv.credentials["tenantId"] == "00000000-0000-0000-0000-000000000000"
    assert akv.credentials["clientId"] == CredentialRef("env", "AZURE_CLIENT_ID")
    assert akv.credentials["clientSecret"] == CredentialRef("file", str(tmp_path / "akv-secret.txt"))
    assert specs.connections["ado"].credentials["token"] == CredentialRef("credential", "ado-pat")
    assert specs.connections["src"].path == tmp_path / "secrets.yaml"
    assert specs.connections["aws"].settings["endpoint"] == "http://127.0.0.1:5555"


def test_aws_connection_without_credentials_uses_default_chain(tmp_path: Path) -> None:
    specs = load(specdir(tmp_path, {"c.yaml": "kind: Connection\nname: aws2\napp: aws\n"}))
    assert specs.diagnostics == ()
    assert specs.connections["aws2"].method == "default"


def test_secrets_file_inside_spec_dir_is_not_a_spec(tmp_path: Path) -> None:
    specs = load(specdir(tmp_path, {"secrets.yaml": "dev:\n  /app:\n    KEY: CANARY-7f3a9c1e-do-not-leak\n"}))
    assert specs.diagnostics == ()


def test_missing_secrets_file_is_a_warning(tmp_path: Path) -> None:
    root = specdir(tmp_path, {})
    (root / "secrets.yaml").unlink()
    specs = load(root)
    assert specs.ok
    (d,) = specs.diagnostics
    assert (d.severity, d.line, d.path) == ("warning", 5, "$.path")


def test_project_id_on_file_source_is_a_warning(tmp_path: Path) -> None:
    specs = load(specdir(tmp_path, {"s.yaml": WINDMILL + "projectId: p\n"}))
    assert specs.ok and "wm-sync" in specs.syncs
    assert [(d.severity, d.path) for d in specs.diagnostics] == [("warning", "$.projectId")]


def test_import_into_read_only_source_is_refused(tmp_path: Path) -> None:
    specs = load(specdir(tmp_path, {
        "k.yaml": "kind: Connection\nname: ro\napp: file\npath: secrets.yaml\nwritable: false\n",
        "s.yaml": _edit(WINDMILL, "syncOptions:\n",
                        "syncOptions:\n  initialSyncBehavior: import-prioritize-source\n") + "source: ro\n",
    }))
    (d,) = errors(specs)
    assert (d.line, d.path) == (11, "$.syncOptions.initialSyncBehavior")
    assert "has writable: false" in d.message


def test_empty_directory_is_a_warning(tmp_path: Path) -> None:
    specs = load(tmp_path)
    assert specs.ok and specs.syncs == {}
    assert specs.diagnostics[0].severity == "warning"


def test_missing_directory_is_an_error(tmp_path: Path) -> None:
    specs = load(tmp_path / "absent")
    assert not specs.ok and specs.diagnostics[0].message == "spec directory does not exist"


VALID_SYNC: dict[str, object] = {
    "kind": "SecretSync", "name": "s", "environment": "dev", "secretPath": "/app",
    "destination": "aws-secrets-manager", "connection": "aws", "source": "src",
    "destinationConfig": {"region": "us-east-1", "mappingBehavior": "many-to-one", "secretName": "n"},
    "syncOptions": {"keySchema": "a/{{secretKey}}", "tags": [{"key": "k", "value": "v"}]},
    "reconcile": {"interval": "5m", "maxDeletes": "5%"},
}
VALID_CONN: dict[str, object] = {
    "kind": "Connection", "name": "f", "app": "file", "path": "secrets.yaml", "writable": True,
}
VALID_AWS_CONN: dict[str, object] = {
    "kind": "Connection", "name": "a2", "app": "aws", "endpoint": "http://127.0.0.1:1",
    "credentials": {"method": "access-key", "accessKeyId": "AK", "secretAccessKey": {"env": "S"}},
}
ODD_VALUES: list[object] = [None, 1, -1.5, True, [], [None], {}, {"env": None}, "", "x\x00y", "~",
                            "{{secretKey}}"]


def _variants(doc: dict[str, object]) -> list[dict[str, object]]:
    out = []
    for key, value in doc.items():
        for odd in ODD_VALUES:
            out.append({**doc, key: odd})
        if isinstance(value, dict):
            for sub in value:
                for odd in ODD_VALUES:
                    out.append({**doc, key: {**value, sub: odd}})
    return out


def test_load_never_raises_on_odd_values(tmp_path: Path) -> None:
    """Every field of a valid sync and connection, swapped for odd values: diagnostics, no crash."""
    import yaml

    root = specdir(tmp_path, {})
    for i, doc in enumerate(_variants(VALID_SYNC) + _variants(VALID_CONN) + _variants(VALID_AWS_CONN)):
        (root / "odd.yaml").write_text(yaml.safe_dump(doc))
        specs = load(root)
        assert isinstance(specs.diagnostics, tuple), i
