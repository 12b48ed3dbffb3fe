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

import logging
import math
import os
import sys
import urllib.request
from pathlib import Path

os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
                  AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
                  AWS_EC2_METADATA_DISABLED="true", NO_COLOR="1")

from callbench import report, run_sizes, write_workspace
from moto.server import ThreadedMotoServer

KIND = "aws-secrets-manager"


def main_bench(sizes: list[int]) -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    srv = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    srv.start()
    host, port = srv.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    connection = {"kind": "Connection", "name": "aws", "app": "aws", "endpoint": endpoint, "region": "us-east-1",
                  "credentials": {"method": "access-key", "accessKeyId": {"env": "AWS_ACCESS_KEY_ID"},
                                  "secretAccessKey": {"env": "AWS_SECRET_ACCESS_KEY"}}}
    sync = {"destination": KIND, "connection": "aws",
            "destinationConfig": {"region": "us-east-1", "mappingBehavior": "one-to-one"},
            "syncOptions": {"keySchema": "bench/{{secretKey}}"}}

    def prepare(n: int, root: Path) -> tuple[Path, Path]:
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")).read()
        return write_workspace(root, connection, sync, n)

    def upstream(n: int) -> tuple[int, int]:
        return 1 + n, math.ceil(n / 100) + math.ceil(n / 20) + n + n

    try:
        rows = run_sizes(KIND, sizes, prepare, upstream)
    finally:
        srv.stop()
    report("AWS Secrets Manager (moto server on 127.0.0.1), one-to-one, key schema with a literal prefix", rows,
           "ListSecrets + N CreateSecret",
           "ListSecrets + BatchGet/20 + N DescribeSecret + N UpdateSecret from the KMS-key bug")


if __name__ == "__main__":
    main_bench([int(a) for a in sys.argv[1:]] or [100, 1000])
