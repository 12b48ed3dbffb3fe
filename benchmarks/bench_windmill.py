"""Windmill: API calls and time of a first sync and of a no-op reconcile, beside upstream's.

Runs reconciler's CLI in-process against the Windmill emulator (tests/emulators/windmill,
plain HTTP on 127.0.0.1, as a self-hosted instance) for N secrets, then replays upstream's
(Infisical's) no-op pattern against the same emulator and times it too
(shared/reference/upstream-infisical.md, Windmill section):

  first sync : list pages (empty folder) + N create
  no-op      : list pages + one get_value per secret variable, values compared

Upstream pages with ``limit``, which the API ignores; its replay here uses ``per_page=100``
(what it means to do), so the comparison is with upstream working as intended.

Usage: python benchmarks/bench_windmill.py [N ...]   (default: 100 1000)
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests package holds the emulator
os.environ.update(NO_COLOR="1", BENCH_WINDMILL_TOKEN="bench-windmill-token")

import httpx
from callbench import report, run_sizes, write_workspace

from tests.emulators.windmill import WindmillEmulator

KIND = "windmill"
WORKSPACE = "bench"
FOLDER = "f/bench/app/"


def upstream_noop(url: str, n: int) -> tuple[int, float]:
    """Upstream's no-op: every list page, then ``get_value`` for each secret variable."""
    api = f"{url}/api/w/{WORKSPACE}/variables"
    headers = {"Authorization": f"Bearer {os.environ['BENCH_WINDMILL_TOKEN']}"}
    count, t0 = 0, time.perf_counter()
    with httpx.Client(headers=headers) as client:
        rows: list[dict[str, object]] = []
        page = 1
        while True:
            chunk = client.get(f"{api}/list", params={"path_start": FOLDER, "page": page, "per_page": 100}).json()
            count += 1
            rows += chunk
            if len(chunk) < 100:
                break
            page += 1
        for row in rows:
            if row["is_secret"]:
                client.get(f"{api}/get_value/{row['path']}").json()
                count += 1
    assert len(rows) == n, (len(rows), n)
    return count, time.perf_counter() - t0


def main_bench(sizes: list[int]) -> None:
    wm = WindmillEmulator(None)
    wm.add_token(os.environ["BENCH_WINDMILL_TOKEN"], WORKSPACE)
    wm.start()
    connection = {"kind": "Connection", "name": "wm", "app": "windmill", "instanceUrl": wm.url,
                  "credentials": {"method": "token", "token": {"env": "BENCH_WINDMILL_TOKEN"}}}
    sync = {"destination": KIND, "connection": "wm", "destinationConfig": {"workspace": WORKSPACE, "path": FOLDER},
            "syncOptions": {"keySchema": "{{secretKey}}"}}

    def prepare(n: int, root: Path) -> tuple[Path, Path]:
        wm.reset()
        return write_workspace(root, connection, sync, n)

    def pages(n: int) -> int:
        return n // 100 + 1  # until a short page: an exact multiple costs one empty page more

    def upstream(n: int) -> tuple[int, int]:
        return 1 + n, pages(n) + n

    replays: list[tuple[int, int, float]] = []
    try:
        rows = run_sizes(KIND, sizes, prepare, upstream)
        for n in sizes:  # the last workspace holds max(sizes); re-seed each N for the replay
            wm.reset()
            for i in range(n):
                wm.store.put(WORKSPACE, f"{FOLDER}KEY_{i:05d}", f"value-{i}")
            count, elapsed = upstream_noop(wm.url, n)
            replays.append((n, count, elapsed))
    finally:
        wm.stop()
    report(f"Windmill (emulator over HTTP on 127.0.0.1), workspace {WORKSPACE}, path {FOLDER}, key schema "
           "{{secretKey}}", rows, "list + N create", "list pages + N get_value")
    print("upstream's no-op pattern replayed against the same emulator:")
    for n, count, elapsed in replays:
        print(f"  N = {n:<5}: {count:>5} calls  {elapsed:7.2f} s   ({pages(n)} list + {n} get_value)")
    assert all(c == pages(n) + n for n, c, _ in replays)


if __name__ == "__main__":
    main_bench([int(a) for a in sys.argv[1:]] or [100, 1000])
