"""Run the Key Vault emulator and the fake identity provider, for the demo:

    python -m tests.emulators.azure_keyvault --port 8443 --idp-port 8444 --ca-dir DIR \
        [--client TENANT:CLIENT_ID:SECRET_ENV_VAR]

Writes DIR/ca.pem (trust it with the connection's caBundle), prints one line when both
servers listen, and serves until SIGTERM/SIGINT. Binds 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import trustme

from tests.emulators.azure_keyvault.idp import FakeIdentityProvider
from tests.emulators.azure_keyvault.server import DEFAULT_TENANT, KeyVaultEmulator
from tests.emulators.httpserver import wait_for_stop


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.emulators.azure_keyvault", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=8443, help="Key Vault port (default 8443)")
    p.add_argument("--idp-port", type=int, default=0, help="identity provider port (0 = none)")
    p.add_argument("--ca-dir", type=Path, required=True, help="where to write ca.pem")
    p.add_argument("--tenant", default=DEFAULT_TENANT)
    p.add_argument("--client", action="append", default=[], metavar="TENANT:CLIENT_ID:SECRET_ENV_VAR",
                   help="register a client whose secret is read from an environment variable")
    args = p.parse_args(argv)

    ca = trustme.CA()
    args.ca_dir.mkdir(parents=True, exist_ok=True)
    ca.cert_pem.write_to_path(str(args.ca_dir / "ca.pem"))
    idp = None
    if args.idp_port:
        idp = FakeIdentityProvider(ca, port=args.idp_port)
        for spec in args.client:
            tenant, client_id, env = spec.split(":", 2)
            secret = os.environ.get(env)
            if not secret:
                p.error(f"--client {spec}: environment variable {env} is not set")
            idp.register(tenant, client_id, secret)
        idp.start()
    kv = KeyVaultEmulator(ca, port=args.port, tenant=args.tenant,
                          token_check=idp.issued if idp is not None else None).start()
    print(f"key vault on {kv.url}" + (f", identity provider on {idp.url}" if idp else "")
          + f", CA in {args.ca_dir / 'ca.pem'}", flush=True)
    wait_for_stop()
    kv.stop()
    if idp is not None:
        idp.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
