"""The KMS HTTP client against the emulator: login, token renewal (fake time), 401 re-login,
bounded retries honouring Retry-After (fake sleep), and errors that never quote a body."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.model import SecretValue
from reconciler.sources.kms_client import LOGIN_PATH, KmsAuthError, KmsClient, KmsError, RetryPolicy, TokenCache
from tests.emulators.kms import SECRETS, KmsEmulator
from tests.support.canary import CANARIES, find_leaks

C1, C2, _ = CANARIES
PARAMS = {"projectId": "p1", "environment": "dev", "secretPath": "/app"}


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def kms() -> Iterator[KmsEmulator]:
    with KmsEmulator() as emu:
        emu.add_identity("client-1", C2)
        emu.store.put("p1", "dev", "/app", "DB_PASSWORD", C1)
        yield emu


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


def client(kms: KmsEmulator, fake: FakeTime, **kw: object) -> KmsClient:
    return KmsClient(kms.url, "client-1", SecretValue(C2), sleep=fake.sleep, clock=fake.clock,
                     rng=lambda: 0.5, **kw)  # type: ignore[arg-type]


def test_logs_in_once_and_reuses_the_token(kms: KmsEmulator, fake: FakeTime) -> None:
    c = client(kms, fake)
    for _ in range(3):
        data = c.request("GET", SECRETS, params=PARAMS)
        assert [s["secretKey"] for s in data["secrets"]] == ["DB_PASSWORD"]
    assert c.logins == 1 and kms.count("POST", LOGIN_PATH) == 1 and kms.count("GET", SECRETS) == 3
    assert C2 not in repr(c)


def test_token_is_renewed_before_it_expires(fake: FakeTime) -> None:
    with KmsEmulator(token_ttl=100) as kms:
        kms.add_identity("client-1", C2)
        kms.store.folder("p1", "dev", "/app")
        c = client(kms, fake)
        c.request("GET", SECRETS, params=PARAMS)
        fake.now += 79  # renewal margin: 20% of 100 s
        c.request("GET", SECRETS, params=PARAMS)
        assert c.logins == 1
        fake.now += 2
        c.request("GET", SECRETS, params=PARAMS)
        assert c.logins == 2 and kms.count("GET", SECRETS) == 3, "renewed without a 401 first"


def test_a_401_logs_in_again_once(kms: KmsEmulator, fake: FakeTime) -> None:
    c = client(kms, fake)
    c.request("GET", SECRETS, params=PARAMS)
    kms.expire_tokens()  # revoked server-side before our clock says so
    c.request("GET", SECRETS, params=PARAMS)
    assert c.logins == 2 and kms.count("GET", SECRETS) == 3


def test_a_shared_cache_saves_logins_across_clients(kms: KmsEmulator, fake: FakeTime) -> None:
    cache = TokenCache()
    for _ in range(3):
        client(kms, fake, token_cache=cache).request("GET", SECRETS, params=PARAMS)
    assert kms.count("POST", LOGIN_PATH) == 1
    kms.add_identity("client-1", "rotated")
    rotated = KmsClient(kms.url, "client-1", SecretValue("rotated"), token_cache=cache, clock=fake.clock)
    rotated.request("GET", SECRETS, params=PARAMS)
    assert kms.count("POST", LOGIN_PATH) == 2, "a changed client secret is a different identity"


def test_a_second_401_fails_clearly(kms: KmsEmulator, fake: FakeTime) -> None:
    c = client(kms, fake)
    kms.fault("GET", SECRETS, 401, times=5)
    with pytest.raises(KmsAuthError, match="even after logging in again") as e:
        c.request("GET", SECRETS, params=PARAMS)
    assert e.value.status == 401
    assert c.logins == 2 and kms.count("GET", SECRETS) == 2, "one re-login, not a loop"


def test_bad_credentials_name_the_fields_not_the_secret(kms: KmsEmulator, fake: FakeTime) -> None:
    c = KmsClient(kms.url, "client-1", SecretValue(C1), sleep=fake.sleep, clock=fake.clock)
    with pytest.raises(KmsAuthError, match="clientId and clientSecret") as e:
        c.request("GET", SECRETS, params=PARAMS)
    assert find_leaks([str(e.value), repr(e.value)]) == []
    assert kms.count("POST", LOGIN_PATH) == 1, "a refused login is not retried"


def test_429_honours_retry_after_seconds(kms: KmsEmulator, fake: FakeTime) -> None:
    kms.fault("GET", SECRETS, 429, times=2, retry_after="3")
    c = client(kms, fake)
    c.request("GET", SECRETS, params=PARAMS)
    assert fake.sleeps == [3.0, 3.0]
    assert kms.count("GET", SECRETS) == 3


def test_retry_after_as_http_date(kms: KmsEmulator, fake: FakeTime) -> None:
    when = email.utils.formatdate(time.time() + 10, usegmt=True)
    kms.fault("GET", SECRETS, 503, retry_after=when)
    client(kms, fake).request("GET", SECRETS, params=PARAMS)
    assert len(fake.sleeps) == 1 and 8.0 <= fake.sleeps[0] <= 10.0


def test_5xx_backs_off_exponentially_then_gives_up(kms: KmsEmulator, fake: FakeTime) -> None:
    kms.fault("GET", SECRETS, 503, times=-1)
    c = client(kms, fake, retry=RetryPolicy(max_attempts=4, backoff=1.0))
    with pytest.raises(KmsError, match=r"server error \(503\)") as e:
        c.request("GET", SECRETS, params=PARAMS)
    assert e.value.status == 503
    assert kms.count("GET", SECRETS) == 4, "bounded"
    assert fake.sleeps == [0.75, 1.5, 3.0], "equal jitter around 1, 2, 4 s"


def test_a_long_retry_after_is_reported_not_slept(kms: KmsEmulator, fake: FakeTime) -> None:
    kms.fault("GET", SECRETS, 429, retry_after="120")
    with pytest.raises(KmsError, match=r"throttled \(429\); retry after 120s") as e:
        client(kms, fake).request("GET", SECRETS, params=PARAMS)
    assert e.value.retry_after == 120.0 and fake.sleeps == []


def test_unsafe_requests_retry_only_when_surely_unprocessed(kms: KmsEmulator, fake: FakeTime) -> None:
    c = client(kms, fake)
    body = {"projectId": "p1", "environment": "dev", "secretPath": "/app",
            "secrets": [{"secretKey": "NEW", "secretValue": "x"}]}
    kms.fault("POST", r"/batch$", 503)
    with pytest.raises(KmsError, match="503"):
        c.request("POST", "/api/v4/secrets/batch", json=body, unsafe=True)
    assert kms.count("POST", "/api/v4/secrets/batch") == 1
    kms.fault("POST", r"/batch$", 429, retry_after="1")
    c.request("POST", "/api/v4/secrets/batch", json=body, unsafe=True)
    assert kms.count("POST", "/api/v4/secrets/batch") == 3
    assert kms.store.values("p1", "dev", "/app")["NEW"] == "x"


def test_dropped_connection_is_retried_for_reads_only(kms: KmsEmulator, fake: FakeTime) -> None:
    c = client(kms, fake)
    c.request("GET", SECRETS, params=PARAMS)
    kms.fault("GET", SECRETS, drop=True)
    c.request("GET", SECRETS, params=PARAMS)
    assert kms.count("GET", SECRETS) == 3
    kms.fault("POST", r"/batch$", drop=True)
    with pytest.raises(KmsError, match="connection failed"):
        c.request("POST", "/api/v4/secrets/batch", json={}, unsafe=True)
    assert kms.count("POST", "/api/v4/secrets/batch") == 1


def test_timeouts_are_retried(kms: KmsEmulator, fake: FakeTime) -> None:
    kms.fault("GET", SECRETS, 200, delay=0.6)
    c = client(kms, fake, timeout=0.2)
    assert c.request("GET", SECRETS, params=PARAMS)["secrets"]
    assert len(fake.sleeps) == 1


def test_errors_never_carry_the_response_body(kms: KmsEmulator, fake: FakeTime) -> None:
    leaky = f'{{"message": "secret value {C1} is invalid", "value": "{C1}"}}'
    kms.fault("GET", SECRETS, 400, body=leaky)
    with pytest.raises(KmsError) as e:
        client(kms, fake).request("GET", SECRETS, params=PARAMS)
    text = f"{e.value} {e.value!r} {e.value.args}"
    assert "400" in text and SECRETS in text
    assert find_leaks([text]) == []
    kms.fault("POST", LOGIN_PATH, 500, times=-1, body=leaky)
    with pytest.raises(KmsError) as e2:
        client(kms, fake, retry=RetryPolicy(max_attempts=2)).request("GET", SECRETS, params=PARAMS)
    assert find_leaks([str(e2.value), repr(e2.value)]) == []


def test_ca_bundle_is_trusted(tmp_path: Path, fake: FakeTime) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    with KmsEmulator(tls=ca) as kms:
        kms.add_identity("client-1", C2)
        kms.store.folder("p1", "dev", "/app")
        assert kms.url.startswith("https://")
        trusted = KmsClient(kms.url, "client-1", SecretValue(C2), ca_bundle=str(pem), sleep=fake.sleep)
        assert trusted.request("GET", SECRETS, params=PARAMS) == {"secrets": []}
        untrusted = KmsClient(kms.url, "client-1", SecretValue(C2), sleep=fake.sleep,
                              retry=RetryPolicy(max_attempts=1))
        with pytest.raises(KmsError, match="connection failed"):
            untrusted.request("GET", SECRETS, params=PARAMS)
