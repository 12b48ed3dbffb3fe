"""Azure Key Vault secrets emulator (HTTPS, challenge auth, faults, counts) and a fake
Microsoft Entra identity provider. Test infrastructure: never imported by ``reconciler``."""

from tests.emulators.azure_keyvault.idp import FakeIdentityProvider
from tests.emulators.azure_keyvault.server import DEFAULT_TENANT, Fault, HttpsEmulator, KeyVaultEmulator, Record
from tests.emulators.azure_keyvault.vault import MAX_TAGS, MAX_VALUE_BYTES, Reply, Vault

__all__ = [
           "DEFAULT_TENANT",
           "MAX_TAGS",
           "MAX_VALUE_BYTES",
           "FakeIdentityProvider",
           "Fault",
           "HttpsEmulator",
           "KeyVaultEmulator",
           "Record",
           "Reply",
           "Vault",
]
