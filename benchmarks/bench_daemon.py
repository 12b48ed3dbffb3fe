"""Daemon latency: a saved secrets file -> the new values readable at the destination.

Runs `reconciler run`'s daemon in-process against moto's server on 127.0.0.1, saves the file
source 20 times (atomically, as editors do, or as a `git pull` does) and times each save until
GetSecretValue returns the new value for every sync; prints p50 and p95. With --syncs N, one
save changes N syncs at once (one file, one connection: the daemon batches them by target,
one listing each, bounded by its workers).

Usage: python benchmarks/bench_daemon.py [--saves 20] [--syncs 1] [--keys 10]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
                  AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
                  AWS_EC2_METADATA_DISABLED="true", NO_COLOR="1")

import boto3
from daemonbench import save_secrets, write_specs
from moto.server import ThreadedMotoServer

from reconciler.daemon.config import DaemonConfig
from reconciler.daemon.daemon import Daemon
from reconciler.logging import configure


def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(p / 100 * len(xs) + 0.5) - 1))]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--saves", type=int, default=20)
    ap.add_argument("--syncs", type=int, default=1)
    ap.add_argument("--keys", type=int, default=10)
    args = ap.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    configure("json", "warning", stream=io.StringIO())
    srv = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    srv.start()
    host, port = srv.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    sm = boto3.client("secretsmanager", endpoint_url=endpoint, region_name="us-east-1")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_specs(root, endpoint, args.syncs)
        secrets = root / "secrets.yaml"
        save_secrets(secrets, args.syncs, args.keys, 0)
        daemon = Daemon(DaemonConfig(spec_dir=root / "specs", state_dir=root / "state", listen=None,
                                     install_signals=False))
        t = threading.Thread(target=lambda: asyncio.run(daemon.run()), daemon=True)
        t.start()
        while not daemon.ready:
            time.sleep(0.01)
        last = args.keys - 1
        latencies = []
        for rnd in range(1, args.saves + 1):
            t0 = time.perf_counter()
            save_secrets(secrets, args.syncs, args.keys, rnd)
            waiting = set(range(args.syncs))  # every changed sync: "applied" is the last of them
            while waiting:
                waiting = {i for i in waiting
                           if sm.get_secret_value(SecretId=f"s{i}/K{last}")["SecretString"] != f"r{rnd}-{i}-{last}"}
                if time.perf_counter() - t0 > 120:
                    print(f"save {rnd}: {len(waiting)} sync(s) not applied after 120 s", file=sys.stderr)
                    return 1
                time.sleep(0.005)
            latencies.append(time.perf_counter() - t0)
            time.sleep(0.3)  # let the daemon go idle: each save is measured on its own
        daemon.request_stop()
        t.join(30)
    srv.stop()
    ms = [x * 1000 for x in latencies]
    print(f"save -> every changed sync applied, {args.saves} saves, {args.syncs} sync(s) changed at once x "
          f"{args.keys} keys (one file, one AWS connection, moto on 127.0.0.1):")
    print(f"  p50 {statistics.median(ms):.0f} ms   p95 {_pct(ms, 95):.0f} ms   "
          f"min {min(ms):.0f} ms   max {max(ms):.0f} ms   peak RSS {_rss_mb():.0f} MB (daemon and moto)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
