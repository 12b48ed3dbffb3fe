"""OCI Vault fixtures: one throwaway API signing key (registered with the emulator, written
to a PEM file and an OCI config file) and one emulator for the whole session, reset per
test with a small page size so every listing pages."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.emulators.oci_vault import OciVaultEmulator

OCI_TENANCY = "ocid1.tenancy.oc1..aaaaaaaatesttenancy"
OCI_USER = "ocid1.user.oc1..aaaaaaaatestuser"
OCI_REGION = "us-ashburn-1"
OCI_TEST_PAGE_SIZE = 3


@dataclass(frozen=True)
class OciApiKey:
    """The signing key a test client (or the reconciler) presents."""

    pem: str
    fingerprint: str
    key_file: Path
    config_file: Path  # [DEFAULT] profile with the values below
    private_key: Any

    def config(self) -> dict[str, Any]:
        """The SDK config dict (validated by the SDK even when a signer is given)."""
        return {"user": OCI_USER, "tenancy": OCI_TENANCY, "fingerprint": self.fingerprint,
                "key_content": self.pem, "region": OCI_REGION}


def make_api_key(directory: Path) -> OciApiKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption()).decode()
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    fp = ":".join(f"{b:02x}" for b in hashlib.md5(der, usedforsecurity=False).digest())
    key_file = directory / "oci_api_key.pem"
    key_file.write_text(pem)
    key_file.chmod(0o600)
    config_file = directory / "config"
    config_file.write_text(f"[DEFAULT]\nuser={OCI_USER}\ntenancy={OCI_TENANCY}\nfingerprint={fp}\n"
                           f"key_file={key_file}\nregion={OCI_REGION}\n")
    return OciApiKey(pem, fp, key_file, config_file, key)


@pytest.fixture(scope="session")
def oci_api_key(tmp_path_factory: pytest.TempPathFactory) -> OciApiKey:
    return make_api_key(tmp_path_factory.mktemp("oci-key"))


@pytest.fixture(scope="session")
def oci_vault_server(oci_api_key: OciApiKey) -> Iterator[OciVaultEmulator]:
    emu = OciVaultEmulator()
    emu.register_key(OCI_TENANCY, OCI_USER, oci_api_key.private_key.public_key())
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def oci_vault(oci_vault_server: OciVaultEmulator) -> OciVaultEmulator:
    """A clean emulator per test (default vault only, pages of OCI_TEST_PAGE_SIZE), counts reset."""
    from reconciler import calls

    oci_vault_server.reset()
    oci_vault_server.store.default_page_size = oci_vault_server.store.max_page_size = OCI_TEST_PAGE_SIZE
    calls.reset()
    return oci_vault_server


def oci_sdk_clients(emu: OciVaultEmulator, key: OciApiKey, **kw: Any) -> tuple[Any, Any]:
    """The official VaultsClient and SecretsClient against the emulator, SDK retries and
    circuit breaker off (test-infrastructure.md §4)."""
    import oci

    kw.setdefault("retry_strategy", oci.retry.NoneRetryStrategy())
    kw.setdefault("circuit_breaker_strategy", oci.circuit_breaker.NoCircuitBreakerStrategy())
    config = key.config()
    return (oci.vault.VaultsClient(config, service_endpoint=emu.url, **kw),
            oci.secrets.SecretsClient(config, service_endpoint=emu.url, **kw))


@pytest.fixture
def oci_clients(oci_vault: OciVaultEmulator, oci_api_key: OciApiKey) -> tuple[Any, Any]:
    """(VaultsClient, SecretsClient) for out-of-band edits and assertions."""
    return oci_sdk_clients(oci_vault, oci_api_key)


@pytest.fixture
def oci_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Our retry and polling waits, recorded instead of slept (fake time)."""
    from reconciler.destinations.oci_vault import client

    waits: list[float] = []
    monkeypatch.setattr(client, "sleep", waits.append)
    return waits


@pytest.fixture
def oci_dest(oci_vault: OciVaultEmulator, oci_sleeps: list[float]) -> OciVaultEmulator:
    """The emulator for tests of the destination: clean, cached SDK clients forgotten (a
    test may build them from another key), our waits on fake time."""
    from reconciler.destinations.oci_vault import client

    client.clear_clients()
    return oci_vault


def oci_connection_doc(emu: OciVaultEmulator, key: OciApiKey, name: str = "oci", **extra: Any) -> dict[str, Any]:
    """A Connection document for the emulator: an API signing key, the private key by file."""
    doc: dict[str, Any] = {
        "kind": "Connection", "name": name, "app": "oci", "endpoint": emu.url, "region": OCI_REGION,
        "credentials": {"method": "api-key", "tenancy": OCI_TENANCY, "user": OCI_USER,
                        "fingerprint": key.fingerprint, "privateKey": {"file": str(key.key_file)}},
    }
    doc.update(extra)
    return doc
