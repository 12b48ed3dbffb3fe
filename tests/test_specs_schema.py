"""The published JSON Schemas: well-formed, wired together, and accepting what the docs show."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from reconciler.destinations import catalog
from reconciler.specs.loader import load
from reconciler.specs.schema import BASE_URI, schema_documents

DESTINATIONS = catalog.default().ids()

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data" / "specs"
SEEDS = sorted((DATA / "seed-requests").glob("*.json"))
EXPECTED_FILES = {
    "reconciler.schema.json", "connection.json", "reconcile.json", "common.json", "notifier.json",
    *(f"destination-{d}.json" for d in DESTINATIONS),
}


def test_every_schema_file_is_valid_2020_12_with_matching_id() -> None:
    docs = schema_documents()
    assert set(docs) == EXPECTED_FILES
    for name, doc in docs.items():
        Draft202012Validator.check_schema(doc)
        assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert doc["$id"] == BASE_URI + name


def test_top_level_schemas_dir_is_the_package_dir() -> None:
    link = REPO / "schemas"
    assert link.is_symlink()
    assert link.resolve() == (REPO / "reconciler" / "schemas").resolve()


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        out.append((path, node))
        for k, v in node.items():
            out += _walk(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _walk(v, f"{path}/{i}")
    return out


def test_every_object_with_properties_is_closed_or_dispatches() -> None:
    """additionalProperties: false everywhere, except where a dispatcher $refs closed schemas."""
    dispatchers = {("reconciler.schema.json", ""), ("connection.json", "")}
    checked = 0
    for name, doc in schema_documents().items():
        for path, node in _walk(doc):
            if "properties" not in node or (name, path) in dispatchers:
                continue
            if path.endswith(("/if", "/then", "/else")):  # conditions and overlays, not objects
                continue
            closed = node.get("additionalProperties") is False
            dispatches = set(node["properties"]) == {"method"} and "allOf" in node
            assert closed or dispatches, f"{name}{path} is open"
            checked += 1
    assert checked > 30


def test_every_yaml_example_points_editors_at_the_schema() -> None:
    for f in sorted((REPO / "examples" / "syncs").glob("*.yaml")):
        first = f.read_text().splitlines()[0]
        assert first == "# yaml-language-server: $schema=../../schemas/reconciler.schema.json", f


def test_examples_load_with_zero_diagnostics() -> None:
    specs = load(REPO / "examples" / "syncs")
    assert specs.diagnostics == ()
    assert sorted(s.destination for s in specs.syncs.values() if s.name != "kms-to-aws") == sorted(DESTINATIONS)
    assert specs.invalid_syncs == {}
    assert all(s.source == "local-secrets" for s in specs.syncs.values() if s.name != "kms-to-aws")
    assert specs.syncs["kms-to-aws"].source == "hanzo-kms" and specs.connections["hanzo-kms"].app == "kms"
    src = specs.connections["local-secrets"]
    assert src.path == (REPO / "examples" / "secrets.yaml").resolve()
    example_secrets = yaml.safe_load((REPO / "examples" / "secrets.yaml").read_text())
    assert "DB_PASSWORD" in example_secrets["dev"]["/my-secrets"]


def _seed_sync(seed: Path) -> dict[str, Any]:
    """A seed page's sample request, translated: connectionId -> connection name, + kind/destination."""
    raw = json.loads(seed.read_text())
    body: dict[str, Any] = dict(raw["body"])
    dest = raw["url"].rsplit("/", 1)[1]
    body.pop("connectionId")
    body.update(kind="SecretSync", destination=dest, connection=CONNECTION_FOR[dest])
    if dest == "oci-vault":  # the page elides its OCIDs as "..."
        assert set(body["destinationConfig"].values()) == {"..."}
        body["destinationConfig"] = {
            "compartmentOcid": "ocid1.compartment.oc1..aaaaaaaexample",
            "vaultOcid": "ocid1.vault.oc1.iad.exampleuniqueid",
            "keyOcid": "ocid1.key.oc1.iad.exampleuniqueid.examplekey",
        }
    return body


