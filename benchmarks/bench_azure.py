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

import contextlib
import io
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests package holds the emulator
os.environ.update(NO_COLOR="1", BENCH_AZURE_CLIENT_SECRET="bench-client-secret")

import trustme
import yaml

from reconciler import calls
from reconciler.cli import main
from tests.emulators.azure_keyvault import DEFAULT_TENANT, FakeIdentityProvider, KeyVaultEmulator

KIND = "azure-key-vault"


def _cli(*argv: str) -> int:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return main(list(argv))


def _setup(root: Path, kv: KeyVaultEmulator, idp: FakeIdentityProvider, ca: Path, n: int) -> tuple[Path, Path]:
    specs = root / "specs"
    specs.mkdir()
    docs = [
        {"kind": "Connection", "name": "local", "app": "file", "path": "../secrets.yaml"},
        {"kind": "Connection", "name": "akv", "app": "azure-key-vault", "authorityHost": idp.url,
         "caBundle": str(ca),
         "credentials": {"method": "client-secret", "tenantId": DEFAULT_TENANT, "clientId": "bench",
                         "clientSecret": {"env": "BENCH_AZURE_CLIENT_SECRET"}}},
        {"kind": "SecretSync", "name": "bench", "source": "local", "environment": "prod", "secretPath": "/app",
         "destination": "azure-key-vault", "connection": "akv", "destinationConfig": {"vaultBaseUrl": kv.url},
         "syncOptions": {"keySchema": "bench-{{secretKey}}"}},
    ]
    (specs / "bench.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    (root / "secrets.yaml").write_text(
        yaml.safe_dump({"prod": {"/app": {f"KEY_{i:05d}": f"value-{i}-{'x' * 32}" for i in range(n)}}})
    )
    return specs, root / "state"


def _measure(*argv: str) -> tuple[float, dict[str, int]]:
    calls.reset()
    t0 = time.perf_counter()
    code = _cli(*argv)
    elapsed = time.perf_counter() - t0
    if code != 0:
        raise SystemExit(f"reconciler {' '.join(argv)} exited {code}")
    counted = calls.by_call(KIND)
    counted.pop("auth-challenge", None)  # the bearer handshake: once per process and vault host
    return elapsed, counted


def _fmt(c: dict[str, int]) -> str:
    return " + ".join(f"{v} {k}" for k, v in sorted(c.items())) or "0"


def main_bench(sizes: list[int]) -> None:
    ca = trustme.CA()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ca_file = Path(tmp) / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        idp = FakeIdentityProvider(ca)
        idp.register(DEFAULT_TENANT, "bench", os.environ["BENCH_AZURE_CLIENT_SECRET"])
        idp.start()
        kv = KeyVaultEmulator(ca, token_check=idp.issued).start()
        try:
            for n in sizes:
                kv.reset()
                root = Path(tmp) / f"n{n}"
                root.mkdir()
                specs, state = _setup(root, kv, idp, ca_file, n)
                first_t, first_c = _measure("apply", str(specs), "--state-dir", str(state))
                noop_t, noop_c = _measure("apply", str(specs), "--state-dir", str(state))
                cold_t, cold_c = _measure("plan", str(specs), "--state-dir", str(root / "no-state"))
                pages = math.ceil(n / 25)
                # upstream's first sync lists the (empty) vault once, then PUTs every secret
                rows.append((n, first_t, first_c, 1 + n, noop_t, noop_c, pages + n, cold_t, cold_c))
        finally:
            kv.stop()
            idp.stop()

    print("Azure Key Vault (emulator over HTTPS on 127.0.0.1), one-to-one, key schema bench-{{secretKey}}\n")
    for n, first_t, first_c, up_first, noop_t, noop_c, up_noop, cold_t, cold_c in rows:
        print(f"N = {n}")
        print(f"  first sync        : {sum(first_c.values()):>5} calls  {first_t:7.2f} s   ({_fmt(first_c)})")
        print(f"    upstream        : {up_first:>5} calls   (1 list + N PUT)")
        print(f"  no-op, warm state : {sum(noop_c.values()):>5} calls  {noop_t:7.2f} s   ({_fmt(noop_c)})")
        print(f"    upstream        : {up_noop:>5} calls   (list pages + N GET)")
        print(f"  plan, no state    : {sum(cold_c.values()):>5} calls  {cold_t:7.2f} s   ({_fmt(cold_c)})")
        print()


if __name__ == "__main__":
    main_bench([int(a) for a in sys.argv[1:]] or [100, 1000])
