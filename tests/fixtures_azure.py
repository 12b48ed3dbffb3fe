"""Azure Key Vault fixtures: one throwaway CA, the Key Vault emulator and the fake identity
provider for the whole session (reset per test), and fake time for our retry waits.

The vault only accepts tokens the fake identity provider issued, so every test that talks
to it runs azure-identity's real ClientSecretCredential path.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.emulators.azure_keyvault import DEFAULT_TENANT, FakeIdentityProvider, KeyVaultEmulator

AZ_CLIENT_ID = "reconciler-tests"
AZ_SECRET_ENV = "RECONCILER_TEST_AZURE_CLIENT_SECRET"
AZ_CLIENT_SECRET = "not-a-real-client-secret-4f1c"


@pytest.fixture(scope="session")
def azure_ca() -> Any:
    import trustme

    return trustme.CA()


@pytest.fixture(scope="session")
def azure_ca_file(azure_ca: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("azure-ca") / "ca.pem"
    azure_ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture(scope="session")
def azure_idp_server(azure_ca: Any) -> Iterator[FakeIdentityProvider]:
    idp = FakeIdentityProvider(azure_ca)
    idp.register(DEFAULT_TENANT, AZ_CLIENT_ID, AZ_CLIENT_SECRET)
    idp.start()
    try:
        yield idp
    finally:
        idp.stop()


@pytest.fixture(scope="session")
def keyvault_server(azure_ca: Any, azure_idp_server: FakeIdentityProvider) -> Iterator[KeyVaultEmulator]:
    kv = KeyVaultEmulator(azure_ca, token_check=azure_idp_server.issued).start()
    try:
        yield kv
    finally:
        kv.stop()


@pytest.fixture
def azure_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Our retry waits, recorded instead of slept (fake time)."""
    from reconciler.destinations.azure_key_vault import client as azure_client

    waits: list[float] = []
    monkeypatch.setattr(azure_client, "sleep", waits.append)
    return waits


@pytest.fixture
def keyvault(keyvault_server: KeyVaultEmulator, azure_idp_server: FakeIdentityProvider,
             azure_sleeps: list[float], monkeypatch: pytest.MonkeyPatch) -> KeyVaultEmulator:
    """A clean vault per test, counts reset, the test client secret in the environment."""
    from reconciler import calls

    keyvault_server.reset()
    keyvault_server.vault.soft_delete = True
    keyvault_server.vault.purge_protection = False
    azure_idp_server.reset()
    calls.reset()
    monkeypatch.setenv(AZ_SECRET_ENV, AZ_CLIENT_SECRET)
    return keyvault_server


def azure_connection_doc(kv: KeyVaultEmulator, idp: FakeIdentityProvider, ca_file: Path,
                         **extra: Any) -> dict[str, Any]:
    """A Connection document for the emulator, authenticating through the fake IdP."""
    doc: dict[str, Any] = {
        "kind": "Connection", "name": "akv", "app": "azure-key-vault",
        "authorityHost": idp.url, "caBundle": str(ca_file),
        "credentials": {"method": "client-secret", "tenantId": DEFAULT_TENANT, "clientId": AZ_CLIENT_ID,
                        "clientSecret": {"env": AZ_SECRET_ENV}},
    }
    doc.update(extra)
    return doc


@pytest.fixture
def kv_client(keyvault: KeyVaultEmulator, azure_idp_server: FakeIdentityProvider, azure_ca_file: Path) -> Any:
    """The official SecretClient (through the real ClientSecretCredential), for out-of-band
    edits and assertions; SDK retries off."""
    from azure.identity import ClientSecretCredential
    from azure.keyvault.secrets import SecretClient

    cred = ClientSecretCredential(DEFAULT_TENANT, AZ_CLIENT_ID, AZ_CLIENT_SECRET, authority=azure_idp_server.url,
                                  disable_instance_discovery=True, connection_verify=str(azure_ca_file))
    client = SecretClient(keyvault.url, cred, verify_challenge_resource=False,
                          connection_verify=str(azure_ca_file), retry_total=0)
    yield client
    client.close()