CONNECTION_FOR = {
    "aws-secrets-manager": "aws", "azure-key-vault": "akv", "oci-vault": "oci",
    "azure-devops": "ado", "windmill": "wm",
}
KMS = {
    "kind": "Connection", "name": "hanzo-kms", "app": "kms", "siteUrl": "https://app.kms.hanzo.ai",
    "credentials": {"method": "universal-auth", "clientId": {"env": "KMS_CLIENT_ID"},
                    "clientSecret": {"credential": "kms-client-secret"}},
}


@pytest.mark.parametrize("seed", SEEDS, ids=[s.stem for s in SEEDS])
def test_each_seed_sample_request_validates(seed: Path, tmp_path: Path) -> None:
    shutil.copytree(DATA / "base", tmp_path, dirs_exist_ok=True)
    body = _seed_sync(seed)
    # the seeds read from Hanzo KMS (projectId given): the kms connection is the source
    body["source"] = "hanzo-kms"
    (tmp_path / "kms.yaml").write_text(yaml.safe_dump(KMS))
    (tmp_path / "sync.yaml").write_text(yaml.safe_dump(body, sort_keys=False))
    specs = load(tmp_path)
    assert specs.diagnostics == ()
    sync = specs.syncs[body["name"]]
    assert sync.project_id == "3c90c3cc-0d44-4b50-8888-8dd25736052a"
    assert sync.secret_path == "/my-secrets" and sync.environment == "dev"
    assert dict(sync.destination_config).items() >= body["destinationConfig"].items()


def test_seed_without_source_uses_the_only_source(tmp_path: Path) -> None:
    shutil.copytree(DATA / "base", tmp_path, dirs_exist_ok=True)
    body = _seed_sync(DATA / "seed-requests" / "windmill.json")
    body.pop("projectId")
    (tmp_path / "sync.yaml").write_text(yaml.safe_dump(body))
    specs = load(tmp_path)
    assert specs.diagnostics == ()
    assert specs.syncs["my-windmill-sync"].source == "src"


# Every app and credentials method of DESIGN §2, with the pinned field names.
VALID_CONNECTIONS: list[dict[str, Any]] = [
    {"app": "file", "path": "secrets.yaml", "writable": True},
    {"app": "kms", "siteUrl": "https://kms.example.com", "caBundle": "ca.pem",
     "credentials": {"method": "universal-auth", "clientId": "id", "clientSecret": {"env": "S"}}},
    {"app": "aws"},
    {"app": "aws", "endpoint": "http://127.0.0.1:4566", "region": "eu-west-1",
     "credentials": {"method": "default"}},
    {"app": "aws", "credentials": {"method": "profile", "profile": "prod"}},
    {"app": "aws", "credentials": {"method": "access-key", "accessKeyId": {"env": "AK"},
                                   "secretAccessKey": {"file": "/run/secrets/sk"},
                                   "sessionToken": {"credential": "st"}}},
    {"app": "aws", "region": "us-gov-west-1",
     "credentials": {"method": "assume-role", "roleArn": "arn:aws:iam::123456789012:role/r",
                     "externalId": "e"}},
    {"app": "azure-key-vault", "authorityHost": "https://login.microsoftonline.us", "caBundle": "/etc/ca.pem",
     "credentials": {"method": "client-secret", "tenantId": "t", "clientId": "c",
                     "clientSecret": {"env": "S"}}},
    {"app": "azure-key-vault", "credentials": {"method": "managed-identity", "clientId": "c"}},
    {"app": "azure-key-vault", "credentials": {"method": "default"}},
    {"app": "azure-devops", "organizationUrl": "https://dev.azure.com/o",
     "credentials": {"method": "pat", "token": {"credential": "pat"}}},
    {"app": "azure-devops", "organizationUrl": "https://dev.azure.com/o",
     "credentials": {"method": "client-secret", "tenantId": {"env": "T"}, "clientId": "c",
                     "clientSecret": {"env": "S"}}},
    {"app": "oci", "endpoint": "https://127.0.0.1:9443", "region": "us-ashburn-1",
     "credentials": {"method": "config-file", "file": "~/.oci/config", "profile": "DEFAULT"}},
    {"app": "oci", "credentials": {"method": "api-key", "tenancy": "ocid1.tenancy.oc1..a",
                                   "user": "ocid1.user.oc1..b", "fingerprint": "aa:bb",
                                   "privateKey": {"file": "key.pem"}, "passphrase": {"env": "P"}}},
    {"app": "oci", "credentials": {"method": "instance-principal"}},
    {"app": "windmill", "instanceUrl": "https://windmill.example.com",
     "credentials": {"method": "token", "token": {"env": "WM"}}},
]


