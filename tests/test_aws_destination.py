"""AWS Secrets Manager destination against a real moto server (boto3 is never mocked).

Faults moto cannot produce (throttling, AWS's own error codes where moto diverges) are
injected with botocore's ``before-send`` event: the stubbed response then runs through
botocore's real parser and retry handler, exactly like one from the wire.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import pytest

from reconciler import calls
from reconciler.changes import Action, Change, ChangeResult
from reconciler.destinations import catalog, errors
from reconciler.destinations.aws import client as aws_client
from reconciler.destinations.aws import rules as aws_rules
from reconciler.destinations.aws.rules import normalize_kms_key, request_token
from reconciler.destinations.aws.session import SCHEDULED_MSG, AwsSecretsManager
from reconciler.destinations.catalog import SyncView
from reconciler.destinations.contract import ConnectionInfo
from reconciler.model import Fingerprinter, Lifecycle, SecretValue, SourceSecret, frozen_map
from tests.support.canary import CANARIES, find_leaks
from tests.support.dest import Dest, view

KIND = "aws-secrets-manager"
FP = Fingerprinter(b"0123456789abcdef0123456789abcdef")
C1, C2, C3 = CANARIES


def target(schema: str | None = None, *, many: bool = False, secret_name: str | None = None,
           **options: Any) -> SyncView:
    config: dict[str, Any] = {"region": "us-east-1",
                              "mappingBehavior": "many-to-one" if many else "one-to-one"}
    if secret_name:
        config["secretName"] = secret_name
    if schema:
        options["keySchema"] = schema
    return view(config=config, options=options, connection="aws")


def connection(endpoint: str, **settings: Any) -> ConnectionInfo:
    base = {"endpoint": endpoint, "maxAttempts": 1}
    base.update(settings)
    return ConnectionInfo(name="aws", app="aws", settings=base, method="access-key",
                          credentials={"accessKeyId": "testing", "secretAccessKey": SecretValue("testing")})


@pytest.fixture
def make(aws_endpoint: str) -> Iterator[Callable[..., Dest]]:
    made: list[Dest] = []

    def _make(*args: Any, settings: Mapping[str, Any] | None = None, **kw: Any) -> Dest:
        d = Dest(KIND, target(*args, **kw), connection(aws_endpoint, **(settings or {})))
        made.append(d)
        return d

    yield _make
    for d in made:
        d.close()


def secret(key: str, value: str, **metadata: str) -> SourceSecret:
    return SourceSecret(key=key, value=SecretValue(value), metadata=frozen_map(metadata))


def change(action: Action, key: str, value: str | None = None, *, value_changed: bool = True,
           props: Mapping[str, str] | None = None, unset: tuple[str, ...] = ()) -> Change:
    v = SecretValue(value) if value is not None else None
    return Change(action=action, key=key, value=v, fingerprint=FP(v) if v else None,
                  value_changed=value_changed, set_properties=frozen_map(props), unset_properties=unset)


def run(dest: Dest, changes: list[Change]) -> list[ChangeResult]:
    results: list[ChangeResult] = []
    dest.apply(changes, results.append)
    leaks = find_leaks([r.error for r in results if r.error])
    assert not leaks, leaks
    # keys run concurrently and report in completion order; tests read them in plan order
    order = {id(c): i for i, c in enumerate(changes)}
    return sorted(results, key=lambda r: order[id(r.change)])


def current(sm: Any, name: str) -> str:
    return str(sm.get_secret_value(SecretId=name)["SecretString"])


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


def inject(dest: Dest, op: str, code: str, message: str = "stubbed",
           status: int = 400, times: int | None = 1) -> None:
    """The next ``times`` (None = every) ``op`` requests answer this AWS error instead."""
    from botocore.awsrequest import AWSResponse

    left = [times]

    def handler(request: Any, **_: Any) -> AWSResponse | None:
        if left[0] is not None:
            if left[0] <= 0:
                return None
            left[0] -= 1
        body = json.dumps({"__type": code, "message": message}).encode()
        headers: Any = {"content-type": "application/x-amz-json-1.1"}
        return AWSResponse(request.url, status, headers, _Body(body))

    dest.client.meta.events.register(f"before-send.secrets-manager.{op}", cast(Any, handler))


# -- pure parts ------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [
    (None, "alias/aws/secretsmanager"),
    ("", "alias/aws/secretsmanager"),
    ("  ", "alias/aws/secretsmanager"),
    ("alias/aws/secretsmanager", "alias/aws/secretsmanager"),
    ("arn:aws:kms:us-east-1:123456789012:alias/aws/secretsmanager", "alias/aws/secretsmanager"),
    ("arn:aws-us-gov:kms:us-gov-west-1:123456789012:alias/aws/secretsmanager", "alias/aws/secretsmanager"),
    ("alias/payments", "alias/payments"),
    ("arn:aws:kms:eu-west-1:123456789012:alias/payments", "alias/payments"),
    ("arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
     "1234abcd-12ab-34cd-56ef-1234567890ab"),
    ("key/1234abcd-12ab-34cd-56ef-1234567890ab", "1234abcd-12ab-34cd-56ef-1234567890ab"),
    ("1234abcd-12ab-34cd-56ef-1234567890ab", "1234abcd-12ab-34cd-56ef-1234567890ab"),
])
def test_normalize_kms_key(raw: str | None, expected: str) -> None:
    assert normalize_kms_key(raw) == expected


@pytest.mark.parametrize(("code", "status", "cls"), [
    ("ThrottlingException", 400, errors.Throttled),
    ("TooManyRequestsException", 429, errors.Throttled),
    ("ResourceNotFoundException", 400, errors.NotFound),
    ("ResourceExistsException", 400, errors.Conflict),
    ("InternalServiceError", 500, errors.Transient),
    ("SomethingNew", 503, errors.Transient),
    ("AccessDeniedException", 400, errors.AuthError),
    ("UnrecognizedClientException", 400, errors.AuthError),
    ("InvalidSignatureException", 400, errors.AuthError),
    ("ExpiredTokenException", 400, errors.AuthError),
    ("InvalidParameterException", 400, errors.Permanent),
    ("LimitExceededException", 400, errors.Permanent),
])
def test_error_codes_map_onto_the_error_tree(code: str, status: int, cls: type) -> None:
    err = aws_client.from_code(code, "PutSecretValue", "app/KEY", status)
    assert type(err) is cls
    assert str(err) == f"app/KEY: PutSecretValue failed: {code}" + (
        " (retries exhausted)" if cls is errors.Throttled else "")


def test_request_tokens_are_stable_and_depend_on_the_replaced_version() -> None:
    a = request_token("put", "K", "fp", "v1")
    assert a == request_token("put", "K", "fp", "v1") and 32 <= len(a) <= 64
    assert a != request_token("put", "K", "fp", "v2")


def test_catalog_opens_an_aws_session_and_refuses_unknown_ids(aws_endpoint: str) -> None:
    d = catalog.default()[KIND].open(target(), connection(aws_endpoint))
    assert isinstance(d, AwsSecretsManager)
    d.close()
    with pytest.raises(errors.ConfigError, match="unknown destination"):
        catalog.default()["vault"]


def test_importing_the_catalog_and_descriptor_does_not_load_boto3() -> None:
    code = ("import sys, reconciler.destinations.catalog as c, reconciler.destinations.aws; c.default(); "
            "sys.exit(1 if 'boto3' in sys.modules or 'botocore' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_config_errors(aws_endpoint: str) -> None:
    no_region = view("s")
    with pytest.raises(errors.ConfigError, match="region"):
        AwsSecretsManager(no_region, connection(aws_endpoint))
    with pytest.raises(errors.ConfigError, match="recoveryWindowInDays"):
        AwsSecretsManager(target(recoveryWindowInDays=3), connection(aws_endpoint))
    missing_key = ConnectionInfo(name="aws", app="aws", settings={"endpoint": aws_endpoint},
                                 method="access-key", credentials={"accessKeyId": "x"})
    with pytest.raises(errors.ConfigError, match="secretAccessKey"):
        AwsSecretsManager(target(), missing_key)
    profile = ConnectionInfo(name="aws", app="aws", settings={"endpoint": aws_endpoint, "profile": "nope"},
                             method="profile")
    with pytest.raises(errors.ConfigError, match="profile"):
        AwsSecretsManager(target(), profile)
    with pytest.raises(errors.ConfigError, match="method"):
        AwsSecretsManager(target(), ConnectionInfo(name="aws", app="aws", method="magic"))


# -- scope and desired state -----------------------------------------------------------------


def test_scope_one_to_one_and_many_to_one(make: Callable[..., Dest]) -> None:
    s = make("app/{{environment}}/{{secretKey}}").scope()
    assert (s.schema, s.environment, s.exact, s.list_prefix) == (
        "app/{{environment}}/{{secretKey}}", "dev", None, "app/dev/")
    assert make().scope().list_prefix == ""
    assert make("{{secretKey}}_{{environment}}").scope().list_prefix == ""
    m = make("app/{{environment}}/{{secretKey}}", many=True, secret_name="bundle").scope()
    assert m.exact == frozenset({"app/dev/bundle"}) and m.list_prefix == "app/dev/bundle"
    assert m.schema is None


def test_desired_one_to_one_properties(make: Callable[..., Dest]) -> None:
    d = make("app/{{environment}}/{{secretKey}}", keyId="arn:aws:kms:us-east-1:1:alias/pay",
             tags=[{"key": "team", "value": "payments"}, {"key": "tier", "value": "gold"}],
             syncSecretMetadataAsTags=True)
    specs, problems = d.desired([secret("DB_URL", C1, team="meta-loses", owner="alice"),
                                 secret("API_KEY", C2)])
    assert problems == []
    assert sorted((s.key, s.value.reveal(), s.source_keys) for s in specs) == [
        ("app/dev/API_KEY", C2, ("API_KEY",)), ("app/dev/DB_URL", C1, ("DB_URL",))]
    specs.sort(key=lambda s: s.key != "app/dev/DB_URL")
    assert dict(specs[0].properties) == {
        "kms": "alias/pay", "tag:team": "payments", "tag:tier": "gold", "tag:owner": "alice",
        "tag:managed-by": "reconciler", "tag:reconciler-sync": "payments"}
    plain = make().desired([secret("X", C1, owner="alice")])[0][0]
    assert dict(plain.properties) == {"kms": "alias/aws/secretsmanager", "tag:managed-by": "reconciler",
                                      "tag:reconciler-sync": "payments"}


def test_desired_reports_bad_names_collisions_and_tags(make: Callable[..., Dest]) -> None:
    d = make(syncSecretMetadataAsTags=True)
    specs, problems = d.desired([
        secret("GOOD", C1), secret("bad key", C1), secret("x" * 513, C1),
        secret("DUP", C1), secret("DUP", C2), secret("TAGGED", C1, **{"aws:reserved": "x"}),
        secret("DB-PASSWD", C3), secret("BANG", C1, **{"bad key!": "v"}), secret("SEMI", C1, team="a;b"),
    ])
    # "-" + 6 chars looks like AWS's ARN suffix but is a valid name addressed by full name:
    # kept and not reported (the engine would turn any message into a failing plan error)
    assert sorted(s.key for s in specs) == ["DB-PASSWD", "GOOD"]
    text = "\n".join(problems)
    assert "source key bad key: AWS secret name 'bad key' may only contain" in text
    assert "must be 1-512 characters" in text
    assert "DUP: source keys DUP, DUP all render to this AWS Secrets Manager name" in text
    assert "source key TAGGED: tag key 'aws:reserved' uses the reserved prefix" in text
    # AWS refuses these mid-apply (ValidationException); moto does not: caught at plan time
    assert "source key BANG: tag key 'bad key!' may only contain letters, digits, spaces and _.:/=+-@" in text
    assert "source key SEMI: tag 'team' has a value that may only contain letters, digits, spaces and " in text
    assert "DB-PASSWD" not in text and aws_rules.ambiguous_suffix("DB-PASSWD")
    assert not find_leaks(problems)


def test_desired_many_to_one(make: Callable[..., Dest]) -> None:
    d = make("app/{{environment}}/{{secretKey}}", many=True, secret_name="bundle",
             syncSecretMetadataAsTags=True, tags=[{"key": "team", "value": "pay"}])
    specs, problems = d.desired([secret("Z", "ü"), secret("A", C1, owner="alice")])
    assert problems == []
    (spec,) = specs
    assert spec.key == "app/dev/bundle" and spec.source_keys == ("Z", "A")
    assert spec.value.reveal() == '{"A":"' + C1 + '","Z":"ü"}'
    assert "tag:owner" not in spec.properties and spec.properties["tag:team"] == "pay"
    assert d.desired([]) == ([], [])
    assert make(many=True).desired([secret("A", C1)]) == (
        [], ["destinationConfig.secretName is required for many-to-one"])


# -- listing and reading ---------------------------------------------------------------------


def test_list_entries_reports_version_owner_properties_lifecycle(
        make: Callable[..., Dest], sm_client: Any) -> None:
    tags = [{"Key": "managed-by", "Value": "reconciler"}, {"Key": "reconciler-sync", "Value": "payments"},
            {"Key": "team", "Value": "x"}]
    sm_client.create_secret(Name="app/dev/OWNED", SecretString=C1,
                            KmsKeyId="arn:aws:kms:us-east-1:1:alias/pay", Tags=tags)
    v2 = sm_client.put_secret_value(SecretId="app/dev/OWNED", SecretString=C2)["VersionId"]
    sm_client.create_secret(Name="app/dev/FOREIGN", SecretString=C1)
    sm_client.create_secret(Name="app/dev/GONE", SecretString=C1)
    sm_client.delete_secret(SecretId="app/dev/GONE", RecoveryWindowInDays=7)
    sm_client.create_secret(Name="other/X", SecretString=C1)
    d = make("app/{{environment}}/{{secretKey}}")
    entries = {e.key: e for e in d.list_entries()}
    assert set(entries) == {"app/dev/OWNED", "app/dev/FOREIGN", "app/dev/GONE"}
    owned = entries["app/dev/OWNED"]
    assert owned.version == v2 and owned.owner == "payments" and owned.lifecycle is Lifecycle.ACTIVE
    assert dict(owned.properties) == {"kms": "alias/pay", "tag:managed-by": "reconciler",
                                      "tag:reconciler-sync": "payments", "tag:team": "x"}
    foreign = entries["app/dev/FOREIGN"]
    assert foreign.owner is None and dict(foreign.properties) == {"kms": "alias/aws/secretsmanager"}
    assert foreign.version is not None and foreign.fingerprint is None
    assert entries["app/dev/GONE"].lifecycle is Lifecycle.PENDING_DELETION
    assert calls.by_call(KIND) == {"ListSecrets": 1}


def test_list_pages_of_100(make: Callable[..., Dest], sm_client: Any) -> None:
    for i in range(250):
        sm_client.create_secret(Name=f"S{i:03d}", SecretString="v")
    calls.reset()
    assert len(make().list_entries()) == 250
    assert calls.by_call(KIND) == {"ListSecrets": 3}


def test_list_uses_the_name_filter_for_a_literal_prefix(
        make: Callable[..., Dest], sm_client: Any) -> None:
    for i in range(120):
        sm_client.create_secret(Name=f"app/dev/K{i:03d}", SecretString="v")
    for i in range(250):
        sm_client.create_secret(Name=f"decoy/dev/K{i:03d}", SecretString="v")
    sm_client.create_secret(Name="app/devX", SecretString="v")  # shares text, not the prefix
    calls.reset()
    entries = make("app/{{environment}}/{{secretKey}}").list_entries()
    assert len(entries) == 120 and all(e.key.startswith("app/dev/") for e in entries)
    assert calls.by_call(KIND) == {"ListSecrets": 2}  # ⌈120/100⌉, the 251 decoys never listed


def test_read_values_batches_20_names_per_call(
        make: Callable[..., Dest], sm_client: Any) -> None:
    for i in range(45):
        sm_client.create_secret(Name=f"K{i:02d}", SecretString=f"{C1}-{i}")
    calls.reset()
    values = make().read_values([f"K{i:02d}" for i in range(45)])
    assert {k: v.reveal() for k, v in values.items()} == {f"K{i:02d}": f"{C1}-{i}" for i in range(45)}
    assert calls.by_call(KIND) == {"BatchGetSecretValue": 3}


def test_read_values_leaves_out_missing_binary_and_deleted(
        make: Callable[..., Dest], sm_client: Any) -> None:
    sm_client.create_secret(Name="TEXT", SecretString=C1)
    sm_client.create_secret(Name="BIN", SecretBinary=b"\x00\x01")
    sm_client.create_secret(Name="GONE", SecretString=C1)
    sm_client.delete_secret(SecretId="GONE", RecoveryWindowInDays=7)
    values = make().read_values(["TEXT", "BIN", "GONE", "MISSING"])
    assert {k: v.reveal() for k, v in values.items()} == {"TEXT": C1}


def test_read_values_raises_translated_item_errors(make: Callable[..., Dest]) -> None:
    d = make()
    body = {"SecretValues": [], "Errors": [{"SecretId": "K", "ErrorCode": "DecryptionFailure",
                                            "Message": f"cannot decrypt {C1}"}]}
    from botocore.awsrequest import AWSResponse

    headers: Any = {}
    raw = _Body(json.dumps(body).encode())
    d.client.meta.events.register("before-send.secrets-manager.BatchGetSecretValue",
                                  cast(Any, lambda request, **_: AWSResponse(request.url, 200, headers, raw)))
    with pytest.raises(errors.Permanent) as info:
        d.read_values(["K"])
    assert str(info.value) == "K: BatchGetSecretValue failed: DecryptionFailure"


def test_many_to_one_read_and_import(make: Callable[..., Dest], sm_client: Any) -> None:
    sm_client.create_secret(Name="app/dev/bundle",
                            SecretString=json.dumps({"b": 1, "a": C1, "n": {"x": 1}, "t": True, "z": None}))
    d = make("app/{{environment}}/{{secretKey}}", many=True, secret_name="bundle")
    values = d.read_values(["app/dev/bundle"])
    assert values["app/dev/bundle"].reveal() == '{"a":"' + C1 + '","b":1,"n":{"x":1},"t":true,"z":null}'
    imported = {k: v.reveal() for k, v in d.importable(values).items()}
    assert imported == {"a": C1, "b": "1", "t": "true"}
    assert d.importable({"app/dev/bundle": SecretValue("not json")}) == {}


def test_import_one_to_one_strips_schema_and_skips_invalid_keys(
        make: Callable[..., Dest]) -> None:
    d = make("app/{{environment}}/{{secretKey}}")
    values = {"app/dev/DB_URL": SecretValue(C1), "app/dev/a+b@c": SecretValue(C2),
              "app/dev/nested/X": SecretValue(C3), "other/Y": SecretValue(C3)}
    assert {k: v.reveal() for k, v in d.importable(values).items()} == {"DB_URL": C1, "a+b@c": C2}
    plain = make()
    assert list(plain.importable({"a/b": SecretValue(C1), "OK": SecretValue(C2)})) == ["OK"]


# -- apply -----------------------------------------------------------------------------------


def test_apply_create_update_tags_kms_delete_restore(
        make: Callable[..., Dest], sm_client: Any) -> None:
    d = make(keyId="alias/pay")
    props = {"kms": "alias/pay", "tag:managed-by": "reconciler", "tag:reconciler-sync": "payments"}
    (r,) = run(d, [change(Action.CREATE, "K", C1, props=props)])
    assert r.ok and r.version and dict(r.properties) == props
    desc = sm_client.describe_secret(SecretId="K")
    assert desc["KmsKeyId"] == "alias/pay" and desc["Description"] == "Managed by reconciler (sync payments)"
    assert {t["Key"]: t["Value"] for t in desc["Tags"]} == {"managed-by": "reconciler",
                                                            "reconciler-sync": "payments"}
    assert desc["VersionIdsToStages"][r.version] == ["AWSCURRENT"]

    calls.reset()
    (r,) = run(d, [change(Action.UPDATE, "K", C2)])
    assert r.ok and current(sm_client, "K") == C2 and r.version
    assert calls.by_call(KIND) == {"PutSecretValue": 1}

    calls.reset()
    (r,) = run(d, [change(Action.UPDATE, "K", value_changed=False, props={"tag:team": "pay"},
                          unset=("tag:old",))])
    tags = {t["Key"]: t["Value"] for t in sm_client.describe_secret(SecretId="K")["Tags"]}
    assert r.ok and r.version is None and tags["team"] == "pay"
    assert calls.by_call(KIND) == {"TagResource": 1, "UntagResource": 1}

    before = sm_client.describe_secret(SecretId="K")["VersionIdsToStages"]
    calls.reset()
    (r,) = run(d, [change(Action.UPDATE, "K", value_changed=False, props={"kms": "alias/other"})])
    after = sm_client.describe_secret(SecretId="K")
    assert r.ok and after["KmsKeyId"] == "alias/other" and after["VersionIdsToStages"] == before
    assert calls.by_call(KIND) == {"UpdateSecret": 1}

    calls.reset()
    (r,) = run(d, [change(Action.UPDATE, "K", C3, props={"kms": "alias/pay"})])
    assert r.ok and current(sm_client, "K") == C3
    assert sm_client.describe_secret(SecretId="K")["KmsKeyId"] == "alias/pay"
    assert calls.by_call(KIND) == {"UpdateSecret": 1}  # value and key in one versioned call

    (r,) = run(d, [change(Action.DELETE, "K")])
    assert r.ok and r.version is None
    listed = sm_client.list_secrets(IncludePlannedDeletion=True)["SecretList"]
    assert [s["Name"] for s in listed if s.get("DeletedDate")] == ["K"]  # recovery window, not purged
    assert d.list_entries()[0].lifecycle is Lifecycle.PENDING_DELETION

    (r,) = run(d, [change(Action.RESTORE, "K")])
    assert r.ok and r.version is None
    (entry,) = d.list_entries()
    assert entry.lifecycle is Lifecycle.ACTIVE and current(sm_client, "K") == C3


def test_create_omits_the_default_key_and_delete_keeps_a_recovery_window(
        make: Callable[..., Dest], sm_client: Any) -> None:
    d = make(recoveryWindowInDays=7)
    sent: list[dict[str, Any]] = []
    d.client.meta.events.register("provide-client-params.secrets-manager.DeleteSecret",
                                  lambda params, **_: sent.append(dict(params)))
    assert run(d, [change(Action.CREATE, "K", C1, props={"kms": "alias/aws/secretsmanager"})])[0].ok
    assert "KmsKeyId" not in sm_client.describe_secret(SecretId="K")
    results = run(d, [change(Action.DELETE, "K"), change(Action.DELETE, "K"), change(Action.DELETE, "NEVER")])
    assert [r.ok for r in results] == [True, True, True]  # already scheduled / already gone: goal holds
    assert sent[0] == {"SecretId": "K", "RecoveryWindowInDays": 7}  # never ForceDeleteWithoutRecovery
    assert sm_client.describe_secret(SecretId="K")["DeletedDate"]


def test_apply_reports_each_change_as_it_lands_and_continues_after_failure(
        make: Callable[..., Dest], sm_client: Any) -> None:
    d = make()
    seen: list[tuple[str, bool, bool]] = []

    def on_result(r: ChangeResult) -> None:
        listed = sm_client.list_secrets(Filters=[{"Key": "name", "Values": [r.change.key]}])
        exists = bool(listed["SecretList"])
        seen.append((r.change.key, r.ok, exists))
        assert not find_leaks([r.error or ""])

    d.apply([change(Action.CREATE, "A", C1), change(Action.UPDATE, "MISSING", C2),
             change(Action.IMPORT, "X", C3), change(Action.CREATE, "C", C3)], on_result)
    # keys run concurrently, so results arrive in completion order; each as it lands
    assert sorted(seen) == [("A", True, True), ("C", True, True), ("MISSING", False, False)]
    assert current(sm_client, "C") == C3


def test_failed_change_error_is_ours_not_the_services(make: Callable[..., Dest]) -> None:
    d = make()
    inject(d, "CreateSecret", "InvalidParameterException", message=f"bad value {C1}")
    (r,) = run(d, [change(Action.CREATE, "K", C1)])
    assert not r.ok and r.error == "K: CreateSecret failed: InvalidParameterException"


def test_retried_create_is_idempotent(make: Callable[..., Dest], sm_client: Any) -> None:
    d = make()
    c = change(Action.CREATE, "K", C1)
    (first,) = run(d, [c])
    (second,) = run(make(), [c])  # e.g. the engine retries after a lost response
    assert first.ok and second.ok and first.version == second.version
    assert len(sm_client.list_secret_version_ids(SecretId="K")["Versions"]) == 1


def test_value_flip_back_is_written_not_swallowed_by_token_reuse(
        make: Callable[..., Dest], sm_client: Any) -> None:
    """AWS ignores a PutSecretValue whose token names an existing version with the same
    value; a token of key+fingerprint alone would leave A -> B -> A stuck on B."""
    d = make()
    run(d, [change(Action.CREATE, "K", C1)])
    for value in (C2, C1, C2):
        d.list_entries()  # the engine observes before it applies
        (r,) = run(d, [change(Action.UPDATE, "K", value)])
        assert r.ok and current(sm_client, "K") == value
    # a plan retried after a lost response (made from the same observation) reuses its
    # token, so AWS keeps one version instead of writing the value twice
    first, retry = make(), make()
    first.list_entries()
    retry.list_entries()
    (a,) = run(first, [change(Action.UPDATE, "K", C3)])
    n = len(sm_client.list_secret_version_ids(SecretId="K", IncludeDeprecated=True)["Versions"])
    (b,) = run(retry, [change(Action.UPDATE, "K", C3)])
    assert a.ok and b.ok and a.version == b.version and current(sm_client, "K") == C3
    assert len(sm_client.list_secret_version_ids(SecretId="K", IncludeDeprecated=True)["Versions"]) == n


def test_throttling_is_retried_by_botocore_then_becomes_throttled(
        make: Callable[..., Dest], sm_client: Any) -> None:
    sm_client.create_secret(Name="K", SecretString=C1)
    d = make(settings={"maxAttempts": 3})
    inject(d, "ListSecrets", "ThrottlingException", "Rate exceeded", times=1)
    assert [e.key for e in d.list_entries()] == ["K"]
    assert calls.snapshot() == {(KIND, "ListSecrets", "ThrottlingException"): 1,
                                (KIND, "ListSecrets", "ok"): 1}

    calls.reset()
    d2 = make(settings={"maxAttempts": 2})
    inject(d2, "ListSecrets", "ThrottlingException", "Rate exceeded", times=None)
    with pytest.raises(errors.Throttled) as info:
        d2.list_entries()
    assert info.value.retryable and info.value.code == "ThrottlingException"
    assert calls.snapshot() == {(KIND, "ListSecrets", "ThrottlingException"): 2}


def test_unreachable_endpoint_is_transient(aws_endpoint: str) -> None:
    d = Dest(KIND, target(), connection("http://127.0.0.1:9", connectTimeout=1))
    with pytest.raises(errors.Transient):
        d.list_entries()
    assert calls.snapshot() == {(KIND, "ListSecrets", "EndpointConnectionError"): 1}


def test_create_on_a_name_scheduled_for_deletion_moto(
        make: Callable[..., Dest], sm_client: Any) -> None:
    sm_client.create_secret(Name="K", SecretString=C1)
    sm_client.delete_secret(SecretId="K", RecoveryWindowInDays=7)
    sm_client.create_secret(Name="LIVE", SecretString=C1)
    calls.reset()
    r1, r2 = run(make(), [change(Action.CREATE, "K", C2), change(Action.CREATE, "LIVE", C2)])
    assert not r1.ok and r1.error == f"K: {SCHEDULED_MSG}"  # moto: ResourceExistsException
    assert not r2.ok and r2.error and "already exists" in r2.error
    assert calls.by_call(KIND) == {"CreateSecret": 2, "DescribeSecret": 2}


def test_create_on_a_name_scheduled_for_deletion_aws(make: Callable[..., Dest]) -> None:
    d = make()
    inject(d, "CreateSecret", "InvalidRequestException",
           "You can't create this secret because a secret with this name is already scheduled for deletion.")
    (r,) = run(d, [change(Action.CREATE, "K", C1)])
    assert not r.ok and r.error == f"K: {SCHEDULED_MSG}"
    assert calls.by_call(KIND) == {"CreateSecret": 1}


def test_put_on_a_secret_scheduled_for_deletion_aws(
        make: Callable[..., Dest], sm_client: Any) -> None:
    sm_client.create_secret(Name="K", SecretString=C1)
    d = make()
    inject(d, "PutSecretValue", "InvalidRequestException",
           "You can't perform this operation on the secret because it was marked for deletion.")
    (r,) = run(d, [change(Action.UPDATE, "K", C2)])
    assert not r.ok and r.error == f"K: {SCHEDULED_MSG}"
    assert current(sm_client, "K") == C1


def test_tag_failure_after_value_write_keeps_the_new_version(
        make: Callable[..., Dest], sm_client: Any) -> None:
    sm_client.create_secret(Name="K", SecretString=C1)
    d = make()
    inject(d, "TagResource", "AccessDeniedException", f"not allowed {C2}")
    (r,) = run(d, [change(Action.UPDATE, "K", C2, props={"tag:team": "x"})])
    assert not r.ok and r.version and r.error == "K: TagResource failed: AccessDeniedException"
    assert current(sm_client, "K") == C2


def test_assume_role_uses_sts_on_the_default_chain(aws_endpoint: str) -> None:
    conn = ConnectionInfo(
        name="aws", app="aws", method="assume-role",
        settings={"endpoint": aws_endpoint, "stsEndpoint": aws_endpoint, "maxAttempts": 1},
        credentials={"roleArn": "arn:aws:iam::123456789012:role/sync", "externalId": "ext-1"})
    d = Dest(KIND, target(), conn)
    assert d.list_entries() == []
    assert calls.by_call(KIND) == {"AssumeRole": 1, "ListSecrets": 1}
    creds = cast(Any, d.client)._request_signer._credentials.get_frozen_credentials()
    assert creds.access_key.startswith("ASIA")  # moto's temporary keys, not the env's "testing"
    d.close()


def test_clients_are_shared_per_connection_and_renewed_when_a_credential_rotates(aws_endpoint: str) -> None:

    def conn(secret: str) -> ConnectionInfo:
        return ConnectionInfo(name="c", app="aws", settings={"endpoint": aws_endpoint}, method="access-key",
                              credentials={"accessKeyId": "AKIDEXAMPLE", "secretAccessKey": SecretValue(secret)})

    first = aws_client.make_client(conn("s1"), "us-east-1", "sync-a")
    assert aws_client.make_client(conn("s1"), "us-east-1", "sync-b") is first, "one client per connection"
    assert aws_client.make_client(conn("s2"), "us-east-1", "sync-a") is not first, "a rotated secret"
    assert aws_client.make_client(conn("s1"), "eu-west-1", "sync-a") is not first, "another region"


def test_ca_bundle_lets_tls_to_a_private_ca_through(aws_endpoint: str, tmp_path: Path) -> None:
    """An endpoint behind a private CA (VPC endpoint with TLS inspection, a proxy): verified
    against the connection's caBundle, and refused, saying why, without it."""
    import ssl

    import trustme

    from tests.emulators.faultproxy import FaultProxy

    ca = trustme.CA()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(tls)
    bundle = tmp_path / "private-ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    proxy = FaultProxy(aws_endpoint, tls=tls)
    url = proxy.start()
    try:
        trusted = Dest(KIND, target("app/{{secretKey}}"), connection(url, caBundle=str(bundle)))
        assert list(trusted.list_entries()) == []
        untrusted = Dest(KIND, target("app/{{secretKey}}"), connection(url))
        with pytest.raises(errors.Transient, match=r"TLS verification failed .*caBundle"):
            list(untrusted.list_entries())
    finally:
        proxy.stop()
