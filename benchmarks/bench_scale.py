"""How cost grows with work: S syncs x K secrets on one AWS account.

For each S it prints validate time, first apply, no-op apply and plan (time and the
destination calls they make), peak RSS, and upstream's call count for the same no-op. Each
size runs in a fresh process (for an honest peak RSS). The engine runs against the
in-memory destination (the AWS descriptor's rules, a dict for storage: moto takes seconds to
list thousands of secrets, which would measure moto), with listing pages counted as AWS
would serve them (100 a page); `--moto` adds a run against moto's server for small sizes.

    .venv/bin/python benchmarks/bench_scale.py [S ...] [--keys K] [--moto]
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

AWS = "aws-secrets-manager"
PAGE = 100


def write_specs(root: Path, syncs: int, keys: int) -> Path:
    specs = root / "specs"
    specs.mkdir()
    (specs / "connections.yaml").write_text(yaml.safe_dump_all([
        {"kind": "Connection", "name": "local", "app": "file", "path": "../secrets.yaml"},
        {"kind": "Connection", "name": "aws", "app": "aws", "region": "us-east-1",
         "credentials": {"method": "access-key", "accessKeyId": {"env": "AWS_ACCESS_KEY_ID"},
                         "secretAccessKey": {"env": "AWS_SECRET_ACCESS_KEY"}}},
    ]))
    for i in range(syncs):
        (specs / f"team-{i:05d}.yaml").write_text(yaml.safe_dump({
            "kind": "SecretSync", "name": f"team-{i:05d}", "source": "local", "environment": "prod",
            "secretPath": f"/team{i}", "destination": AWS, "connection": "aws",
            "destinationConfig": {"region": "us-east-1", "mappingBehavior": "one-to-one"},
            "syncOptions": {"keySchema": f"team{i}/{{{{secretKey}}}}"}}, sort_keys=False))
    (root / "secrets.yaml").write_text(yaml.safe_dump(
        {"prod": {f"/team{i}": {f"KEY_{j:03d}": f"value-{i}-{j}" for j in range(keys)} for i in range(syncs)}}))
    return specs


def upstream_noop(syncs: int, keys: int) -> int:
    """Upstream lists the whole region per sync, reads values in batches of 20, describes and
    (its KMS-key bug) updates every secret: upstream-infisical.md, AWS section."""
    total = syncs * keys
    return syncs * (math.ceil(total / PAGE) + math.ceil(keys / 20) + 2 * keys)


def one(syncs: int, keys: int) -> dict[str, Any]:
    import os

    from reconciler.engine.reconcile import Reconciler
    from reconciler.logging import configure

    configure("console", "warning")
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    from reconciler.specs.loader import load
    from reconciler.state.store import StateStore
    from tests.support import memory

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        specs_dir = write_specs(root, syncs, keys)
        t0 = time.perf_counter()
        specs = load(specs_dir)
        validate_s = time.perf_counter() - t0
        assert specs.ok, specs.diagnostics[:3]
        store = memory.MemoryStore()
        source = memory.MemorySource({("prod", f"/team{i}"): {f"KEY_{j:03d}": f"value-{i}-{j}" for j in range(keys)}
                                      for i in range(syncs)})
        state = StateStore(root / "state")
        rec = Reconciler(specs, state, destinations=memory.catalog({AWS: store}), sources=memory.sources(source))
        runs = list(specs.syncs.values())

        def cycle(plan: bool = False) -> tuple[float, dict[str, int]]:
            store.calls.clear()
            t = time.perf_counter()
            with rec.sharing(runs):
                for s in runs:
                    out = rec.plan_sync(s) if plan else rec.apply_sync(s)
                    assert not out.failed, out.error
            return time.perf_counter() - t, dict(store.calls)

        first_s, first = cycle()
        noop_s, noop = cycle()
        plan_s, _ = cycle(plan=True)
        state.close()
        total = syncs * keys
        return {
            "syncs": syncs, "keys": keys, "validate_s": round(validate_s, 2),
            "first_s": round(first_s, 2), "first_writes": first.get("create", 0),
            "noop_s": round(noop_s, 2), "noop_listings": noop.get("list", 0),
            "noop_pages": noop.get("list", 0) * math.ceil(total / PAGE),
            "noop_other": sum(v for k, v in noop.items() if k != "list"),
            "plan_s": round(plan_s, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "upstream_noop_calls": upstream_noop(syncs, keys),
        }


def moto(syncs: int, keys: int) -> dict[str, Any]:
    """The same no-op against moto's server through the CLI (real AWS destination)."""
    import logging
    import os

    from moto.server import ThreadedMotoServer

    from benchmarks.callbench import quiet_cli
    from reconciler import calls

    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    srv = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    srv.start()
    host, port = srv.get_host_and_port()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            specs = write_specs(root, syncs, keys)
            conn = yaml.safe_load_all((specs / "connections.yaml").read_text())
            docs = list(conn)
            docs[1]["endpoint"] = f"http://{host}:{port}"
            (specs / "connections.yaml").write_text(yaml.safe_dump_all(docs))
            state = str(root / "state")
            assert quiet_cli("apply", str(specs), "--state-dir", state) == 0
            calls.reset()
            t = time.perf_counter()
            assert quiet_cli("apply", str(specs), "--state-dir", state) == 0
            elapsed = time.perf_counter() - t
            return {"syncs": syncs, "keys": keys, "moto_noop_s": round(elapsed, 2),
                    "moto_noop_calls": calls.by_call(AWS)}
    finally:
        srv.stop()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("sizes", nargs="*", type=int, default=[100, 1000, 10000])
    p.add_argument("--keys", type=int, default=5)
    p.add_argument("--moto", action="store_true", help="also a no-op against moto (S <= 200)")
    p.add_argument("--one", type=int, help=argparse.SUPPRESS)
    p.add_argument("--one-moto", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one is not None:
        print(json.dumps(one(args.one, args.keys)))
        return
    if args.one_moto is not None:
        print(json.dumps(moto(args.one_moto, args.keys)))
        return
    print(f"{'S':>6} {'K':>3} | {'validate':>8} | {'first apply':>11} | {'no-op':>7} {'listings':>8} {'pages':>6} "
          f"{'other':>5} | {'plan':>6} | {'RSS MB':>6} | {'upstream no-op calls':>20}")
    for s in args.sizes:
        out = subprocess.run([sys.executable, __file__, "--one", str(s), "--keys", str(args.keys)],
                             capture_output=True, text=True, check=True, cwd=REPO)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{s:>6} {args.keys:>3} | {r['validate_s']:>7}s | {r['first_s']:>10}s | {r['noop_s']:>6}s "
              f"{r['noop_listings']:>8} {r['noop_pages']:>6} {r['noop_other']:>5} | {r['plan_s']:>5}s | "
              f"{r['peak_rss_mb']:>6} | {r['upstream_noop_calls']:>20,}")
        if args.moto and s <= 200:
            out = subprocess.run([sys.executable, __file__, "--one-moto", str(s), "--keys", str(args.keys)],
                                 capture_output=True, text=True, check=True, cwd=REPO)
            m = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{'':>6} moto no-op through the CLI: {m['moto_noop_calls']} in {m['moto_noop_s']}s")


if __name__ == "__main__":
    main()