def _conn_id(c: dict[str, Any]) -> str:
    return f"{c['app']}-{c.get('credentials', {}).get('method')}"


@pytest.mark.parametrize("conn", VALID_CONNECTIONS, ids=_conn_id)
def test_valid_connections(conn: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"kind": "Connection", "name": "c", **conn}))
    if conn["app"] == "file":
        (tmp_path / "secrets.yaml").write_text("{}\n")
    specs = load(tmp_path)
    assert specs.diagnostics == ()
    assert specs.connections["c"].app == conn["app"]


SECRET_FIELDS = ["clientSecret", "secretAccessKey", "sessionToken", "token", "privateKey", "passphrase"]


@pytest.mark.parametrize("secret_field", SECRET_FIELDS)
def test_secret_fields_refuse_literals_in_every_method(secret_field: str) -> None:
    """Wherever a secret-bearing field appears in connection.json, it is a reference only."""
    doc = schema_documents()["connection.json"]
    seen = 0
    for _, node in _walk(doc):
        props = node.get("properties", {})
        if secret_field in props:
            assert props[secret_field] == {"$ref": "common.json#/$defs/secretRef"}
            seen += 1
    assert seen >= 1


@pytest.mark.parametrize("tag_value", ["Ünïcödé 值 ٣", "a b_c.d:e/f=g+h-i@j", ""])
def test_aws_tags_accept_unicode_letters_numbers_and_spaces(tag_value: str, tmp_path: Path) -> None:
    shutil.copytree(DATA / "base", tmp_path, dirs_exist_ok=True)
    sync = {"kind": "SecretSync", "name": "t", "environment": "dev", "secretPath": "/app",
            "destination": "aws-secrets-manager", "connection": "aws",
            "destinationConfig": {"region": "us-east-1", "mappingBehavior": "one-to-one"},
            "syncOptions": {"keySchema": "t/{{secretKey}}", "tags": [{"key": "k", "value": tag_value}]}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(sync, allow_unicode=True))
    assert load(tmp_path).diagnostics == ()


def test_oci_accepts_other_realms(tmp_path: Path) -> None:
    shutil.copytree(DATA / "base", tmp_path, dirs_exist_ok=True)
    sync = {"kind": "SecretSync", "name": "t", "environment": "dev", "secretPath": "/app",
            "destination": "oci-vault", "connection": "oci",
            "destinationConfig": {"compartmentOcid": "ocid1.compartment.oc2..aaaa",
                                  "vaultOcid": "ocid1.vault.oc2.us-langley-1.bbbb",
                                  "keyOcid": "ocid1.key.oc2.us-langley-1.bbbb.cccc"}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(sync))
    assert load(tmp_path).diagnostics == ()


def test_aws_tags_leave_room_for_ownership_markers(tmp_path: Path) -> None:
    shutil.copytree(DATA / "base", tmp_path, dirs_exist_ok=True)
    sync = {"kind": "SecretSync", "name": "t", "environment": "dev", "secretPath": "/app",
            "destination": "aws-secrets-manager", "connection": "aws",
            "destinationConfig": {"region": "us-east-1", "mappingBehavior": "one-to-one"},
            "syncOptions": {"tags": [{"key": f"k{i}", "value": "v"} for i in range(49)]}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(sync))
    (d,) = load(tmp_path).diagnostics
    assert (d.path, d.message) == ("$.syncOptions.tags", "must have at most 48 items (got 49)")


