"""Run the OCI Vault emulator (plain HTTP on 127.0.0.1), for the demo:

    python -m tests.emulators.oci_vault --port 8445 --key-dir DIR [--seed FILE] [--page-size N]

--key-dir: an API signing key the emulator accepts. DIR/oci_api_key.pem is created when
absent (a throwaway RSA key), and DIR/config is written: an OCI config file whose DEFAULT
profile (user, tenancy, fingerprint, key_file, region) a `config-file` connection can use.
--seed: YAML or JSON, all parts optional:

    vaults:  [{vault: OCID, compartment: OCID, keys: [OCID, ...]}]   # the default vault always exists
    secrets: [{name: db-password, value: s3cr3t, vault: OCID, state: ACTIVE, tags: {team: a}}]
    apiKeys: [{tenancy: OCID, user: OCID, publicKey: path/to/public.pem}]

Prints one line when it listens and serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.emulators.httpserver import wait_for_stop
from tests.emulators.oci_vault.model import DEFAULT_COMPARTMENT, DEFAULT_KEY, DEFAULT_VAULT
from tests.emulators.oci_vault.server import OciVaultEmulator
from tests.emulators.oci_vault.signing import fingerprint

TENANCY = "ocid1.tenancy.oc1..emulatortenancy"
USER = "ocid1.user.oc1..emulatoruser"
REGION = "us-ashburn-1"


def key_dir(emu: OciVaultEmulator, directory: Path) -> Path:
    """Load or create DIR/oci_api_key.pem, register it, write DIR/config; returns the config path."""
    directory.mkdir(parents=True, exist_ok=True)
    pem_path = directory / "oci_api_key.pem"
    if pem_path.exists():
        key = serialization.load_pem_private_key(pem_path.read_bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey), "oci_api_key.pem must be an RSA key"
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem_path.touch(mode=0o600)
        pem_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    emu.register_key(TENANCY, USER, key.public_key())
    config = directory / "config"
    config.write_text(f"[DEFAULT]\nuser={USER}\ntenancy={TENANCY}\nfingerprint={fingerprint(key.public_key())}\n"
                      f"key_file={pem_path.resolve()}\nregion={REGION}\n")
    return config


def seed(emu: OciVaultEmulator, data: dict[str, Any], base: Path) -> None:
    for v in data.get("vaults") or []:
        emu.store.add_vault(v["vault"], v["compartment"], *v.get("keys", []))
    for k in data.get("apiKeys") or []:
        public = serialization.load_pem_public_key((base / k["publicKey"]).read_bytes())
        assert isinstance(public, rsa.RSAPublicKey), "publicKey must be an RSA key"
        emu.register_key(k["tenancy"], k["user"], public)
    for s in data.get("secrets") or []:
        emu.store.seed(s["name"], str(s["value"]).encode(), vault=s.get("vault", DEFAULT_VAULT),
                       state=s.get("state", "ACTIVE"), freeform=s.get("tags"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.emulators.oci_vault", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=8445, help="port on 127.0.0.1 (default 8445)")
    p.add_argument("--key-dir", type=Path, help="where the accepted API key and an OCI config file live")
    p.add_argument("--seed", type=Path, help="vaults, secrets and API keys to start with (YAML or JSON)")
    p.add_argument("--page-size", type=int, default=0, help="largest list page the emulator returns")
    args = p.parse_args(argv)

    emu = OciVaultEmulator(port=args.port)
    config = key_dir(emu, args.key_dir) if args.key_dir else None
    if args.seed:
        seed(emu, yaml.safe_load(args.seed.read_text()) or {}, args.seed.parent)
    if args.page_size:
        emu.store.default_page_size = emu.store.max_page_size = args.page_size
    emu.start()
    print(f"oci vault on {emu.url} (compartment {DEFAULT_COMPARTMENT}, vault {DEFAULT_VAULT}, key {DEFAULT_KEY})"
          + (f", OCI config in {config}" if config else ""), flush=True)
    wait_for_stop()
    emu.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
