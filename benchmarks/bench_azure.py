"""Azure Key Vault: API calls and time of a first sync and of a no-op reconcile.

Runs reconciler's CLI in-process against the Key Vault emulator (tests/emulators/
azure_keyvault, HTTPS on 127.0.0.1, real ClientSecretCredential through the fake identity
provider) for N secrets and prints, beside each, the calls the upstream (Infisical)
implementation makes for the same N (shared/reference/upstream-infisical.md, Azure section):

  first sync : 1 list call (empty vault) + N PUT
  no-op      : ceil(N/25) list pages + N GET (every enabled secret, values compared)

Usage: python benchmarks/bench_azure.py [N ...]   (default: 100 1000)
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests package holds the emulator
os.environ.update(NO_COLOR="1", BENCH_AZURE_CLIENT_SECRET="bench-client-secret")

import trustme
from callbench import report, run_sizes, write_workspace

from tests.emulators.azure_keyvault import DEFAULT_TENANT, FakeIdentityProvider, KeyVaultEmulator

KIND = "azure-key-vault"


def main_bench(sizes: list[int]) -> None:
    ca = trustme.CA()
    with tempfile.TemporaryDirectory() as tmp:
        ca_file = Path(tmp) / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        idp = FakeIdentityProvider(ca)
        idp.register(DEFAULT_TENANT, "bench", os.environ["BENCH_AZURE_CLIENT_SECRET"])
        idp.start()
        kv = KeyVaultEmulator(ca, token_check=idp.issued).start()
        connection = {"kind": "Connection", "name": "akv", "app": "azure-key-vault", "authorityHost": idp.url,
                      "caBundle": str(ca_file),
                      "credentials": {"method": "client-secret", "tenantId": DEFAULT_TENANT, "clientId": "bench",
                                      "clientSecret": {"env": "BENCH_AZURE_CLIENT_SECRET"}}}
        sync = {"destination": KIND, "connection": "akv", "destinationConfig": {"vaultBaseUrl": kv.url},
                "syncOptions": {"keySchema": "bench-{{secretKey}}"}}

        def prepare(n: int, root: Path) -> tuple[Path, Path]:
            kv.reset()
            return write_workspace(root, connection, sync, n)

        def upstream(n: int) -> tuple[int, int]:
            # its first sync lists the (empty) vault once, then PUTs every secret; a no-op lists
            # every page and GETs every enabled secret to compare values
            return 1 + n, math.ceil(n / 25) + n

        try:
            # the bearer handshake is once per process and vault host, not a reconcile's cost
            rows = run_sizes(KIND, sizes, prepare, upstream, ignore={"auth-challenge"})
        finally:
            kv.stop()
            idp.stop()
    report("Azure Key Vault (emulator over HTTPS on 127.0.0.1), one-to-one, key schema bench-{{secretKey}}", rows,
           "1 list + N PUT", "list pages + N GET")


if __name__ == "__main__":
    main_bench([int(a) for a in sys.argv[1:]] or [100, 1000])
