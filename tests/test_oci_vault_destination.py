"""The OCI Vault destination module: pure rules, credentials and clients, and the retry and
translation layer against the emulator (the SDK is never mocked; only our own sleep runs on
fake time)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reconciler import calls
from reconciler.changes import Action, Change, ChangeResult
from reconciler.destinations import catalog, errors
from reconciler.destinations.catalog import SyncView
from reconciler.destinations.contract import ConnectionInfo
from reconciler.destinations.oci_vault import client as oci_client
from reconciler.destinations.oci_vault import rules
from reconciler.model import Lifecycle, SecretValue
from tests.emulators.oci_vault import DEFAULT_COMPARTMENT, DEFAULT_KEY, DEFAULT_VAULT, OciVaultEmulator
from tests.fixtures_oci_vault import OCI_REGION, OCI_TENANCY, OCI_USER, OciApiKey
from tests.support.canary import CANARIES, find_leaks
from tests.support.dest import Dest, view

C1, C2, C3 = CANARIES
KIND = "oci-vault"
DEST = {"compartmentOcid": DEFAULT_COMPARTMENT, "vaultOcid": DEFAULT_VAULT, "keyOcid": DEFAULT_KEY}


def connection(emu: OciVaultEmulator, key: OciApiKey, method: str = "api-key", **settings: Any) -> ConnectionInfo:
    base: dict[str, Any] = {"endpoint": emu.url, "region": OCI_REGION, **settings}
    creds: dict[str, Any] = {}
    if method == "api-key":
        creds = {"tenancy": OCI_TENANCY, "user": OCI_USER, "fingerprint": key.fingerprint,
                 "privateKey": SecretValue(key.pem)}
    elif method == "config-file":
        creds = {"file": str(key.config_file)}
    return ConnectionInfo(name="oci", app="oci", settings={k: v for k, v in base.items() if v is not None},
                          method=method, credentials=creds)


def target(schema: str = "app-{{secretKey}}", **options: Any) -> SyncView:
    return view(config=DEST, options={"keySchema": schema, **options}, connection="oci")


@pytest.fixture
def make(oci_dest: OciVaultEmulator, oci_api_key: OciApiKey) -> Any:
    made: list[Dest] = []

    def _make(schema: str = "app-{{secretKey}}", **settings: Any) -> Dest:
        d = Dest(KIND, target(schema), connection(oci_dest, oci_api_key, **settings))
        made.append(d)
        return d

    yield _make
    for d in made:
        d.close()


def run(d: Dest, *changes: Change) -> list[ChangeResult]:
    out: list[ChangeResult] = []
    d.apply(list(changes), out.append)
    return out


# -- pure rules -------------------------------------------------------------------------------
def test_descriptor_declares_oci_names_and_limits() -> None:
    desc = catalog.default()["oci-vault"]
    assert desc.names.problem("db.password_1-A") is None
    assert desc.names.problem("has space") and desc.names.problem("x" * 256)
    assert desc.names.fold("DB") != desc.names.fold("db"), "OCI names are case-sensitive"
    assert desc.capabilities.max_value_bytes == 19200 and not desc.capabilities.allows_empty
    assert desc.identity(target()) == ("oci-vault", DEFAULT_VAULT)
    assert desc.properties(target(), {"x": "y"}) == {"tag:managed-by": "reconciler", "tag:reconciler-sync": "payments"}
    assert rules.spec_findings({"syncOptions": {"keySchema": "app {{secretKey}}"}})
    assert rules.spec_findings({"syncOptions": {"keySchema": "app.{{environment}}-{{secretKey}}"}}) == []


def test_rules_lifecycle_marker_window_and_retry_after() -> None:
    assert rules.lifecycle("ACTIVE") is Lifecycle.ACTIVE
    assert rules.lifecycle("PENDING_DELETION") is Lifecycle.PENDING_DELETION
    assert rules.lifecycle("FAILED") is Lifecycle.DISABLED
    assert rules.version_marker("ocid1.vaultsecret.oc1..x", 3) == "ocid1.vaultsecret.oc1..x#3"
    assert rules.version_marker("ocid1.vaultsecret.oc1..x", None) is None
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert rules.time_of_deletion(7, now) == now + timedelta(days=7)
    assert rules.time_of_deletion(1, now) > now + timedelta(days=1), "the shortest window keeps a margin"
    assert rules.deletion_days(target(deletionWindowInDays=12)) == 12
    assert rules.deletion_days(target(deletionWindowInDays=0)) == 30
    assert rules.retry_after({"Retry-After": "7"}) == 7.0 and rules.retry_after({}) is None
    assert rules.retry_after({"retry-after": "not a date"}) is None


# -- sessions ---------------------------------------------------------------------------------
def test_listing_pages_reads_versions_and_skips_the_out_of_scope(make: Any, oci_dest: OciVaultEmulator) -> None:
    ours = {"managed-by": "reconciler", "reconciler-sync": "payments"}
    for i in range(4):
        oci_dest.store.seed(f"app-K{i}", b"v", freeform=ours)
    oci_dest.store.seed("app-STRAY", b"v")  # in scope, neither wanted nor ours: no version needed
    oci_dest.store.seed("other", b"x")
    oci_dest.store.seed("app-OLD", b"x", state="PENDING_DELETION")
    d = make()
    calls.reset()
    listed = {e.key: e for e in d.session.list(d.scope())}
    assert set(listed) == {f"app-K{i}" for i in range(4)} | {"app-STRAY", "app-OLD"}
    assert listed["app-K0"].version is not None and listed["app-K0"].version.endswith("#1")
    assert listed["app-K0"].owner == "payments"
    assert listed["app-STRAY"].lifecycle is Lifecycle.ACTIVE and listed["app-STRAY"].version is None
    assert listed["app-OLD"].lifecycle is Lifecycle.PENDING_DELETION and listed["app-OLD"].version is None
    assert calls.by_call(KIND) == {"ListSecrets": 3, "GetSecret": 4}, "no GetSecret for pending, stray or foreign"
    from reconciler.destinations.naming import Scope

    assert d.session.list(Scope(exact=frozenset({"app-OLD"}), pending_only=True)) == [], \
        "a shared listing already holds our pending-deletion secrets"


def test_a_wide_shared_listing_never_waits_on_others_secrets(make: Any, oci_dest: OciVaultEmulator,
                                                              oci_sleeps: list[float]) -> None:
    """One listing may serve several syncs (a scope wider than ours): a secret changing state
    blocks only when this sync wants it or wrote it."""
    from reconciler.destinations.naming import Scope

    oci_dest.store.seed("app-MINE", b"v", freeform={"managed-by": "reconciler", "reconciler-sync": "payments"})
    oci_dest.store.seed("web-THEIRS", b"v", freeform={"managed-by": "reconciler", "reconciler-sync": "web"})
    oci_dest.store.seed("loose", b"v")
    for name in ("web-THEIRS", "loose"):
        oci_dest.store.hold(name, "UPDATING")
    d = make()
    listed = {e.key: e for e in d.session.list(Scope(base=""))}
    assert listed["web-THEIRS"].lifecycle is Lifecycle.DISABLED and listed["loose"].lifecycle is Lifecycle.DISABLED
    assert listed["app-MINE"].lifecycle is Lifecycle.ACTIVE and oci_sleeps == []
    oci_dest.store.hold("app-MINE", "UPDATING")
    with pytest.raises(errors.Transient, match="UPDATING"):
        d.session.list(Scope(base=""))
    assert len(oci_sleeps) == 10, "its own secret was waited for, then the sync fails"


def test_an_answer_that_is_not_oci_is_an_error(make: Any, oci_dest: OciVaultEmulator) -> None:
    oci_dest.store.seed("app-A", b"v", freeform={"managed-by": "reconciler"})
    d = make()
    oci_dest.inject(method="GET", path="/20180608/secrets", status=200, body=b"<html>proxy login</html>",
                    headers={"Content-Type": "text/html"})
    with pytest.raises(errors.Permanent, match="not an OCI Vault answer"):
        d.session.list(d.scope())
    d.session.list(d.scope())
    oci_dest.inject(method="GET", path="/20190301/.*", status=200, body=b"<html/>",
                    headers={"Content-Type": "text/html"})
    with pytest.raises(errors.Permanent, match="not an OCI Vault answer"):
        d.read_values(["app-A"])


def test_retries_stop_at_the_run_deadline(make: Any, oci_dest: OciVaultEmulator, oci_sleeps: list[float]) -> None:
    from reconciler import deadline
    from reconciler.errors import DeadlineExceeded

    d = make()
    oci_dest.inject(method="GET", path="/20180608/secrets", status=503, times=5)
    with deadline.run(0.001), pytest.raises(DeadlineExceeded):
        d.session.list(d.scope())
    assert oci_sleeps == []
    oci_dest.clear()
    for i in range(3):
        oci_dest.store.seed(f"app-K{i}", b"v", freeform={"managed-by": "reconciler"})
    oci_dest.inject(method="GET", path="/20180608/secrets/.+", status=503, times=9)
    with deadline.run(0.001), pytest.raises(DeadlineExceeded):
        d.session.list(d.scope())  # GetSecret runs on worker threads: the deadline follows it there
    assert oci_sleeps == []


def test_reads_leave_out_what_is_not_text(make: Any, oci_dest: OciVaultEmulator) -> None:
    oci_dest.store.seed("app-TEXT", "ünïcödé".encode())
    oci_dest.store.seed("app-BINARY", b"\xff\xfe\x00")
    d = make()
    d.session.list(d.scope())
    got = d.read_values(["app-TEXT", "app-BINARY", "app-MISSING"])
    assert {k: v.reveal() for k, v in got.items()} == {"app-TEXT": "ünïcödé"}


def test_reads_are_retried_writes_only_when_throttled(make: Any, oci_dest: OciVaultEmulator,
                                                      oci_sleeps: list[float]) -> None:
    oci_dest.store.seed("app-A", b"v")
    d = make()
    oci_dest.inject(method="GET", path="/20180608/secrets", status=503)
    oci_dest.inject(method="GET", path="/20180608/secrets", drop="before")
    d.session.list(d.scope())
    assert oci_dest.count("GET", "/20180608/secrets", authorized=True) == 3 and len(oci_sleeps) == 2
    assert all(0 < w <= 2 for w in oci_sleeps), "backoff with jitter"

    oci_dest.inject(method="PUT", status=503)
    [result] = run(d, Change(Action.UPDATE, "app-A", value=SecretValue(C1)))
    assert not result.ok and "503 ServiceUnavailable" in (result.error or "")
    assert oci_dest.count("PUT") == 1, "a 5xx write may have landed: never resent blindly"

    oci_dest.inject(method="PUT", status=429, headers={"Retry-After": "2"})
    [result] = run(d, Change(Action.UPDATE, "app-A", value=SecretValue(C1)))
    assert result.ok and oci_sleeps[-1] == 2.0 and oci_dest.store.value("app-A") == C1.encode()


def test_a_dropped_create_that_landed_is_seen_by_the_next_listing(make: Any, oci_dest: OciVaultEmulator) -> None:
    d = make()
    d.session.list(d.scope())
    oci_dest.inject(method="POST", path="/20180608/secrets", drop="after")
    [result] = run(d, Change(Action.CREATE, "app-A", value=SecretValue(C1)))
    assert not result.ok and "connection dropped" in (result.error or "")
    assert oci_dest.count("POST", "/20180608/secrets") == 1
    listed = {e.key: e for e in d.session.list(d.scope())}
    assert listed["app-A"].lifecycle is Lifecycle.ACTIVE


def test_errors_never_carry_the_service_message(make: Any, oci_dest: OciVaultEmulator) -> None:
    oci_dest.store.seed("app-A", b"v")
    d = make()
    d.session.list(d.scope())
    oci_dest.inject(method="PUT", status=400, body={"code": "InvalidParameter", "message": f"bad value {C1}"})
    [result] = run(d, Change(Action.UPDATE, "app-A", value=SecretValue(C2)))
    assert not result.ok and "400 InvalidParameter" in (result.error or "")
    assert find_leaks([result.error or ""]) == []


def test_state_conflicts(make: Any, oci_dest: OciVaultEmulator) -> None:
    oci_dest.store.seed("app-A", b"v")
    oci_dest.store.seed("app-GONE", b"v", state="PENDING_DELETION")
    d = make()
    d.session.list(d.scope())
    oci_dest.store.hold("app-A", "UPDATING", reads=2)
    [result] = run(d, Change(Action.UPDATE, "app-A", value=SecretValue(C1)))
    assert not result.ok and "IncorrectState" in (result.error or "")
    assert run(d, Change(Action.DELETE, "app-GONE"))[0].ok, "already scheduled: the goal holds"
    [result] = run(d, Change(Action.CREATE, "app-GONE", value=SecretValue(C1)))
    assert not result.ok and "scheduled for deletion" in (result.error or "")


def test_unknown_compartment_reads_as_a_policy_problem(oci_dest: OciVaultEmulator, oci_api_key: OciApiKey) -> None:
    v = view(config={**DEST, "compartmentOcid": "ocid1.compartment.oc1..nobody"}, options={}, connection="oci")
    d = Dest(KIND, v, connection(oci_dest, oci_api_key))
    with pytest.raises(errors.NotFound, match="policy"):
        d.session.list(d.scope())


def test_credentials_and_client_cache(oci_dest: OciVaultEmulator, oci_api_key: OciApiKey, tmp_path: Path) -> None:
    conn = connection(oci_dest, oci_api_key)
    assert oci_client.make_clients(conn) is oci_client.make_clients(conn), "built once per connection identity"
    assert oci_client.make_clients(connection(oci_dest, oci_api_key, "config-file", region=None)) is not None
    with pytest.raises(errors.ConfigError, match="region"):
        oci_client.make_clients(connection(oci_dest, oci_api_key, region=None))
    missing = ConnectionInfo(name="oci", app="oci", settings={"endpoint": oci_dest.url}, method="config-file",
                             credentials={"file": str(tmp_path / "nope")})
    with pytest.raises(errors.ConfigError, match="config file or profile not found"):
        oci_client.make_clients(missing)
    broken = ConnectionInfo(name="oci", app="oci", settings={"endpoint": oci_dest.url, "region": OCI_REGION},
                            method="api-key", credentials={"tenancy": OCI_TENANCY, "user": OCI_USER,
                                                           "fingerprint": oci_api_key.fingerprint,
                                                           "privateKey": SecretValue("not a pem")})
    with pytest.raises(errors.ConfigError) as e:
        oci_client.make_clients(broken)
    assert "not a pem" not in str(e.value)


def test_timeouts_and_concurrency_come_from_the_connection(make: Any, oci_dest: OciVaultEmulator,
                                                           oci_sleeps: list[float]) -> None:
    import time

    d = make(readTimeout=0.2, maxConcurrency=2)
    assert d.session._workers == 2
    oci_dest.inject(method="GET", path="/20180608/secrets", delay=0.5, times=3)
    with pytest.raises(errors.Transient, match=r"timed out|connection dropped"):
        d.session.list(d.scope())
    assert len(oci_sleeps) == 2, "a read that timed out is tried again, up to three times"
    deadline_at = time.monotonic() + 5  # let the delayed requests land in this test's log
    while oci_dest.count("GET", "/20180608/secrets") < 3 and time.monotonic() < deadline_at:
        time.sleep(0.05)
