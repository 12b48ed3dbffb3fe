"""Run the Azure DevOps emulator, for the demo:

    python -m tests.emulators.azure_devops --port 8081 [--seed FILE] [--org NAME]
        [--pat "DISPLAY NAME:ENV_VAR" ...] [--ca-dir DIR]

Plain HTTP unless --ca-dir is given (then HTTPS, DIR/ca.pem written for the caBundle). Each
--pat registers an identity whose token is read from an environment variable (never from a
file or the command line). The seed file (YAML) creates projects and variable groups:

    organization: demo-org
    projects: [{name: Demo, id: 0b7b6e1e-...}]      # id optional
    groups:
      - {project: Demo, name: shared, variables: {LOG_LEVEL: {value: info}}}

Prints one line when listening, serves until SIGTERM/SIGINT. Binds 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.emulators.azure_devops.organization import Identity, Organization
from tests.emulators.azure_devops.server import AzureDevOpsEmulator
from tests.emulators.httpserver import wait_for_stop

SEEDER = Identity("00000000-0000-4000-8000-000000005eed", "seed", "seed@emulator")


def seed(org: Organization, doc: dict[str, Any]) -> None:
    """Projects and groups from a seed document (see the module docstring)."""
    for p in doc.get("projects") or []:
        org.add_project(p["name"], p.get("id"), p.get("description", ""))
    for g in doc.get("groups") or []:
        project = org.project(g["project"])
        if project is None:
            raise SystemExit(f"seed: group {g.get('name')!r} names unknown project {g['project']!r}")
        reply = org.add_group({"name": g["name"], "description": g.get("description", ""), "type": "Vsts",
                               "variables": g.get("variables") or {},
                               "variableGroupProjectReferences": [{"name": g["name"], "projectReference":
                                                                   {"id": project.id, "name": project.name}}]},
                              SEEDER)
        if reply.status != 200:
            raise SystemExit(f"seed: group {g.get('name')!r}: {reply.body}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.emulators.azure_devops", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=8081, help="port (default 8081)")
    p.add_argument("--seed", type=Path, help="YAML file with organization, projects and groups")
    p.add_argument("--org", help="organization name (default: the seed's, else emulator-org)")
    p.add_argument("--pat", action="append", default=[], metavar="DISPLAY_NAME:ENV_VAR",
                   help="register an identity whose PAT is read from an environment variable")
    p.add_argument("--ca-dir", type=Path, help="serve HTTPS; write DIR/ca.pem")
    args = p.parse_args(argv)

    doc: dict[str, Any] = (yaml.safe_load(args.seed.read_text()) or {}) if args.seed else {}
    org = Organization(args.org or doc.get("organization") or "emulator-org")
    seed(org, doc)
    ca = None
    if args.ca_dir:
        import trustme

        ca = trustme.CA()
        args.ca_dir.mkdir(parents=True, exist_ok=True)
        ca.cert_pem.write_to_path(str(args.ca_dir / "ca.pem"))
    emu = AzureDevOpsEmulator(ca, port=args.port, org=org)
    for spec in args.pat:
        name, _, env = spec.rpartition(":")
        token = os.environ.get(env)
        if not name or not token:
            p.error(f"--pat {spec}: expected DISPLAY_NAME:ENV_VAR with the variable set")
        emu.add_pat(name, token)
    emu.start()
    projects = ", ".join(f"{pr.name} ({pr.id})" for pr in org.projects.values()) or "none"
    print(f"azure devops organization on {emu.org_url}, projects: {projects}", flush=True)
    wait_for_stop()
    emu.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
