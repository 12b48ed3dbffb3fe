"""Start-up cost of the CLI, as ratios to a bare interpreter (issue 14, item 3).

    .venv/bin/python benchmarks/bench_startup.py [--python PY] [--runs 21]

Times ``python -c pass``, ``reconciler --help`` and ``reconciler validate`` of ten one-sync
specs (plus their two connections), each in a fresh process, ``--runs`` times in turn, and
prints the fastest wall time and CPU time (user + system, from ``wait4``) of each with their
ratios to the bare interpreter: on a machine shared with other work the fastest run is the
one least disturbed by it (``timeit`` reports the minimum for the same reason).
``--python`` measures another environment, e.g. a clean non-editable install
(``python -m venv v && v/bin/pip install .``): an editable install's import hook alone
costs a bare interpreter about 10 ms, which flatters every ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scale import write_specs

#: as a user's shell has it: PYTHONDONTWRITEBYTECODE (set on some CI machines) would compile
#: every module from source on every start
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def once(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run of ``argv``, output discarded."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    start = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, ENV,
                         file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)])
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    os.close(devnull)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({os.waitstatus_to_exitcode(status)})")
    return wall, usage.ru_utime + usage.ru_stime


def measure(cases: dict[str, list[str]], runs: int) -> dict[str, tuple[float, float]]:
    """Fastest wall and CPU seconds per case; the cases take turns, so a burst of other work
    on the machine lands on all of them alike."""
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for argv in cases.values():
        once(argv)  # bytecode written, files in the page cache
    for _ in range(runs):
        for name, argv in cases.items():
            samples[name].append(once(argv))
    return {name: (min(s[0] for s in got), min(s[1] for s in got))
            for name, got in samples.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--python", default=sys.executable, help="the interpreter of the environment to measure")
    p.add_argument("--runs", type=int, default=21)
    args = p.parse_args()
    python = str(Path(args.python).absolute())  # a venv's python is a symlink: keep the venv's path
    script = str(Path(python).with_name("reconciler"))
    with tempfile.TemporaryDirectory() as tmp:
        specs = write_specs(Path(tmp), 10, 5)
        cases = {
            "python -c pass": [python, "-c", "pass"],
            "reconciler --help": [script, "--help"],
            "reconciler validate (10 specs)": [script, "validate", str(specs)],
        }
        results = measure(cases, args.runs)
    base_wall, base_cpu = results["python -c pass"]
    print(f"{python} (fastest of {args.runs})")
    print(f"{'':32} {'wall':>8} {'ratio':>6} {'cpu':>8} {'ratio':>6}")
    for name, (wall, cpu) in results.items():
        print(f"{name:32} {wall * 1000:6.0f}ms {wall / base_wall:5.1f}x {cpu * 1000:6.0f}ms {cpu / base_cpu:5.1f}x")


if __name__ == "__main__":
    main()
