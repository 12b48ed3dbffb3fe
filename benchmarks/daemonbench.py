"""What the daemon benchmarks share (bench_daemon, bench_replicas): one spec file of N syncs,
each reading its own folder of the local secrets file into moto, and saving that file the way
an editor or a `git pull` does (whole, by rename)."""

from __future__ import annotations

import os
from pathlib import Path

import yaml


def write_specs(root: Path, endpoint: str, syncs: int) -> None:
    """``root/specs/specs.yaml``: a file source (``root/secrets.yaml``), an AWS connection to
    ``endpoint`` and syncs s0..sN-1, each of folder /sI into keys sI/*."""
    docs: list[dict[str, object]] = [
        {"kind": "Connection", "name": "local", "app": "file", "path": "../secrets.yaml"},
        {"kind": "Connection", "name": "aws", "app": "aws", "endpoint": endpoint, "region": "us-east-1",
         "credentials": {"method": "access-key", "accessKeyId": {"env": "AWS_ACCESS_KEY_ID"},
                         "secretAccessKey": {"env": "AWS_SECRET_ACCESS_KEY"}}},
    ]
    for i in range(syncs):
        docs.append({"kind": "SecretSync", "name": f"s{i}", "source": "local", "environment": "dev",
                     "secretPath": f"/s{i}", "destination": "aws-secrets-manager", "connection": "aws",
                     "destinationConfig": {"region": "us-east-1", "mappingBehavior": "one-to-one"},
                     "syncOptions": {"keySchema": f"s{i}/{{{{secretKey}}}}"}})
    (root / "specs").mkdir(exist_ok=True)
    (root / "specs" / "specs.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))


def save_secrets(path: Path, syncs: int, keys: int, rnd: int) -> None:
    """Every sync's folder with ``keys`` values of round ``rnd``, replacing the file at once."""
    data = {"dev": {f"/s{i}": {f"K{k}": f"r{rnd}-{i}-{k}" for k in range(keys)} for i in range(syncs)}}
    tmp = path.with_name(".secrets.yaml.tmp")
    tmp.write_text(yaml.safe_dump(data))
    os.replace(tmp, path)
