"""OCI Vault + Secrets emulator (both API base paths, signed requests verified, lifecycle
states, paging, faults, counts). Test infrastructure: never imported by ``reconciler``."""

from tests.emulators.oci_vault.model import (
    DEFAULT_COMPARTMENT,
    DEFAULT_KEY,
    DEFAULT_VAULT,
    MAX_CONTENT_BYTES,
    TRANSITIONAL,
)
from tests.emulators.oci_vault.server import MANAGEMENT, RETRIEVAL, Fault, OciVaultEmulator, Record
from tests.emulators.oci_vault.signing import KeyRing, fingerprint
from tests.emulators.oci_vault.store import VaultStore

__all__ = [
    "DEFAULT_COMPARTMENT",
    "DEFAULT_KEY",
    "DEFAULT_VAULT",
    "MANAGEMENT",
    "MAX_CONTENT_BYTES",
    "RETRIEVAL",
    "TRANSITIONAL",
    "Fault",
    "KeyRing",
    "OciVaultEmulator",
    "Record",
    "VaultStore",
    "fingerprint",
]
