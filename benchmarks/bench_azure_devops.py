"""Azure DevOps: API calls and time of a first sync and of a no-op reconcile.

Runs reconciler's CLI in-process against the Azure DevOps emulator (tests/emulators/
azure_devops, plain HTTP on 127.0.0.1, PAT auth) for N secrets in one variable group and
prints, beside each, what the upstream (Infisical) implementation does for the same N
(shared/reference/upstream-infisical.md, Azure DevOps section): every sync is a GET of the
project's groups plus a full PUT (POST the first time) of all N variables, so a no-op costs
2 calls and a write -- a new revision of the group, modifiedOn moving, every time. That
pattern is also replayed against the emulator to time it beside ours.

Usage: python benchmarks/bench_azure_devops.py [N ...]   (default: 100 1000)
"""

from __future__ import annotations

import base64
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests package holds the emulator
os.environ.update(NO_COLOR="1", BENCH_ADO_PAT="bench-pat-not-a-secret")

import httpx
from callbench import report, run_sizes, write_workspace

from tests.emulators.azure_devops import AzureDevOpsEmulator

KIND = "azure-devops"
PROJECT = "0b7b6e1e-5d0a-4c1e-9b7e-3f1c2a4d5e60"


def upstream_noop(emu: AzureDevOpsEmulator, n: int, rounds: int = 5) -> tuple[float, int]:
    """Upstream's sync, replayed: GET the groups, find ours by name, PUT all N variables.
    Returns (seconds per sync, request body bytes)."""
    auth = "Basic " + base64.b64encode(f":{os.environ['BENCH_ADO_PAT']}".encode()).decode()
    variables = {f"KEY_{i:05d}": {"value": f"value-{i}-{'x' * 32}", "isSecret": True} for i in range(n)}
    with httpx.Client(base_url=emu.org_url + "/", headers={"authorization": auth}) as http:
        groups = http.get(f"{PROJECT}/_apis/distributedtask/variablegroups", params={"api-version": "7.1"}).json()
        group = next(g for g in groups["value"] if g["name"] == "prod")
        body = {"name": "prod", "description": "prod", "type": "Vsts", "variables": variables,
                "variableGroupProjectReferences": group["variableGroupProjectReferences"]}
        size = len(httpx.Request("PUT", "http://x", json=body).content)
        t0 = time.perf_counter()
        for _ in range(rounds):
            listed = http.get(f"{PROJECT}/_apis/distributedtask/variablegroups", params={"api-version": "7.1"})
            gid = next(g["id"] for g in listed.json()["value"] if g["name"] == "prod")
            http.put(f"_apis/distributedtask/variablegroups/{gid}", params={"api-version": "7.1"}, json=body)
        return (time.perf_counter() - t0) / rounds, size


def main_bench(sizes: list[int]) -> None:
    emu = AzureDevOpsEmulator(None)
    emu.add_pat("reconciler", os.environ["BENCH_ADO_PAT"])
    emu.start()
    connection = {"kind": "Connection", "name": "ado", "app": "azure-devops", "organizationUrl": emu.org_url,
                  "credentials": {"method": "pat", "token": {"env": "BENCH_ADO_PAT"}}}
    sync = {"destination": KIND, "connection": "ado", "destinationConfig": {"devopsProjectId": PROJECT},
            "syncOptions": {"keySchema": "{{secretKey}}"}}

    def prepare(n: int, root: Path) -> tuple[Path, Path]:
        emu.reset()
        emu.org.add_project("Bench", PROJECT)
        return write_workspace(root, connection, sync, n)

    def upstream(n: int) -> tuple[int, int]:
        return 2, 2  # GET + POST the first time; GET + PUT of all N every time after

    try:
        rows = run_sizes(KIND, sizes, prepare, upstream)
        replays = {n: upstream_noop(emu, n) for n in sizes}
    finally:
        emu.stop()
    report("Azure DevOps (emulator over HTTP on 127.0.0.1), one variable group, key schema {{secretKey}}", rows,
           "1 GET + 1 POST of all N", "1 GET + 1 PUT of all N: a write, a new revision, every sync")
    for n, (seconds, size) in replays.items():
        ours = next(r for r in rows if r.n == n).noop[0]
        print(f"N = {n}: upstream's no-op replayed (HTTP alone): 1 GET + a {size / 1024:.0f} KiB PUT of every value, "
              f"{seconds:.3f} s; ours (whole CLI run: specs, source, plan): 1 GET, no write, {ours:.3f} s")


if __name__ == "__main__":
    main_bench([int(a) for a in sys.argv[1:]] or [100, 1000])
