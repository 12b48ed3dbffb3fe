"""The Key Vault emulator, proven with Microsoft's own client: every behaviour the
destination relies on is driven here only through azure-keyvault-secrets' SecretClient
(and azure-identity's ClientSecretCredential), and must match what the service documents.
"""

from __future__ import annotations

import http.client
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.emulators.azure_keyvault import DEFAULT_TENANT, FakeIdentityProvider, KeyVaultEmulator
from tests.fixtures_azure import AZ_CLIENT_ID, AZ_CLIENT_SECRET


def _client(kv: KeyVaultEmulator, idp: FakeIdentityProvider, ca: Path, **kw: Any) -> Any:
    from azure.identity import ClientSecretCredential
    from azure.keyvault.secrets import SecretClient

    cred = ClientSecretCredential(DEFAULT_TENANT, AZ_CLIENT_ID, kw.pop("secret", AZ_CLIENT_SECRET),
                                  authority=idp.url, disable_instance_discovery=True, connection_verify=str(ca))
    kw.setdefault("retry_total", 0)
    return SecretClient(kv.url, cred, verify_challenge_resource=False, connection_verify=str(ca), **kw)


def _raw(kv: KeyVaultEmulator, ca: Path, method: str, path: str, body: bytes = b"",
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    ctx = ssl.create_default_context(cafile=str(ca))
    conn = http.client.HTTPSConnection("127.0.0.1", kv.port, context=ctx, timeout=5)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    out = resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    conn.close()
    return out


def test_challenge_comes_before_the_body_is_read(keyvault: KeyVaultEmulator, azure_ca_file: Path) -> None:
    status, headers, body = _raw(keyvault, azure_ca_file, "PUT", "/secrets/x?api-version=7.6", b"{not json",
                                 {"Content-Type": "application/json"})
    assert status == 401
    assert headers["www-authenticate"] == (f'Bearer authorization="https://login.microsoftonline.com/'
                                           f'{DEFAULT_TENANT}", resource="https://vault.azure.net"')
    assert b"AKV10000" in body and b'"Unauthorized"' in body
    assert keyvault.vault.names() == set()


def test_sdk_handshake_and_token_from_the_identity_provider(
        keyvault: KeyVaultEmulator, azure_idp_server: FakeIdentityProvider, azure_ca_file: Path) -> None:
    from azure.keyvault.secrets._shared import http_challenge_cache

    http_challenge_cache.clear()
    client = _client(keyvault, azure_idp_server, azure_ca_file)
    client.set_secret("db-password", "s3cr3t")
    client.get_secret("db-password")
    first, second = keyvault.log[0], keyvault.log[1]
    assert (first.method, first.status, first.authorized) == ("PUT", 401, False)
    assert (second.method, second.status, second.authorized) == ("PUT", 200, True)
    assert azure_idp_server.count("POST", rf"/{DEFAULT_TENANT}/oauth2/v2.0/token") == 1, "token cached"
    assert keyvault.count(authorized=False) == 1


def test_tokens_the_identity_provider_did_not_issue_are_refused(
        keyvault: KeyVaultEmulator, azure_idp_server: FakeIdentityProvider, azure_ca_file: Path) -> None:
    from azure.core.credentials import AccessToken
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
    from azure.keyvault.secrets import SecretClient

    class Forged:
        def get_token(self, *scopes: str, **kw: Any) -> AccessToken:
            return AccessToken("forged", int(time.time()) + 3600)

    client = SecretClient(keyvault.url, Forged(), verify_challenge_resource=False,
                          connection_verify=str(azure_ca_file), retry_total=0)
    with pytest.raises((ClientAuthenticationError, HttpResponseError)) as e:
        client.set_secret("x", "y")
    assert "401" in str(e.value) or "Unauthorized" in str(e.value)
    bad = _client(keyvault, azure_idp_server, azure_ca_file, secret="wrong")
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        bad.get_secret("x")


def test_set_get_latest_and_by_version(kv_client: Any, keyvault: KeyVaultEmulator) -> None:
    first = kv_client.set_secret("db-password", "v1", tags={"team": "a"}, content_type="text/plain")
    second = kv_client.set_secret("db-password", "v2")
    assert first.properties.version != second.properties.version and len(second.properties.version) == 32
    assert second.id == f"{keyvault.url}/secrets/db-password/{second.properties.version}"
    latest = kv_client.get_secret("db-password")
    assert latest.value == "v2" and latest.properties.tags == {} and latest.properties.content_type is None
    old = kv_client.get_secret("db-password", first.properties.version)
    assert old.value == "v1" and old.properties.tags == {"team": "a"} and old.properties.content_type == "text/plain"
    assert any(r.method == "GET" and r.path == "/secrets/db-password/" for r in keyvault.log), "latest = trailing /"
    assert latest.properties.recovery_level == "Recoverable+Purgeable"
    assert latest.properties.created_on is not None and latest.properties.updated_on is not None


def test_update_properties_moves_updated_and_keeps_the_value(kv_client: Any, keyvault: KeyVaultEmulator) -> None:
    s = kv_client.set_secret("k", "v")
    keyvault.vault.advance(10)
    props = kv_client.update_secret_properties("k", tags={"owner": "ops"}, content_type="application/json")
    assert props.tags == {"owner": "ops"} and props.content_type == "application/json"
    assert props.updated_on > s.properties.updated_on and props.version == s.properties.version
    assert any(r.method == "PATCH" and r.path == "/secrets/k/" for r in keyvault.log)
    assert kv_client.get_secret("k").value == "v"


def test_list_pages_with_absolute_next_links(kv_client: Any, keyvault: KeyVaultEmulator) -> None:
    for i in range(60):
        kv_client.set_secret(f"s{i:02d}", "v", tags={"i": str(i)})
    keyvault.clear()
    listed = list(kv_client.list_properties_of_secrets())
    assert sorted(p.name for p in listed) == sorted(f"s{i:02d}" for i in range(60))
    assert all(p.tags == {"i": p.name[1:].lstrip("0") or "0"} for p in listed), "list items carry tags"
    assert all(p.updated_on is not None for p in listed), "and attributes.updated"
    assert keyvault.count("GET", "/secrets") == 3, "25 a page"
    assert "$skiptoken=" in keyvault.log[1].query
    keyvault.clear()
    assert len(list(kv_client.list_properties_of_secrets(max_page_size=10))) == 60
    assert keyvault.count("GET", "/secrets") == 6


def test_versions_list(kv_client: Any) -> None:
    for v in ("a", "b", "c"):
        kv_client.set_secret("k", v)
    versions = list(kv_client.list_properties_of_secret_versions("k"))
    assert len(versions) == 3 and len({p.version for p in versions}) == 3


def test_soft_delete_recover_purge(kv_client: Any, keyvault: KeyVaultEmulator) -> None:
    from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

    kv_client.set_secret("k", "v", tags={"a": "b"})
    deleted = kv_client.begin_delete_secret("k", _polling_interval=0.01).result()
    assert deleted.recovery_id == f"{keyvault.url}/deletedsecrets/k"
    assert deleted.deleted_date is not None and deleted.scheduled_purge_date > deleted.deleted_date
    with pytest.raises(ResourceNotFoundError) as nf:
        kv_client.get_secret("k")
    assert nf.value.error.code == "SecretNotFound"
    assert kv_client.get_deleted_secret("k").properties.tags == {"a": "b"}
    assert [d.name for d in kv_client.list_deleted_secrets()] == ["k"]
    assert [p.name for p in kv_client.list_properties_of_secrets()] == []

    with pytest.raises(ResourceExistsError) as conflict:
        kv_client.set_secret("k", "again")
    assert conflict.value.status_code == 409
    assert conflict.value.error.code == "Conflict"
    assert conflict.value.error.innererror["code"] == "ObjectIsDeletedButRecoverable"

    kv_client.begin_recover_deleted_secret("k", _polling_interval=0.01).wait()
    assert kv_client.get_secret("k").value == "v"
    kv_client.begin_delete_secret("k", _polling_interval=0.01).wait()
    kv_client.purge_deleted_secret("k")
    assert any(r.method == "DELETE" and r.path == "/deletedsecrets/k" and r.status == 204 for r in keyvault.log)
    with pytest.raises(ResourceNotFoundError):
        kv_client.get_deleted_secret("k")
    assert kv_client.set_secret("k", "fresh").value == "fresh"


def test_purge_protection_and_soft_delete_off(kv_client: Any, keyvault: KeyVaultEmulator) -> None:
    from azure.core.exceptions import HttpResponseError

    keyvault.vault.purge_protection = True
    kv_client.set_secret("k", "v")
    kv_client.begin_delete_secret("k", _polling_interval=0.01).wait()
    with pytest.raises(HttpResponseError) as e:
        kv_client.purge_deleted_secret("k")
    assert e.value.status_code == 403

    keyvault.vault.purge_protection, keyvault.vault.soft_delete = False, False
    kv_client.set_secret("gone", "v")
    deleted = kv_client.begin_delete_secret("gone").result()
    assert deleted.recovery_id is None
    assert kv_client.set_secret("gone", "reused").value == "reused"


def test_disabled_secret(kv_client: Any) -> None:
    from azure.core.exceptions import HttpResponseError

    kv_client.set_secret("k", "v")
    kv_client.update_secret_properties("k", enabled=False)
    with pytest.raises(HttpResponseError) as e:
        kv_client.get_secret("k")
    assert e.value.status_code == 403 and e.value.error.code == "Forbidden"
    assert [p.enabled for p in kv_client.list_properties_of_secrets()] == [False]
    kv_client.update_secret_properties("k", enabled=True)
    assert kv_client.get_secret("k").value == "v"


@pytest.mark.parametrize(("name", "value", "tags"), [
    ("bad_name", "v", None),
    ("x" * 128, "v", None),
    ("ok", "x" * (25 * 1024 + 1), None),
    ("ok", "v", {f"t{i}": "v" for i in range(16)}),
    ("ok", "v", {"t": "x" * 257}),
])
def test_limits_are_bad_parameter(kv_client: Any, name: str, value: str, tags: dict[str, str] | None) -> None:
    from azure.core.exceptions import HttpResponseError

    with pytest.raises(HttpResponseError) as e:
        kv_client.set_secret(name, value, tags=tags)
    assert e.value.status_code == 400 and e.value.error.code == "BadParameter"


def test_limits_at_the_edge_are_fine(kv_client: Any) -> None:
    kv_client.set_secret("x" * 127, "x" * (25 * 1024), tags={f"t{i}": "v" * 256 for i in range(15)})
    assert kv_client.set_secret("empty", "").value == ""


def test_names_are_case_insensitive(kv_client: Any, keyvault: KeyVaultEmulator) -> None:
    kv_client.set_secret("Db-Password", "v1")
    kv_client.set_secret("DB-PASSWORD", "v2")
    assert kv_client.get_secret("db-password").value == "v2"
    assert [p.name for p in kv_client.list_properties_of_secrets()] == ["Db-Password"]
    assert keyvault.vault.version_count("db-password") == 2


def test_api_versions(keyvault: KeyVaultEmulator, azure_idp_server: FakeIdentityProvider, azure_ca_file: Path,
                      kv_client: Any) -> None:
    old = _client(keyvault, azure_idp_server, azure_ca_file, api_version="7.4")
    old.set_secret("k", "v")
    assert "api-version=7.4" in keyvault.log[-1].query
    assert kv_client.get_secret("k").value == "v"
    assert "api-version=2026-04-01" in keyvault.log[-1].query
    token = azure_idp_server._issued.copy().pop()
    status, _, body = _raw(keyvault, azure_ca_file, "GET", "/secrets?api-version=1999-01-01",
                           headers={"Authorization": f"Bearer {token}"})
    assert status == 400 and b"BadParameter" in body


def test_injected_throttling_is_honoured_by_the_sdk(keyvault: KeyVaultEmulator, azure_idp_server: FakeIdentityProvider,
                                                    azure_ca_file: Path, kv_client: Any) -> None:
    from azure.core.exceptions import HttpResponseError

    keyvault.inject(method="PUT", status=429, headers={"Retry-After": "7"})
    with pytest.raises(HttpResponseError) as e:
        kv_client.set_secret("k", "v")
    assert e.value.status_code == 429 and e.value.response.headers["Retry-After"] == "7"
    assert e.value.error.code == "Throttled"
    assert keyvault.vault.names() == set(), "a throttled request is not processed"

    retrying = _client(keyvault, azure_idp_server, azure_ca_file, retry_total=2)
    keyvault.inject(method="PUT", status=429, headers={"retry-after-ms": "50"})
    t0 = time.monotonic()
    assert retrying.set_secret("k", "v").value == "v"
    assert time.monotonic() - t0 >= 0.05
    assert keyvault.count("PUT") == 3  # one refused above, then one throttled and its retry


def test_injected_errors_drops_and_delays(keyvault: KeyVaultEmulator, azure_idp_server: FakeIdentityProvider,
                                          azure_ca_file: Path, kv_client: Any) -> None:
    from azure.core.exceptions import HttpResponseError, ServiceResponseError

    keyvault.inject(method="GET", path="/secrets/k/", status=503)
    kv_client.set_secret("k", "v")
    with pytest.raises(HttpResponseError) as e:
        kv_client.get_secret("k")
    assert e.value.status_code == 503

    keyvault.inject(method="PUT", drop="after")
    with pytest.raises(ServiceResponseError):
        kv_client.set_secret("k", "landed")
    assert keyvault.vault.value("k") == "landed", "drop after: the write happened, the answer was lost"
    keyvault.inject(method="PUT", drop="before")
    with pytest.raises(ServiceResponseError):
        kv_client.set_secret("k", "never")
    assert keyvault.vault.value("k") == "landed"

    slow = _client(keyvault, azure_idp_server, azure_ca_file, read_timeout=0.2)
    keyvault.inject(method="GET", delay=0.5)
    with pytest.raises(ServiceResponseError):
        slow.get_secret("k")
    assert kv_client.get_secret("k").value == "landed"


def test_runs_as_a_module_for_the_demo(tmp_path: Path) -> None:
    env = {**os.environ, "DEMO_SECRET": "s"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.emulators.azure_keyvault", "--port", "0", "--idp-port", "0",
         "--ca-dir", str(tmp_path), "--client", "t:c:DEMO_SECRET"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=Path(__file__).parent.parent)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("key vault on https://127.0.0.1:"), line + (proc.stderr.read() if proc.stderr else "")
        assert (tmp_path / "ca.pem").is_file()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
