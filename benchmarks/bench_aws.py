"""AWS Secrets Manager: API calls and time of a first sync and of a no-op reconcile.

Runs reconciler's CLI in-process against moto's server on 127.0.0.1 for N secrets and
prints, beside each, the calls the upstream (Infisical) implementation makes for the same N
(shared/reference/upstream-infisical.md, AWS section):

  first sync : ListSecrets pages + one CreateSecret per secret
  no-op      : ListSecrets pages + ceil(N/20) BatchGetSecretValue + N DescribeSecret
               + N UpdateSecret (the default-KMS-key comparison bug rewrites every secret)

Usage: python benchmarks/bench_aws.py [N ...]   (default: 100 1000)
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
                  AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
                  AWS_EC2_METADATA_DISABLED="true", NO_COLOR="1")

from moto.server import ThreadedMotoServer

from reconciler import calls
from reconciler.cli import main


def _cli(*argv: str) -> int:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return main(list(argv))


def _setup(root: Path, endpoint: str, n: int) -> tuple[Path, Path]:
    specs = root / "specs"
    specs.mkdir()
    docs = [
        {"kind": "Connection", "name": "local", "app": "file", "path": "../secrets.yaml"},
        {"kind": "Connection", "name": "aws", "app": "aws", "endpoint": endpoint, "region": "us-east-1",
         "credentials": {"method": "access-key", "accessKeyId": {"env": "AWS_ACCESS_KEY_ID"},
                         "secretAccessKey": {"env": "AWS_SECRET_ACCESS_KEY"}}},
        {"kind": "SecretSync", "name": "bench", "source": "local", "environment": "prod", "secretPath": "/app",
         "destination": "aws-secrets-manager", "connection": "aws",
         "destinationConfig": {"region": "us-east-1", "mappingBehavior": "one-to-one"},
         "syncOptions": {"keySchema": "bench/{{secretKey}}"}},
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
    return elapsed, calls.by_call("aws-secrets-manager")


def _fmt(c: dict[str, int]) -> str:
    return " + ".join(f"{v} {k}" for k, v in sorted(c.items())) or "0"


def main_bench(sizes: list[int]) -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    srv = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    srv.start()
    host, port = srv.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    rows = []
    try:
        for n in sizes:
            import urllib.request

            urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")).read()
            with tempfile.TemporaryDirectory() as tmp:
                specs, state = _setup(Path(tmp), endpoint, n)
                first_t, first_c = _measure("apply", str(specs), "--state-dir", str(state))
                noop_t, noop_c = _measure("apply", str(specs), "--state-dir", str(state))
                cold_t, cold_c = _measure("plan", str(specs), "--state-dir", str(Path(tmp) / "no-state"))
            pages = math.ceil(n / 100)
            up_first = 1 + n
            up_noop = pages + math.ceil(n / 20) + n + n
            rows.append((n, first_t, first_c, up_first, noop_t, noop_c, up_noop, cold_t, cold_c))
    finally:
        srv.stop()

    print("AWS Secrets Manager (moto server on 127.0.0.1), one-to-one, key schema with a literal prefix\n")
    for n, first_t, first_c, up_first, noop_t, noop_c, up_noop, cold_t, cold_c in rows:
        print(f"N = {n}")
        print(f"  first sync        : {sum(first_c.values()):>5} calls  {first_t:7.2f} s   ({_fmt(first_c)})")
        print(f"    upstream        : {up_first:>5} calls")
        print(f"  no-op, warm state : {sum(noop_c.values()):>5} calls  {noop_t:7.2f} s   ({_fmt(noop_c)})")
        print(f"    upstream        : {up_noop:>5} calls   (ListSecrets + BatchGet/20 + N DescribeSecret"
              " + N UpdateSecret from the KMS-key bug)")
        print(f"  plan, no state    : {sum(cold_c.values()):>5} calls  {cold_t:7.2f} s   ({_fmt(cold_c)})")
        print()


if __name__ == "__main__":
    main_bench([int(a) for a in sys.argv[1:]] or [100, 1000])
