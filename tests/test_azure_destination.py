"""The Key Vault destination module: pure name rules, credential and client choices, and
the retry/translation layer against the emulator (the SDK is never mocked; only our own
sleep is replaced by fake time)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler import calls
from reconciler.changes import Action, Change, ChangeResult
from reconciler.destinations import catalog, errors
from reconciler.destinations.azure_key_vault import client as azure_client
from reconciler.destinations.azure_key_vault import rules as azure_rules
from reconciler.destinations.azure_key_vault.session import AzureKeyVault
from reconciler.destinations.catalog import SyncView
from reconciler.destinations.contract import ConnectionInfo
from reconciler.model import Fingerprinter, Lifecycle, SecretValue, SourceSecret
from tests.emulators.azure_keyvault import DEFAULT_TENANT, FakeIdentityProvider, KeyVaultEmulator
from tests.fixtures_azure import AZ_CLIENT_ID, AZ_CLIENT_SECRET
from tests.support.canary import CANARIES, find_leaks
from tests.support.dest import Dest, view

C1, C2, C3 = CANARIES
FP = Fingerprinter(b"0123456789abcdef0123456789abcdef")


KIND = "azure-key-vault"


def target(url: str, schema: str | None = "app-{{secretKey}}", **config: Any) -> SyncView:
    opts = {"keySchema": schema} if schema else {}
    return view(config={"vaultBaseUrl": url, **config}, options=opts, connection="akv")


def connection(idp: FakeIdentityProvider | None, ca: Path | None, method: str = "client-secret",
               **settings: Any) -> ConnectionInfo:
    base: dict[str, Any] = {}
    if idp is not None:
        base["authorityHost"] = idp.url
    if ca is not None:
        base["caBundle"] = str(ca)
    base.update(settings)
    creds: dict[str, Any] = {}
    if method == "client-secret":
        creds = {"tenantId": DEFAULT_TENANT, "clientId": AZ_CLIENT_ID, "clientSecret": SecretValue(AZ_CLIENT_SECRET)}
    return ConnectionInfo(name="akv", app="azure-key-vault", settings=base, method=method, credentials=creds)


@pytest.fixture
def make(keyvault: KeyVaultEmulator, azure_idp_server: FakeIdentityProvider, azure_ca_file: Path) -> Any:
    made: list[Dest] = []

    def _make(schema: str | None = "app-{{secretKey}}", **settings: Any) -> Dest:
        config = settings.pop("config", {})
        d = Dest(KIND, target(keyvault.url, schema, **config),
                 connection(azure_idp_server, azure_ca_file, **settings))
        made.append(d)
        return d

    yield _make
    for d in made:
        d.close()


def secret(key: str, value: str) -> SourceSecret:
    return SourceSecret(key=key, value=SecretValue(value))


def run(dest: Dest, changes: list[Change]) -> list[ChangeResult]:
    results: list[ChangeResult] = []
    dest.apply(changes, results.append)
    assert not find_leaks([r.error for r in results if r.error])
    order = {id(c): i for i, c in enumerate(changes)}
    return sorted(results, key=lambda r: order[id(r.change)])


def create(key: str, value: str, sync: str = "payments") -> Change:
    v = SecretValue(value)
    return Change(Action.CREATE, key, value=v, fingerprint=FP(v),
                  set_properties={"tag:managed-by": "reconciler", "tag:reconciler-sync": sync})


# -- pure rules ------------------------------------------------------------------------------


def test_catalog_opens_it(keyvault: KeyVaultEmulator, azure_idp_server: FakeIdentityProvider,
                          azure_ca_file: Path) -> None:
    desc = catalog.default()[KIND]
    d = desc.open(target(keyvault.url), connection(azure_idp_server, azure_ca_file))
    assert isinstance(d, AzureKeyVault)
    assert desc.capabilities.max_value_bytes == 25 * 1024 and desc.names.case_insensitive
    d.close()


@pytest.mark.parametrize(("name", "ok"), [("a", True), ("A-b-9", True), ("x" * 127, True), ("x" * 128, False),
                                          ("", False), ("a_b", False), ("a/b", False), ("ä", False)])
def test_name_rules(name: str, ok: bool) -> None:
    assert (azure_rules.NAMES.problem(name) is None) is ok


@pytest.mark.parametrize(("url", "verify"), [
    ("https://my-vault.vault.azure.net", True), ("https://v.vault.azure.cn/", True),
    ("https://v.vault.usgovcloudapi.net", True), ("https://vault.azure.net", False),
    ("https://127.0.0.1:8443", False), ("https://kv.internal.example", False),
    ("https://evil-vault.azure.net.example.com", False),
])
def test_challenge_resource_check_only_for_cloud_vault_domains(url: str, verify: bool) -> None:
    assert azure_rules.verifies_challenge(url) is verify


@pytest.mark.parametrize(("authority", "microsoft"), [
    ("https://login.microsoftonline.com", True), ("login.microsoftonline.us", True),
    ("https://login.chinacloudapi.cn/", True), ("https://127.0.0.1:9443", False),
    ("https://login.microsoftonline.com.evil.example", False),
])
def test_microsoft_authorities(authority: str, microsoft: bool) -> None:
    assert azure_rules.is_microsoft_authority(authority) is microsoft


def test_desired_renames_and_reports_collisions(make: Any) -> None:
    d = make("APP_{{secretKey}}")
    specs, problems = d.desired([secret("DB_PASSWORD", C1), secret("db-password", C2), secret("A_B", C3),
                                 secret("bad.key", "x"), secret("OK", "x")])
    assert sorted(s.key for s in specs) == ["APP-A-B", "APP-OK"]
    assert len(problems) == 2
    assert any("DB_PASSWORD" in p and "db-password" in p for p in problems)
    assert any("bad.key" in p and "letters, digits and '-'" in p for p in problems)
    assert d.scope().schema == "APP-{{secretKey}}"
    assert not find_leaks(problems)


def test_environment_underscore_is_renamed_too(keyvault: KeyVaultEmulator, azure_idp_server: FakeIdentityProvider,
                                               azure_ca_file: Path) -> None:
    t = view("s", "my_env", config={"vaultBaseUrl": keyvault.url},
             options={"keySchema": "{{environment}}-{{secretKey}}"})
    d = Dest(KIND, t, connection(azure_idp_server, azure_ca_file))
    specs, _ = d.desired([secret("K_1", "v")])
    assert [s.key for s in specs] == ["my-env-K-1"]
    assert d.scope().environment == "my-env"
    d.close()


def test_importable_maps_names_back(make: Any) -> None:
    d = make("APP_{{secretKey}}")
    d.desired([secret("my-key", "x")])
    got = d.importable({"APP-my-key": SecretValue("1"), "APP-NEW-ONE": SecretValue("2"), "APP-": SecretValue("3")})
    assert {k: v.reveal() for k, v in got.items()} == {"my-key": "1", "NEW_ONE": "2"}


def test_many_to_one_desired_and_import(make: Any) -> None:
    d = make(None, config={"mappingBehavior": "many-to-one", "secretName": "bundle"})
    specs, problems = d.desired([secret("B", "2"), secret("A", "1")])
    assert problems == [] and [s.key for s in specs] == ["bundle"]
    assert specs[0].value.reveal() == '{"A":"1","B":"2"}'
    assert d.scope().exact == frozenset({"bundle"})
    got = d.importable({"bundle": SecretValue('{"A":"x","N":1,"Z":null,"O":{}}')})
    assert {k: v.reveal() for k, v in got.items()} == {"A": "x", "N": "1"}


# -- observation and apply against the emulator ------------------------------------------------


def test_listing_marks_disabled_pending_and_collisions(make: Any, kv_client: Any) -> None:
    kv_client.set_secret("app-ON", "1", tags={"reconciler-sync": "payments"})
    kv_client.set_secret("app-OFF", "2")
    kv_client.update_secret_properties("app-OFF", enabled=False)
    kv_client.set_secret("app-GONE", "3")
    kv_client.begin_delete_secret("app-GONE", _polling_interval=0.01).wait()
    kv_client.set_secret("app-CLASH", "4")
    d = make()
    d.desired([secret("ON", "1"), secret("OFF", "x"), secret("GONE", "3"), secret("CLASH", "a"),
               secret("clash", "b")])
    entries = {e.key: e for e in d.list_entries()}
    assert set(entries) == {"app-ON", "app-OFF", "app-GONE"}, "a colliding name is hidden, never touched"
    assert entries["app-ON"].lifecycle is Lifecycle.ACTIVE and entries["app-ON"].owner == "payments"
    assert entries["app-ON"].version and entries["app-ON"].version.isdigit()
    assert entries["app-OFF"].lifecycle is Lifecycle.DISABLED
    assert entries["app-GONE"].lifecycle is Lifecycle.PENDING_DELETION
    assert calls.by_call("azure-key-vault").get("get-deleted") == 1, "only the missing desired key is looked up"
    assert d.read_values(["app-ON", "app-OFF", "app-NONE"]) == {"app-ON": SecretValue("1")}


def test_many_missing_keys_list_deleted_secrets_instead(make: Any) -> None:
    d = make()
    d.desired([secret(f"K{i}", "v") for i in range(10)])
    calls.reset()
    assert d.list_entries() == []
    assert calls.by_call("azure-key-vault") == {"list": 1, "list-deleted": 1}


def test_write_keeps_foreign_tags_and_the_tag_limit_is_planned(make: Any, kv_client: Any) -> None:
    d = make()
    d.desired([secret("A", C1)])
    assert run(d, [create("app-A", C1)])[0].ok
    tags = {**{f"t{i}": "x" for i in range(13)}, "managed-by": "reconciler", "reconciler-sync": "payments"}
    kv_client.update_secret_properties("app-A", tags=tags)
    d.list_entries()
    final = {f"tag:{k}": v for k, v in {**tags, "extra": "1"}.items()}
    assert "16 tags exceed" in "; ".join(d.descriptor.property_problems(final))
    v = SecretValue(C2)
    [r] = run(d, [Change(Action.UPDATE, "app-A", value=v, fingerprint=FP(v))])
    assert r.ok and r.version
    assert kv_client.get_secret("app-A").properties.tags["t12"] == "x"


def test_create_over_a_soft_deleted_name_says_what_to_do(make: Any, kv_client: Any) -> None:
    kv_client.set_secret("app-A", "old")
    kv_client.begin_delete_secret("app-A", _polling_interval=0.01).wait()
    d = make()
    [r] = run(d, [create("app-A", C1)])
    assert not r.ok and "soft-deleted" in (r.error or "") and "restores" in (r.error or "")


def test_restore_of_a_purged_secret_fails_fast(make: Any, azure_sleeps: list[float]) -> None:
    d = make()
    [r] = run(d, [Change(Action.RESTORE, "app-A")])
    assert not r.ok and "purged" in (r.error or "")
    assert azure_sleeps == []


def test_retry_after_beyond_the_cap_is_raised_not_slept(make: Any, keyvault: KeyVaultEmulator,
                                                        azure_sleeps: list[float]) -> None:
    d = make()
    keyvault.inject(method="GET", path="/secrets", status=429, headers={"Retry-After": "600"})
    with pytest.raises(errors.Throttled) as e:
        d.list_entries()
    assert e.value.retry_after == 600 and azure_sleeps == []


def test_retry_after_ms_and_backoff(make: Any, keyvault: KeyVaultEmulator, azure_sleeps: list[float]) -> None:
    d = make()
    keyvault.inject(method="GET", path="/secrets", status=429, headers={"retry-after-ms": "1500"})
    keyvault.inject(method="GET", path="/secrets", status=502)
    assert d.list_entries() == []
    assert azure_sleeps[0] == 1.5 and 0 < azure_sleeps[1] <= azure_client.BACKOFF * 2


def test_errors_are_ours_and_name_codes(make: Any, keyvault: KeyVaultEmulator) -> None:
    d = make(maxAttempts=1)
    keyvault.inject(method="GET", path="/secrets", status=403,
                    body={"error": {"code": "Forbidden", "message": f"Access denied {C1}",
                                    "innererror": {"code": "ForbiddenByPolicy"}}})
    with pytest.raises(errors.AuthError) as e:
        d.list_entries()
    assert "HTTP 403 Forbidden/ForbiddenByPolicy" in str(e.value) and C1 not in str(e.value)


def test_a_next_link_to_another_host_is_not_followed(make: Any, keyvault: KeyVaultEmulator) -> None:
    d = make()
    keyvault.inject(method="GET", path="/secrets", status=200,
                    body={"value": [], "nextLink": "https://127.0.0.2:1/secrets?$skiptoken=x"})
    with pytest.raises(errors.Permanent, match="another host"):
        d.list_entries()


def test_untrusted_certificate_is_permanent_and_names_the_remedy(keyvault: KeyVaultEmulator,
                                                 azure_idp_server: FakeIdentityProvider) -> None:
    from azure.core.credentials import AccessToken

    class Static:
        def get_token(self, *scopes: str, **kw: Any) -> AccessToken:
            return AccessToken("x", 2**31)

    from azure.keyvault.secrets import SecretClient

    # no caBundle: the system trust store does not know the emulator's CA
    http = azure_client.VaultHttp(SecretClient(keyvault.url, Static(), verify_challenge_resource=False,
                                               retry_total=0), attempts=3)
    with pytest.raises(errors.Permanent, match="caBundle"):
        http.call("GET", "/secrets")
    http.close()


def test_challenge_check_is_off_for_the_emulator_and_said_once(
        keyvault: KeyVaultEmulator, azure_idp_server: FakeIdentityProvider, azure_ca_file: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from reconciler.logging import configure

    configure("json", "debug")
    azure_client._warned.clear()
    for _ in range(2):
        azure_client.make_client(connection(azure_idp_server, azure_ca_file), keyvault.url).close()
    err = capsys.readouterr().err
    assert err.count("keyvault.challenge_check_off") == 1
    assert '"level": "debug"' in err, "a vault on loopback (an emulator) is not worth a warning"
    private = "https://vault.corp.example:8443"
    azure_client.make_client(connection(azure_idp_server, azure_ca_file), private).close()
    lines = [ln for ln in capsys.readouterr().err.splitlines() if "keyvault.challenge_check_off" in ln]
    assert len(lines) == 1 and '"level": "warning"' in lines[0]
    cloud = azure_client.make_client(connection(azure_idp_server, azure_ca_file), "https://x.vault.azure.net")
    assert cloud._client._config.authentication_policy._verify_challenge_resource is True
    cloud.close()


def test_credential_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    from azure import identity

    seen: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def fake(name: str) -> Any:
        return lambda *a, **kw: seen.append((name, a, kw)) or object()

    for name in ("ClientSecretCredential", "ManagedIdentityCredential", "DefaultAzureCredential"):
        monkeypatch.setattr(identity, name, fake(name))
    monkeypatch.setattr(azure_client, "_credentials", {})
    sovereign = ConnectionInfo(name="c", app="azure-key-vault", method="client-secret",
                               settings={"authorityHost": "https://login.microsoftonline.us"},
                               credentials={"tenantId": "t", "clientId": "c", "clientSecret": SecretValue("s")})
    azure_client.credential(sovereign)
    azure_client.credential(sovereign)  # cached per process
    private = ConnectionInfo(name="p", app="azure-key-vault", method="default",
                             settings={"authorityHost": "https://idp.internal", "caBundle": "/ca.pem"})
    azure_client.credential(private)
    mi = ConnectionInfo(name="m", app="azure-key-vault", method="managed-identity", credentials={"clientId": "u"})
    azure_client.credential(mi)
    assert [s[0] for s in seen] == ["ClientSecretCredential", "DefaultAzureCredential", "ManagedIdentityCredential"]
    assert seen[0][1] == ("t", "c", "s") and "disable_instance_discovery" not in seen[0][2]
    assert seen[0][2]["authority"] == "https://login.microsoftonline.us"
    assert seen[1][2] == {"authority": "https://idp.internal", "disable_instance_discovery": True,
                          "connection_verify": "/ca.pem"}
    assert seen[2][2] == {"client_id": "u"}
    with pytest.raises(errors.ConfigError, match="tenantId"):
        azure_client.credential(ConnectionInfo(name="x", app="azure-key-vault", method="client-secret"))


def test_operation_names() -> None:
    op = azure_client.operation
    assert op("GET", "https://v/secrets?maxresults=25") == "list"
    assert op("GET", "/secrets/a/") == "get"
    assert op("PUT", "/secrets/a") == "set"
    assert op("PATCH", "/secrets/a/") == "update"
    assert op("DELETE", "/secrets/a") == "delete"
    assert op("GET", "/secrets/a/versions") == "versions"
    assert op("GET", "/deletedsecrets") == "list-deleted"
    assert op("GET", "/deletedsecrets/a") == "get-deleted"
    assert op("POST", "/deletedsecrets/a/recover") == "recover"
    assert op("DELETE", "/deletedsecrets/a") == "purge"


def test_a_200_that_is_not_a_key_vault_answer_is_an_error(make: Any, keyvault: KeyVaultEmulator) -> None:
    """A proxy's page read as an empty answer would look like an empty vault (or a write)."""
    from tests.emulators.httpserver import Fault

    keyvault.inject(Fault(method="GET", path="/secrets", status=200, body=b"<html>proxy</html>",
                          headers={"Content-Type": "text/html"}))
    with pytest.raises(errors.Permanent, match=r"not a Key Vault answer \(text/html\)"):
        make().list_entries()
