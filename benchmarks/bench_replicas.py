"""Replicas sharing a PostgreSQL state: 1, 2 and 3 `reconciler run` processes, 1,000 syncs.

For each replica count, against moto's server (in this process) and a throwaway PostgreSQL
cluster (``initdb`` + ``pg_ctl``, as in the tests), it measures:

- a full cycle: the secrets file saved with a new value for every sync; every replica sees the
  change, each sync is run by its owner only; time until all 1,000 have run, destination API
  calls, and database transactions (every state call is one: autocommit) in that time;
- a no-op cycle: the file saved unchanged (every sync runs, nothing is written);
- with 2 or 3 replicas, the takeover after ``kill -9`` of one: time until the others have
  taken its syncs over (heartbeats) and until those syncs have run.

Usage: python benchmarks/bench_replicas.py [--syncs 1000] [--replicas 1 2 3] [--lease 10] [--sqlite]
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests package holds the cluster helper
os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
                  AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
                  AWS_EC2_METADATA_DISABLED="true", NO_COLOR="1")

from daemonbench import save_secrets, write_specs
from moto.server import ThreadedMotoServer

from tests.support.postgres import APP_PASSWORD, Cluster, bindir, free_port


def _metrics(port: int) -> dict[str, float]:
    """Each series summed over its label sets. Read line by line, not with the client's
    parser: that costs more CPU than the replicas it measures, on a 2-core machine."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            name = series.partition("{")[0]
            out[name] = out.get(name, 0.0) + float(value)
    return out


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as resp:
            return resp.status == 200
    except OSError:
        return False


def _wait(pred: object, timeout: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if pred():  # type: ignore[operator]
            return time.monotonic() - start
        time.sleep(0.5)
    raise SystemExit(f"timed out after {timeout}s waiting for {what}")


class Fleet:
    def __init__(self, root: Path, url: str | None, key: Path, n: int, lease: float) -> None:
        self.ports = {f"r{i + 1}": free_port() for i in range(n)}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        for name, port in self.ports.items():
            argv = [sys.executable, "-m", "reconciler.cli", "run", str(root / "specs"),
                    "--state-dir", str(root / f"local-{name}"), "--listen", f"127.0.0.1:{port}",
                    "--log-level", "warning"]
            if url is not None:  # None: the SQLite baseline
                argv += ["--state-url", url, "--state-key-file", str(key), "--replica-name", name,
                         "--lease-seconds", str(lease)]
            self.procs[name] = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                                stderr=(root / f"{name}.log").open("wb"))

    def live(self) -> dict[str, int]:
        return {n: p for n, p in self.ports.items() if self.procs[n].poll() is None}

    def total(self, series: str) -> float:
        return sum(_metrics(p).get(series, 0.0) for p in self.live().values())

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            p.wait(60)


def _settle(fleet: Fleet) -> None:
    """Until the replica count has stood and no reconcile ran for 2 s."""
    last, quiet = -1.0, time.monotonic()
    while time.monotonic() - quiet < 2:
        now = fleet.total("reconciler_reconciles_total")
        if now != last:
            last, quiet = now, time.monotonic()
        time.sleep(0.25)


def _xacts(cluster: Cluster, db: str) -> int:
    rows = cluster.sql(f"SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '{db}'")  # noqa: S608
    return int(rows[0][0])  # type: ignore[call-overload]


def _cycle(fleet: Fleet, cluster: Cluster, db: str, secrets: Path, syncs: int, rnd: int) -> tuple[float, float, int]:
    runs, calls, xacts = (fleet.total("reconciler_reconciles_total"),
                          fleet.total("reconciler_destination_api_calls_total"), _xacts(cluster, db))
    save_secrets(secrets, syncs, 1, rnd)
    took = _wait(lambda: fleet.total("reconciler_reconciles_total") >= runs + syncs, 900, "a full cycle")
    _settle(fleet)
    return took, fleet.total("reconciler_destination_api_calls_total") - calls, _xacts(cluster, db) - xacts


def _baseline(cluster: Cluster, endpoint: str, syncs: int) -> str:
    """One daemon on the SQLite state, the same cycles: what PostgreSQL costs."""
    with tempfile.TemporaryDirectory(prefix="bench-replicas-") as tmp:
        root = Path(tmp)
        write_specs(root, endpoint, syncs)
        secrets = root / "secrets.yaml"
        save_secrets(secrets, syncs, 1, 0)
        fleet = Fleet(root, None, root / "unused", 1, 0)
        try:
            port = fleet.ports["r1"]
            _wait(lambda: _ready(port), 900, "the daemon to be ready")
            _settle(fleet)
            change = _cycle(fleet, cluster, "postgres", secrets, syncs, 1)
            noop = _cycle(fleet, cluster, "postgres", secrets, syncs, 1)
            return f"1 (SQLite) | {change[0]:.1f} s | {change[1]:.0f} | - | {noop[0]:.1f} s | {noop[1]:.0f} | - | - | -"
        finally:
            fleet.stop()


def _takeover(fleet: Fleet, lease: float) -> str:
    """kill -9 of r2: how soon the others took its syncs over, and ran them."""
    held = _metrics(fleet.ports["r2"]).get("reconciler_replica_held_syncs", 0.0)
    runs = fleet.total("reconciler_reconciles_total") - _metrics(fleet.ports["r2"]).get(
        "reconciler_reconciles_total", 0.0)
    fleet.procs["r2"].kill()
    fleet.procs["r2"].wait(30)
    seen = _wait(lambda: fleet.total("reconciler_lease_takeovers_total") >= held, 5 * lease, "the takeover")
    done = _wait(lambda: fleet.total("reconciler_reconciles_total") >= runs + held, 600, "the taken-over syncs to run")
    return f"{seen:.1f} s | {seen + done:.1f} s ({held:.0f} syncs)"


def _measure(n: int, cluster: Cluster, endpoint: str, syncs: int, lease: float) -> str:
    with tempfile.TemporaryDirectory(prefix="bench-replicas-") as tmp:
        root = Path(tmp)
        write_specs(root, endpoint, syncs)
        secrets = root / "secrets.yaml"
        save_secrets(secrets, syncs, 1, 0)
        db = cluster.new_database()
        pw, key = root / "pw", root / "key"
        pw.write_text(APP_PASSWORD)
        key.write_bytes(os.urandom(32))
        fleet = Fleet(root, cluster.app_url(db, pw), key, n, lease)
        try:
            for p in fleet.ports.values():
                _wait(lambda p=p: _ready(p), 600, "the replicas to be ready")
            _wait(lambda: all(_metrics(p).get("reconciler_replicas_live") == n for p in fleet.ports.values()),
                  60, "the replicas to see each other")
            _settle(fleet)
            change = _cycle(fleet, cluster, db, secrets, syncs, 1)
            noop = _cycle(fleet, cluster, db, secrets, syncs, 1)
            takeover = _takeover(fleet, lease) if n > 1 else "- | -"
            return (f"{n} | {change[0]:.1f} s | {change[1]:.0f} | {change[2]} | {noop[0]:.1f} s | {noop[1]:.0f} | "
                    f"{noop[2]} | {takeover}")
        finally:
            fleet.stop()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--syncs", type=int, default=1000)
    ap.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--lease", type=float, default=10.0)
    ap.add_argument("--sqlite", action="store_true", help="also run one daemon on the SQLite state (a baseline)")
    args = ap.parse_args()
    found = bindir()
    if found is None:
        raise SystemExit("the PostgreSQL server binaries are not installed (apt-get install postgresql)")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    cluster = Cluster(found)
    cluster.start()
    cluster.create_app_role()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    print(f"{args.syncs} syncs, lease {args.lease:g}s; moto and PostgreSQL on this machine ({os.cpu_count()} cores)")
    print("replicas | change cycle | API calls | DB xacts | no-op cycle | API calls | DB xacts | takeover seen | "
          "taken-over syncs run")
    try:
        if args.sqlite:
            print(_baseline(cluster, f"http://{host}:{port}", args.syncs), flush=True)
        for n in args.replicas:
            print(_measure(n, cluster, f"http://{host}:{port}", args.syncs, args.lease), flush=True)
    finally:
        moto.stop()
        cluster.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