def test_trailing_newline_does_not_sneak_past_a_pattern(tmp_path: Path) -> None:
    shutil.copytree(DATA / "base", tmp_path, dirs_exist_ok=True)
    (tmp_path / "c.yaml").write_text('kind: Connection\nname: "wm2\\n"\napp: aws\n')
    (d,) = load(tmp_path).diagnostics
    assert (d.line, d.path) == (2, "$.name") and "does not match a slug" in d.message


def test_references_resolve_as_json_schema_resolves_them() -> None:
    """Validation follows our `$ref`s itself (start-up cost): it must land where a JSON Schema
    resolver lands, for every reference in every schema."""
    from referencing import Registry
    from referencing.jsonschema import DRAFT202012

    from reconciler.specs.schema import _lookup

    docs = schema_documents()
    registry: Registry[Any] = Registry().with_resources(
        (BASE_URI + name, DRAFT202012.create_resource(doc)) for name, doc in docs.items())
    refs = 0
    for name, doc in docs.items():
        for _path, node in _walk(doc):
            if "$ref" in node:
                expected = registry.resolver(BASE_URI + name).lookup(node["$ref"]).contents
                assert _lookup(node["$ref"], name, docs)[1] is expected, (name, node["$ref"])
                refs += 1
    assert refs > 90
    with pytest.raises(ValueError, match="not a reference to one of our schemas"):
        _lookup("https://example.com/other.json#/x", "common.json", docs)


@pytest.mark.parametrize("url", ["http://127.0.0.1:abc", "http://127.0.0.1:99999", "http://[::1", "https://h:-1/"])
def test_a_url_whose_port_or_host_cannot_be_parsed_is_a_validation_error(url: str, tmp_path: Path) -> None:
    """They passed the pattern and failed at the first run: botocore's ValueError, httpx's
    InvalidURL -- an internal error instead of a diagnostic on the line."""
    (tmp_path / "c.yaml").write_text(f'kind: Connection\nname: wm\napp: windmill\ninstanceUrl: "{url}"\n'
                                     "credentials: {method: token, token: {env: T}}\n")
    (d,) = load(tmp_path).diagnostics
    assert (d.line, d.path) == (4, "$.instanceUrl") and "does not match an http(s) URL" in d.message, d


@pytest.mark.parametrize("url", ["http://127.0.0.1:8446", "https://[::1]:443/x", "https://dev.azure.com/org"])
def test_ordinary_urls_still_validate(url: str, tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(f'kind: Connection\nname: wm\napp: windmill\ninstanceUrl: "{url}"\n'
                                     "credentials: {method: token, token: {env: T}}\n")
    assert load(tmp_path).diagnostics == ()


@pytest.mark.parametrize(("value", "message"), [
    (".nan", "must be a finite number (got nan)"),  # NaN passed every bound: it validated
    (".inf", "must be a finite number (got inf)"),
    ("0", "must be greater than 0 (got 0)"),  # was "is invalid (exclusiveMinimum)"
])
def test_numbers_are_finite_and_bounds_say_which(value: str, message: str, tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(f"kind: Connection\nname: a\napp: aws\nreadTimeout: {value}\n")
    found = load(tmp_path).diagnostics  # .inf is also over the maximum: said as well
    assert (4, "$.readTimeout", message) in [(d.line, d.path, d.message) for d in found], found


def test_a_list_item_given_twice_is_named(tmp_path: Path) -> None:
    """It was "is invalid (uniqueItems)"."""
    (tmp_path / "n.yaml").write_text("kind: Notifier\nname: n\nurl: {env: X}\nevents: [sync-failed, sync-failed]\n")
    (d,) = load(tmp_path).diagnostics
    assert (d.line, d.path, d.message) == (4, "$.events", "lists 'sync-failed' twice"), d
