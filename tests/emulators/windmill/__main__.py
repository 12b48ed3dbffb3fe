"""Run the Windmill emulator, for the demo:

    python -m tests.emulators.windmill --port 8000 [--seed FILE] [--workspace WS ...] \
        [--token-env VAR] [--user NAME]

Plain HTTP on 127.0.0.1 (a self-hosted instance's form). The bearer token is read from the
environment variable named by --token-env (default WINDMILL_TOKEN), never from the command
line. The seed file is YAML: ``{workspace: {path: value | {value, is_secret, description}}}``.
Prints one line when it listens and serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml

from tests.emulators.httpserver import wait_for_stop
from tests.emulators.windmill.server import WindmillEmulator


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.emulators.windmill", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (default 8000)")
    p.add_argument("--seed", type=Path, help="YAML file of variables to start with")
    p.add_argument("--workspace", action="append", default=[], help="a workspace the token may use "
                   "(repeatable; default: the seed's workspaces, else 'demo')")
    p.add_argument("--token-env", default="WINDMILL_TOKEN", help="environment variable holding the token")
    p.add_argument("--user", default="admin", help="the token's user name (edited_by)")
    args = p.parse_args(argv)

    token = os.environ.get(args.token_env)
    if not token:
        p.error(f"environment variable {args.token_env} is not set")
    server = WindmillEmulator(None, port=args.port)
    seed = yaml.safe_load(args.seed.read_text()) if args.seed else {}
    if seed and not isinstance(seed, dict):
        p.error(f"{args.seed}: expected a mapping of workspace -> variables")
    server.store.seed(seed or {})
    workspaces = args.workspace or sorted(seed or {}) or ["demo"]
    server.add_token(token, *workspaces, user=args.user)
    server.start()
    print(f"windmill on {server.url} (workspaces: {', '.join(workspaces)})", flush=True)
    wait_for_stop()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
