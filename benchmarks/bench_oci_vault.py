"""OCI Vault: API calls and time of a first sync and of a no-op reconcile.

Runs reconciler's CLI in-process against the OCI Vault emulator (tests/emulators/oci_vault,
plain HTTP on 127.0.0.1, every request signed with a throwaway API key and verified) for N
secrets and prints, beside each, the calls the upstream (Infisical) implementation makes for
the same N (shared/reference/upstream-infisical.md, OCI section):

  first sync : 1 ListSecrets (empty vault) + N CreateSecret
  no-op      : 1 ListSecrets (first page only: the rest of the vault is never seen)
               + 1 GetSecretBundle (a value read) per ACTIVE secret

Upstream's no-op pattern is also timed here, through the same SDK against the same emulator.

Usage: python benchmarks/bench_oci_vault.py [N ...]   (default: 100 1000)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests package holds the emulator

from callbench import report, run_sizes, write_workspace

from tests.emulators.oci_vault import DEFAULT_COMPARTMENT, DEFAULT_KEY, DEFAULT_VAULT, OciVaultEmulator
from tests.fixtures_oci_vault import (
    OCI_TENANCY,
    OCI_USER,
    OciApiKey,
    make_api_key,
    oci_connection_doc,
    oci_sdk_clients,
)

KIND = "oci-vault"


def upstream_noop(emu: OciVaultEmulator, key: OciApiKey, n: int) -> tuple[int, float]:
    """Upstream's no-op, replayed with the oci SDK on a vault of N secrets: one list call,
    then a value read of every ACTIVE secret (all of them, as if the first page held the
    whole vault), one after the other."""
    emu.reset()
    ids = [emu.store.seed(f"bench-KEY_{i:05d}", f"value-{i}".encode()) for i in range(n)]
    vc, sc = oci_sdk_clients(emu, key)
    t0 = time.perf_counter()
    vc.list_secrets(DEFAULT_COMPARTMENT, vault_id=DEFAULT_VAULT)
    for sid in ids:
        sc.get_secret_bundle(sid)
    return 1 + len(ids), time.perf_counter() - t0


def main_bench(sizes: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        key = make_api_key(Path(tmp))
        emu = OciVaultEmulator()
        emu.register_key(OCI_TENANCY, OCI_USER, key.private_key.public_key())
        emu.start()
        connection = oci_connection_doc(emu, key)
        sync = {"destination": KIND, "connection": "oci",
                "destinationConfig": {"compartmentOcid": DEFAULT_COMPARTMENT, "vaultOcid": DEFAULT_VAULT,
                                      "keyOcid": DEFAULT_KEY},
                "syncOptions": {"keySchema": "bench-{{secretKey}}"}}

        def prepare(n: int, root: Path) -> tuple[Path, Path]:
            emu.reset()
            return write_workspace(root, connection, sync, n)

        def upstream(n: int) -> tuple[int, int]:
            return 1 + n, 1 + n

        try:
            rows = run_sizes(KIND, sizes, prepare, upstream)
            replayed = {n: upstream_noop(emu, key, n) for n in sizes}
        finally:
            emu.stop()
    report("OCI Vault (emulator, plain HTTP on 127.0.0.1, signed requests verified), one-to-one, key schema "
           "bench-{{secretKey}}, pages of 100", rows, "1 list + N CreateSecret",
           "1 list (first page only) + N GetSecretBundle")
    print("Upstream's no-op pattern replayed with the oci SDK against the same emulator:")
    for n, (count, seconds) in replayed.items():
        print(f"  N = {n:<5}: {count:>5} calls  {seconds:7.2f} s   (1 list + {count - 1} GetSecretBundle, one by one)")


if __name__ == "__main__":
    main_bench([int(a) for a in sys.argv[1:]] or [100, 1000])
