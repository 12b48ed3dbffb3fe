"""The measurement every destination benchmark shares: write a spec directory with one sync
of N secrets, run the CLI in-process (first sync, no-op with warm state, plan without
state), count API calls per destination call, and print them beside upstream's numbers."""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from reconciler import calls
from reconciler.cli import main


def quiet_cli(*argv: str) -> int:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return main(list(argv))


def write_workspace(root: Path, connection: dict[str, Any], sync: dict[str, Any], n: int) -> tuple[Path, Path]:
    """specs/ with a file source, ``connection`` and ``sync`` (named bench, reading prod:/app),
    and a secrets file of N keys. Returns (spec dir, state dir)."""
    specs = root / "specs"
    specs.mkdir(parents=True)
    docs = [
        {"kind": "Connection", "name": "local", "app": "file", "path": "../secrets.yaml"},
        connection,
        {"kind": "SecretSync", "name": "bench", "source": "local", "environment": "prod", "secretPath": "/app",
         **sync},
    ]
    (specs / "bench.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    (root / "secrets.yaml").write_text(
        yaml.safe_dump({"prod": {"/app": {f"KEY_{i:05d}": f"value-{i}-{'x' * 32}" for i in range(n)}}})
    )
    return specs, root / "state"


def measure(kind: str, *argv: str, ignore: Collection[str] = ()) -> tuple[float, dict[str, int]]:
    calls.reset()
    t0 = time.perf_counter()
    code = quiet_cli(*argv)
    elapsed = time.perf_counter() - t0
    if code != 0:
        raise SystemExit(f"reconciler {' '.join(argv)} exited {code}")
    return elapsed, {k: v for k, v in calls.by_call(kind).items() if k not in ignore}


def fmt(c: dict[str, int]) -> str:
    return " + ".join(f"{v} {k}" for k, v in sorted(c.items())) or "0"


@dataclass
class Row:
    n: int
    first: tuple[float, dict[str, int]]
    noop: tuple[float, dict[str, int]]
    cold: tuple[float, dict[str, int]]
    upstream_first: int
    upstream_noop: int


def run_sizes(kind: str, sizes: list[int], prepare: Callable[[int, Path], tuple[Path, Path]],
              upstream: Callable[[int], tuple[int, int]], ignore: Collection[str] = ()) -> list[Row]:
    """For each N: ``prepare(n, root)`` resets the service and writes the workspace."""
    import tempfile

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            root = Path(tmp) / f"n{n}"
            specs, state = prepare(n, root)
            first = measure(kind, "apply", str(specs), "--state-dir", str(state), ignore=ignore)
            noop = measure(kind, "apply", str(specs), "--state-dir", str(state), ignore=ignore)
            cold = measure(kind, "plan", str(specs), "--state-dir", str(root / "no-state"), ignore=ignore)
            rows.append(Row(n, first, noop, cold, *upstream(n)))
    return rows


def report(title: str, rows: list[Row], upstream_first: str, upstream_noop: str) -> None:
    print(title + "\n")
    for r in rows:
        print(f"N = {r.n}")
        t, c = r.first
        print(f"  first sync        : {sum(c.values()):>5} calls  {t:7.2f} s   ({fmt(c)})")
        print(f"    upstream        : {r.upstream_first:>5} calls   ({upstream_first})")
        t, c = r.noop
        print(f"  no-op, warm state : {sum(c.values()):>5} calls  {t:7.2f} s   ({fmt(c)})")
        print(f"    upstream        : {r.upstream_noop:>5} calls   ({upstream_noop})")
        t, c = r.cold
        print(f"  plan, no state    : {sum(c.values()):>5} calls  {t:7.2f} s   ({fmt(c)})")
        print()
