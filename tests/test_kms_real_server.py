"""The KMS client and source against the emulator answering as a real Infisical server does
(shared/reference/kms-real-server.md): 403 TokenError, 500 + Retry-After throttling, empty
lists for a missing environment, 404 for an unknown client id, trimmed values, approvals."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.model import Folder, SecretValue
from reconciler.sources.errors import SourceError
from reconciler.sources.kms import KmsSource, open_kms
from reconciler.sources.kms_client import LOGIN_PATH, KmsAuthError, KmsClient, KmsError, RetryPolicy, TokenCache
from tests.emulators.kms import BATCH, SECRETS, KmsEmulator
from tests.fixtures_kms import KMS_PROJECT, kms_workspace
from tests.support.canary import CANARIES, find_leaks

C1, C2, C3 = CANARIES
P = "p1"
APP = Folder("dev", "/app", P)
PARAMS = {"projectId": P, "environment": "dev", "secretPath": "/app"}


@pytest.fixture
def kms() -> Iterator[KmsEmulator]:
    with KmsEmulator() as emu:
        emu.add_identity("client-1", "client-secret")
        emu.store.put(P, "dev", "/app", "A", C1)
        yield emu


def client(kms: KmsEmulator, sleeps: list[float] | None = None, client_id: str = "client-1",
           secret: str = "client-secret") -> KmsClient:  # noqa: S107 - the emulator identity
    return KmsClient(kms.url, client_id, SecretValue(secret), token_cache=TokenCache(), rng=lambda: 0.5,
                     sleep=(sleeps.append if sleeps is not None else lambda _s: None))


@pytest.fixture
def source(kms: KmsEmulator) -> Iterator[KmsSource]:
    src = open_kms("kms", {"siteUrl": kms.url}, "client-1", SecretValue("client-secret"),
                   sleep=lambda _s: None, retry=RetryPolicy(max_attempts=2), token_cache=TokenCache())
    yield src
    src.close()


# -- 15: an expired token is a 403 TokenError ------------------------------------------------------
def test_expired_token_403_logs_in_again_once(kms: KmsEmulator) -> None:
    c = client(kms)
    c.request("GET", SECRETS, params=PARAMS)
    kms.expire_tokens()  # early: a clock jump, a rotated server secret
    data = c.request("GET", SECRETS, params=PARAMS)
    assert [s["secretKey"] for s in data["secrets"]] == ["A"]
    assert c.logins == 2 and kms.count("GET", SECRETS) == 3


def test_revoked_token_401_logs_in_again_too(kms: KmsEmulator) -> None:
    c = client(kms)
    c.request("GET", SECRETS, params=PARAMS)
    kms.revoke_tokens()
    c.request("GET", SECRETS, params=PARAMS)
    assert c.logins == 2


def test_token_error_twice_is_a_clear_auth_error(kms: KmsEmulator) -> None:
    body = json.dumps({"statusCode": 403, "message": "invalid token", "error": "TokenError"})
    kms.fault("GET", SECRETS, 403, times=-1, body=body)
    with pytest.raises(KmsAuthError, match=r"token was refused \(403\) even after logging in again") as e:
        client(kms).request("GET", SECRETS, params=PARAMS)
    assert e.value.status == 403 and kms.count("POST", LOGIN_PATH) == 2


def test_a_permission_403_is_not_a_token_problem(kms: KmsEmulator) -> None:
    body = json.dumps({"statusCode": 403, "message": "no access", "error": "PermissionDenied"})
    kms.fault("GET", SECRETS, 403, body=body)
    c = client(kms)
    with pytest.raises(KmsError, match=r"lacks permission \(403\)"):
        c.request("GET", SECRETS, params=PARAMS)
    assert c.logins == 1


# -- 18: login, throttling, missing environment --------------------------------------------------
def test_unknown_client_id_is_404_and_refused_clearly(kms: KmsEmulator) -> None:
    with pytest.raises(KmsAuthError, match=r"refused \(404\): check the connection's clientId"):
        client(kms, client_id="nobody").request("GET", SECRETS, params=PARAMS)
    with pytest.raises(KmsAuthError, match=r"refused \(401\)"):
        client(kms, secret="wrong").request("GET", SECRETS, params=PARAMS)


def test_throttling_is_500_with_retry_after_and_is_honoured(kms: KmsEmulator) -> None:
    kms.rate_limit = (1, 60.0)
    sleeps: list[float] = []
    c = client(kms, sleeps)
    c.request("GET", SECRETS, params=PARAMS)
    with pytest.raises(KmsError, match=r"throttled \(500\); retry after 6\ds") as e:
        c.request("GET", SECRETS, params=PARAMS)
    assert e.value.status == 500 and e.value.retry_after is not None and e.value.retry_after > 30
    assert sleeps == [], "a wait longer than 30 s is the caller's (the daemon's retry), not slept here"


def test_a_throttled_batch_create_is_retried_it_was_not_processed(kms: KmsEmulator) -> None:
    kms.fault("POST", r"/batch$", 500, retry_after="1")
    sleeps: list[float] = []
    body = {"projectId": P, "environment": "dev", "secretPath": "/app",
            "secrets": [{"secretKey": "NEW", "secretValue": "x"}]}
    client(kms, sleeps).request("POST", BATCH, json=body, unsafe=True)
    assert kms.count("POST", BATCH) == 2 and sleeps == [1.0]
    assert kms.store.values(P, "dev", "/app")["NEW"] == "x"


def test_a_plain_500_on_a_batch_create_is_not_repeated(kms: KmsEmulator) -> None:
    kms.fault("POST", r"/batch$", 500)
    with pytest.raises(KmsError, match=r"server error \(500\)"):
        client(kms).request("POST", BATCH, unsafe=True, json={
            "projectId": P, "environment": "dev", "secretPath": "/app", "secrets": []})
    assert kms.count("POST", BATCH) == 1


def test_missing_environment_lists_empty_unknown_project_is_404(kms: KmsEmulator, source: KmsSource) -> None:
    assert source.read(Folder("staging", "/app", P)) == []
    with pytest.raises(SourceError, match=r"not found .*\(404\)"):
        source.read(Folder("dev", "/app", "no-such-project"))


# -- 16: the server trims values ------------------------------------------------------------------
@pytest.mark.parametrize("value", [" leading", "trailing ", "  both  "])
def test_values_the_server_would_trim_are_refused_before_writing(kms: KmsEmulator, source: KmsSource,
                                                                 value: str) -> None:
    with pytest.raises(SourceError, match=r"import wrote nothing: the values of PADDED begin or end with spaces"):
        source.write(APP, {"NEW": SecretValue("fine"), "PADDED": SecretValue(value)})
    assert kms.store.values(P, "dev", "/app") == {"A": C1}
    assert kms.count("POST", BATCH) == 0


def test_emulator_trims_like_the_server(kms: KmsEmulator) -> None:
    c = client(kms)
    answer = c.request("POST", BATCH, unsafe=True, json={"projectId": P, "environment": "dev", "secretPath": "/app",
                                                        "secrets": [{"secretKey": "T", "secretValue": " v \n "}]})
    assert answer["secrets"][0]["secretValue"] == "v \n", "trimmed of spaces, echoed back"
    assert kms.store.values(P, "dev", "/app")["T"] == "v \n"


def test_a_value_echoed_back_differently_is_not_reported_written(kms: KmsEmulator, source: KmsSource) -> None:
    echo = json.dumps({"secrets": [{"secretKey": "NEW", "secretValue": "changed-by-server"}]})
    kms.fault("POST", r"/batch$", 200, body=echo)
    with pytest.raises(SourceError, match=r"import incomplete: KMS stored NEW with a value different") as e:
        source.write(APP, {"NEW": SecretValue(C2)})
    assert find_leaks([str(e.value)]) == []


# -- 17: a change policy answers 200 with an approval request -------------------------------------
def test_approval_request_is_pending_not_written(kms: KmsEmulator, source: KmsSource) -> None:
    kms.approval_policy = True
    with pytest.raises(SourceError, match=r"import pending approval: a change policy protects environment dev, "
                                          r"so KMS opened an approval request for NEW instead of writing them"):
        source.write(APP, {"NEW": SecretValue(C2), "A": SecretValue(C3)})
    assert kms.store.values(P, "dev", "/app") == {"A": C1}
    assert len(kms.approvals) == 1, "one request; the update was not sent after it"


def test_cli_import_of_a_padded_value_fails_clearly(tmp_path: Path, aws_endpoint: str, sm_client: Any,
                                                    kms_emulator: KmsEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = kms_workspace(tmp_path, aws_endpoint, kms_emulator, monkeypatch)
    ws.write_spec("app.yaml", [ws.sync(source="kms", projectId=KMS_PROJECT)])
    sm_client.create_secret(Name="app/PADDED", SecretString=f" {C1} ")
    r = ws.run("import", "app", "--priority", "source")
    assert r.code == 1, str(r)
    status = json.loads(ws.run("status", "--json").out)["syncs"][0]
    assert status["importStatus"] == "failed"
    assert "the values of PADDED begin or end with spaces" in status["lastImportMessage"]
    assert kms_emulator.store.values(KMS_PROJECT, "dev", "/app") == {}
    assert ws.leaks() == []
