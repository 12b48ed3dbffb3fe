"""The OCI Vault emulator, proven with Oracle's own client: every behaviour the destination
relies on is driven here only through the `oci` SDK (VaultsClient, SecretsClient,
oci.pagination, and its request signer), and must match what protocols.md §4 and
test-infrastructure.md §4 record of the service.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.emulators.oci_vault import (
    DEFAULT_COMPARTMENT,
    DEFAULT_KEY,
    DEFAULT_VAULT,
    MAX_CONTENT_BYTES,
    OciVaultEmulator,
)
from tests.fixtures_oci_vault import OCI_TEST_PAGE_SIZE, OciApiKey, make_api_key, oci_sdk_clients

DAY = 86400


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def _content(value: bytes) -> Any:
    import oci

    return oci.vault.models.Base64SecretContentDetails(content_type="BASE64", content=_b64(value))


def _create(vc: Any, name: str, value: bytes = b"v", **kw: Any) -> Any:
    import oci

    kw.setdefault("compartment_id", DEFAULT_COMPARTMENT)
    kw.setdefault("vault_id", DEFAULT_VAULT)
    kw.setdefault("key_id", DEFAULT_KEY)
    return vc.create_secret(oci.vault.models.CreateSecretDetails(secret_name=name, secret_content=_content(value),
                                                                 **kw))


def _update(vc: Any, secret_id: str, value: bytes | None = None, **kw: Any) -> Any:
    import oci

    if value is not None:
        kw["secret_content"] = _content(value)
    if_match = kw.pop("if_match", None)
    extra = {"if_match": if_match} if if_match else {}
    return vc.update_secret(secret_id, oci.vault.models.UpdateSecretDetails(**kw), **extra)


def _service_error(fn: Any, *args: Any, **kw: Any) -> Any:
    import oci

    with pytest.raises(oci.exceptions.ServiceError) as e:
        fn(*args, **kw)
    return e.value


def _value(sc: Any, secret_id: str, **kw: Any) -> bytes:
    return base64.b64decode(sc.get_secret_bundle(secret_id, **kw).data.secret_bundle_content.content)


def _all(vc: Any, **kw: Any) -> list[Any]:
    import oci

    return list(oci.pagination.list_call_get_all_results(vc.list_secrets, DEFAULT_COMPARTMENT, **kw).data)


# -- request signatures --------------------------------------------------------------------------
def test_every_request_is_signed_and_verified(oci_vault: OciVaultEmulator, oci_clients: tuple[Any, Any]) -> None:
    vc, sc = oci_clients
    sid = _create(vc, "db-password", b"s3cr3t").data.id
    vc.get_secret(sid)
    sc.get_secret_bundle(sid)
    sc.get_secret_bundle_by_name(secret_name="db-password", vault_id=DEFAULT_VAULT)
    assert oci_vault.count(authorized=False) == 0 and oci_vault.auth_failures == []
    assert oci_vault.count(authorized=True) == 4


def test_an_unregistered_key_is_not_authenticated(oci_vault: OciVaultEmulator, tmp_path: Path) -> None:
    stranger = make_api_key(tmp_path)  # same tenancy and user, a key the emulator never saw
    vc, sc = oci_sdk_clients(oci_vault, stranger)
    err = _service_error(_create, vc, "k")
    assert (err.status, err.code) == (401, "NotAuthenticated")
    assert err.request_id, "every answer carries opc-request-id"
    assert _service_error(sc.get_secret_bundle, "ocid1.vaultsecret.oc1..x").status == 401
    assert oci_vault.store.names() == set(), "a refused request never reaches the store"
    assert oci_vault.auth_failures == ["unknown keyId", "unknown keyId"]


def test_a_wrong_key_under_a_registered_key_id_fails_verification(oci_vault: OciVaultEmulator,
                                                                  oci_api_key: OciApiKey, tmp_path: Path) -> None:
    import oci

    forged = make_api_key(tmp_path)
    config = {**forged.config(), "fingerprint": oci_api_key.fingerprint}  # claims the registered key's id
    vc = oci.vault.VaultsClient(config, service_endpoint=oci_vault.url, retry_strategy=oci.retry.NoneRetryStrategy())
    assert _service_error(vc.list_secrets, DEFAULT_COMPARTMENT).status == 401
    assert oci_vault.auth_failures == ["signature does not verify"]


def test_a_body_changed_after_signing_is_refused(oci_vault: OciVaultEmulator, oci_api_key: OciApiKey) -> None:
    import requests
    from oci.signer import Signer

    signer = Signer(**{k: v for k, v in oci_api_key.config().items() if k not in ("key_content", "region")},
                    private_key_file_location=None, private_key_content=oci_api_key.pem)
    body = (b'{"compartmentId":"%s","vaultId":"%s","keyId":"%s","secretName":"k",'
            b'"secretContent":{"contentType":"BASE64","content":"dg=="}}'
            % (DEFAULT_COMPARTMENT.encode(), DEFAULT_VAULT.encode(), DEFAULT_KEY.encode()))
    req = requests.Request("POST", f"{oci_vault.url}/20180608/secrets", data=body,
                           headers={"content-type": "application/json"}).prepare()
    signer(req)
    with requests.Session() as session:
        assert session.send(req, timeout=5).status_code == 200
        req.body = body.replace(b"dg==", b"eA==")  # same length, different value
        tampered = session.send(req, timeout=5)
    assert tampered.status_code == 401 and tampered.json()["code"] == "NotAuthenticated"
    assert oci_vault.auth_failures == ["x-content-sha256 does not match the body"]


# -- create / get / list ---------------------------------------------------------------------------
def test_create_answers_creating_then_settles_active(oci_vault: OciVaultEmulator,
                                                     oci_clients: tuple[Any, Any]) -> None:
    vc, sc = oci_clients
    tags = {"managed-by": "reconciler", "owner": "someone-else"}
    created = _create(vc, "db.password_1-a", b"s3cr3t", freeform_tags=tags, description="d")
    assert created.data.lifecycle_state == "CREATING" and created.headers["etag"]
    assert created.data.current_version_number == 1
    got = vc.get_secret(created.data.id).data
    assert (got.lifecycle_state, got.secret_name, got.current_version_number) == ("ACTIVE", "db.password_1-a", 1)
    assert (got.compartment_id, got.vault_id, got.key_id) == (DEFAULT_COMPARTMENT, DEFAULT_VAULT, DEFAULT_KEY)
    assert got.freeform_tags == tags and got.description == "d"
    assert got.time_created.tzinfo is not None and got.time_created.utcoffset() == timedelta(0)
    assert _value(sc, created.data.id) == b"s3cr3t"


@pytest.mark.parametrize(("kw", "status", "code"), [
    ({"secret_name": "has space"}, 400, "InvalidParameter"),
    ({"secret_name": "x" * 256}, 400, "InvalidParameter"),
    ({"value": b"x" * (MAX_CONTENT_BYTES + 1)}, 400, "InvalidParameter"),
    ({"freeform_tags": {f"t{i}": "v" for i in range(11)}}, 400, "InvalidParameter"),
    ({"vault_id": "ocid1.vault.oc1.iad.unknown"}, 404, "NotAuthorizedOrNotFound"),
    ({"key_id": "ocid1.key.oc1.iad.elsewhere"}, 404, "NotAuthorizedOrNotFound"),
    ({"compartment_id": "ocid1.compartment.oc1..other"}, 404, "NotAuthorizedOrNotFound"),
])
def test_create_refusals(oci_vault: OciVaultEmulator, oci_clients: tuple[Any, Any], kw: dict[str, Any],
                         status: int, code: str) -> None:
    vc, _ = oci_clients
    name = kw.pop("secret_name", "k")
    err = _service_error(_create, vc, name, kw.pop("value", b"v"), **kw)
    assert (err.status, err.code) == (status, code) and err.message
    assert oci_vault.store.names() == set()


def test_limits_at_the_edge_are_fine(oci_clients: tuple[Any, Any]) -> None:
    vc, sc = oci_clients
    sid = _create(vc, "x" * 255, b"x" * MAX_CONTENT_BYTES, freeform_tags={f"t{i}": "v" for i in range(10)}).data.id
    assert len(_value(sc, sid)) == MAX_CONTENT_BYTES


def test_empty_content_and_duplicate_names(oci_vault: OciVaultEmulator, oci_clients: tuple[Any, Any]) -> None:
    vc, _ = oci_clients
    assert _service_error(_create, vc, "k", b"").code in ("InvalidParameter", "MissingParameter")
    _create(vc, "k")
    err = _service_error(_create, vc, "k")
    assert (err.status, err.code) == (409, "Conflict")
    _create(vc, "K")
    assert oci_vault.store.names() == {"k", "K"}, "names are case-sensitive"


def test_list_pages_through_opc_next_page(oci_vault: OciVaultEmulator, oci_clients: tuple[Any, Any]) -> None:
    vc, _ = oci_clients
    for i in range(7):
        _create(vc, f"s{i}")
    first = vc.list_secrets(DEFAULT_COMPARTMENT, vault_id=DEFAULT_VAULT)
    assert len(first.data) == OCI_TEST_PAGE_SIZE and first.has_next_page and first.next_page
    oci_vault.clear()
    everything = _all(vc, vault_id=DEFAULT_VAULT)
    assert sorted(s.secret_name for s in everything) == [f"s{i}" for i in range(7)]
    assert oci_vault.count("GET", "/20180608/secrets") == 3  # 3 + 3 + 1
    assert all(not hasattr(s, "current_version_number") for s in everything), "summaries carry no version"
    by_name = vc.list_secrets(DEFAULT_COMPARTMENT, vault_id=DEFAULT_VAULT, sort_by="NAME", sort_order="ASC",
                              limit=1000)
    assert [s.secret_name for s in by_name.data] == ["s0", "s1", "s2"], "limit is capped at the page size"
    newest = vc.list_secrets(DEFAULT_COMPARTMENT, limit=1).data[0]
    assert newest.secret_name == "s6", "TIMECREATED sorts newest first by default"
    assert [s.secret_name for s in vc.list_secrets(DEFAULT_COMPARTMENT, name="s4").data] == ["s4"]


def test_list_errors_and_scoping(oci_vault: OciVaultEmulator, oci_clients: tuple[Any, Any]) -> None:
    vc, _ = oci_clients
    other_vault, other_key = "ocid1.vault.oc1.iad.second", "ocid1.key.oc1.iad.second"
    oci_vault.store.add_vault(other_vault, DEFAULT_COMPARTMENT, other_key)
    _create(vc, "mine")
    _create(vc, "theirs", vault_id=other_vault, key_id=other_key)
    assert [s.secret_name for s in _all(vc, vault_id=DEFAULT_VAULT)] == ["mine"]
    assert {s.secret_name for s in _all(vc)} == {"mine", "theirs"}
    err = _service_error(vc.list_secrets, DEFAULT_COMPARTMENT, page="not-a-token")
    assert (err.status, err.code) == (400, "InvalidParameter")
    err = _service_error(vc.list_secrets, "ocid1.compartment.oc1..nobodys")
    assert (err.status, err.code) == (404, "NotAuthorizedOrNotFound")


# -- update and versions ---------------------------------------------------------------------------
def test_update_makes_a_new_version_and_bundles_follow(oci_vault: OciVaultEmulator,
                                                       oci_clients: tuple[Any, Any]) -> None:
    vc, sc = oci_clients
    sid = _create(vc, "k", b"one").data.id
    updated = _update(vc, sid, b"two")
    assert updated.data.lifecycle_state == "UPDATING" and updated.data.current_version_number == 2
    assert vc.get_secret(sid).data.current_version_number == 2
    assert _value(sc, sid) == b"two"
    assert _value(sc, sid, version_number=1) == b"one"
    assert _value(sc, sid, stage="PREVIOUS") == b"one"
    current = sc.get_secret_bundle(sid).data
    assert (current.version_number, sorted(current.stages)) == (2, ["CURRENT", "LATEST"])
    by_name = sc.get_secret_bundle_by_name(secret_name="k", vault_id=DEFAULT_VAULT).data
    assert by_name.secret_id == sid and base64.b64decode(by_name.secret_bundle_content.content) == b"two"
    assert _service_error(sc.get_secret_bundle, sid, version_number=9).status == 404
    err = _service_error(sc.get_secret_bundle_by_name, secret_name="nope", vault_id=DEFAULT_VAULT)
    assert (err.status, err.code) == (404, "NotAuthorizedOrNotFound")


def test_tag_only_update_keeps_the_version(oci_clients: tuple[Any, Any]) -> None:
    vc, _ = oci_clients
    sid = _create(vc, "k", freeform_tags={"a": "1"}).data.id
    _update(vc, sid, freeform_tags={"a": "1", "b": "2"})
    got = vc.get_secret(sid).data
    assert got.current_version_number == 1 and got.freeform_tags == {"a": "1", "b": "2"}


def test_update_needs_active_and_a_matching_etag(oci_vault: OciVaultEmulator,
                                                 oci_clients: tuple[Any, Any]) -> None:
    vc, _ = oci_clients
    created = _create(vc, "k")
    sid, etag = created.data.id, created.headers["etag"]
    vc.get_secret(sid)
    err = _service_error(_update, vc, sid, b"x", if_match="stale")
    assert (err.status, err.code) == (412, "NoEtagMatch")
    assert _update(vc, sid, b"x", if_match=etag).data.current_version_number == 2
    oci_vault.store.hold("k", "UPDATING", reads=2)
    assert vc.get_secret(sid).data.lifecycle_state == "UPDATING"
    err = _service_error(_update, vc, sid, b"y")
    assert (err.status, err.code) == (409, "IncorrectState")
    assert vc.get_secret(sid).data.lifecycle_state == "ACTIVE", "held for two looks, then settled"
    assert _update(vc, sid, b"y").data.current_version_number == 3


def test_transitional_states_last_n_reads_when_asked(oci_vault: OciVaultEmulator,
                                                     oci_clients: tuple[Any, Any]) -> None:
    vc, _ = oci_clients
    oci_vault.store.transition_reads = 2
    sid = _create(vc, "k").data.id
    assert [s.lifecycle_state for s in _all(vc)] == ["CREATING"]
    assert vc.get_secret(sid).data.lifecycle_state == "CREATING"
    assert vc.get_secret(sid).data.lifecycle_state == "ACTIVE"
    oci_vault.store.hold("k", "DELETING")  # until released
    for _ in range(3):
        assert vc.get_secret(sid).data.lifecycle_state == "DELETING"
    oci_vault.store.release("k")
    assert vc.get_secret(sid).data.lifecycle_state == "ACTIVE"


def test_the_sdk_recognises_incorrect_state_as_retryable(oci_vault: OciVaultEmulator, oci_api_key: OciApiKey) -> None:
    import oci

    retrying = oci.retry.RetryStrategyBuilder(max_attempts=3, retry_base_sleep_time_seconds=0,
                                              total_elapsed_time_check=False).get_retry_strategy()
    vc, _ = oci_sdk_clients(oci_vault, oci_api_key)
    sid = _create(vc, "k").data.id
    oci_vault.store.hold("k", "UPDATING", reads=1)
    assert vc.update_secret(sid, oci.vault.models.UpdateSecretDetails(secret_content=_content(b"x")),
                            retry_strategy=retrying).data.current_version_number == 2
    assert oci_vault.count("PUT") == 2


# -- deletion ----------------------------------------------------------------------------------------
def test_schedule_and_cancel_deletion(oci_vault: OciVaultEmulator, oci_clients: tuple[Any, Any]) -> None:
    import oci

    vc, sc = oci_clients
    sid = _create(vc, "k", b"keep").data.id
    vc.get_secret(sid)
    vc.schedule_secret_deletion(sid, oci.vault.models.ScheduleSecretDeletionDetails())
    got = vc.get_secret(sid).data
    assert got.lifecycle_state == "PENDING_DELETION"
    days = (got.time_of_deletion - datetime.now(UTC)).total_seconds() / DAY
    assert 29.9 < days <= 30, "the default window is 30 days"
    assert _service_error(_create, vc, "k").code == "Conflict", "the name stays taken while pending"
    assert _service_error(_update, vc, sid, b"x").code == "IncorrectState"
    again = _service_error(vc.schedule_secret_deletion, sid, oci.vault.models.ScheduleSecretDeletionDetails())
    assert (again.status, again.code) == (409, "IncorrectState")
    vc.cancel_secret_deletion(sid)
    got = vc.get_secret(sid).data
    assert (got.lifecycle_state, got.time_of_deletion) == ("ACTIVE", None)
    assert _value(sc, sid) == b"keep"
    assert _service_error(vc.cancel_secret_deletion, sid).code == "IncorrectState"


def test_deletion_window_bounds_and_expiry(oci_vault: OciVaultEmulator, oci_clients: tuple[Any, Any]) -> None:
    import oci

    vc, _ = oci_clients
    sid = _create(vc, "k").data.id

    def schedule(days: float) -> Any:
        when = datetime.now(UTC) + timedelta(days=days)
        return vc.schedule_secret_deletion(sid, oci.vault.models.ScheduleSecretDeletionDetails(time_of_deletion=when))

    for days in (0.5, 31):
        err = _service_error(schedule, days)
        assert (err.status, err.code) == (400, "InvalidParameter")
    schedule(7)
    oci_vault.store.transition_reads = 0
    assert vc.get_secret(sid).data.lifecycle_state == "PENDING_DELETION"
    oci_vault.store.advance(7 * DAY + 1)
    assert _service_error(vc.get_secret, sid).status == 404, "deleted once the window passed"
    assert [s.lifecycle_state for s in _all(vc)] == ["DELETED"], "still listed, as DELETED"
    assert _create(vc, "k").data.id != sid, "the name is free again"


# -- faults, counts, errors ------------------------------------------------------------------------
def test_injected_throttling_carries_retry_after(oci_vault: OciVaultEmulator,
                                                 oci_clients: tuple[Any, Any]) -> None:
    vc, _ = oci_clients
    oci_vault.inject(method="POST", path="/20180608/secrets", status=429, headers={"Retry-After": "7"})
    err = _service_error(_create, vc, "k")
    assert (err.status, err.code) == (429, "TooManyRequests") and err.headers["retry-after"] == "7"
    assert err.request_id
    assert oci_vault.store.names() == set(), "a throttled request is not processed"
    oci_vault.inject(method="GET", path="/20180608/secrets", status=503)
    err = _service_error(vc.list_secrets, DEFAULT_COMPARTMENT)
    assert (err.status, err.code) == (503, "ServiceUnavailable")
    assert oci_vault.count("POST", "/20180608/secrets") == 1


def test_sdk_pagination_helpers_retry_whatever_the_client_says(oci_vault: OciVaultEmulator,
                                                               oci_clients: tuple[Any, Any]) -> None:
    """oci.pagination wraps every page call in DEFAULT_RETRY_STRATEGY (8 tries, 600 s) even
    when the client was built with NoneRetryStrategy: whoever owns retries must page by hand."""
    vc, _ = oci_clients
    _create(vc, "k")
    oci_vault.clear()
    oci_vault.inject(method="GET", path="/20180608/secrets", status=503)
    assert [s.secret_name for s in _all(vc)] == ["k"]
    assert oci_vault.count("GET", "/20180608/secrets") == 2, "the helper retried a 503 on its own"


def test_drops_and_delays(oci_vault: OciVaultEmulator, oci_clients: tuple[Any, Any], oci_api_key: OciApiKey) -> None:
    import oci

    vc, sc = oci_clients
    sid = _create(vc, "k", b"one").data.id
    oci_vault.inject(method="PUT", drop="after")
    with pytest.raises(oci.exceptions.RequestException, match="Connection"):
        _update(vc, sid, b"landed")
    assert oci_vault.store.value("k") == b"landed", "drop after: the write happened, the answer was lost"
    oci_vault.inject(method="PUT", drop="before")
    with pytest.raises(oci.exceptions.RequestException, match="Connection"):
        _update(vc, sid, b"never")
    assert oci_vault.store.value("k") == b"landed"
    _, slow = oci_sdk_clients(oci_vault, oci_api_key, timeout=(2, 0.2))
    oci_vault.inject(method="GET", path="/20190301/.*", delay=0.5)
    with pytest.raises(oci.exceptions.RequestException, match="timed out"):
        slow.get_secret_bundle(sid)
    assert _value(sc, sid) == b"landed"
    deadline = time.monotonic() + 5  # the delayed request still lands: not in the next test's log
    while oci_vault.count("GET", "/20190301/.*") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)


def test_request_ids_are_echoed_and_requests_counted(oci_vault: OciVaultEmulator,
                                                     oci_clients: tuple[Any, Any]) -> None:
    vc, sc = oci_clients
    sid = _create(vc, "k").data.id
    got = vc.get_secret(sid, opc_request_id="MYREQUESTID")
    assert got.request_id.startswith("MYREQUESTID/")
    sc.get_secret_bundle(sid)
    sc.get_secret_bundle_by_name(secret_name="k", vault_id=DEFAULT_VAULT)
    assert oci_vault.value_reads() == 2
    assert oci_vault.writes() == 1
    assert oci_vault.count("GET", r"/20180608/secrets/[^/]+") == 1


def test_runs_as_a_module_for_the_demo(tmp_path: Path) -> None:
    import oci

    seed = tmp_path / "seed.yaml"
    seed.write_text("secrets:\n  - {name: seeded, value: from-seed}\n"
                    "  - {name: old, value: x, state: PENDING_DELETION}\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.emulators.oci_vault", "--port", "0", "--key-dir", str(tmp_path / "k"),
         "--seed", str(seed), "--page-size", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
        cwd=Path(__file__).parent.parent)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("oci vault on http://127.0.0.1:"), line + (proc.stderr.read() if proc.stderr else "")
        url = line.split()[3]
        config = oci.config.from_file(str(tmp_path / "k" / "config"))
        kw = {"service_endpoint": url, "retry_strategy": oci.retry.NoneRetryStrategy()}
        vc, sc = oci.vault.VaultsClient(config, **kw), oci.secrets.SecretsClient(config, **kw)
        states = {s.secret_name: s.lifecycle_state for s in _all(vc)}
        assert states == {"seeded": "ACTIVE", "old": "PENDING_DELETION"}
        bundle = sc.get_secret_bundle_by_name(secret_name="seeded", vault_id=DEFAULT_VAULT).data
        assert base64.b64decode(bundle.secret_bundle_content.content) == b"from-seed"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
