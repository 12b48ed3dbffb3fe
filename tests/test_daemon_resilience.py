"""The daemon never keeps running while not reconciling (issue 13 item 4), counts each sync
once in its metrics and stores the run id its logs carry (item 14), and learns about sources
only from the source catalog (issue 9)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.daemon.supervisor import Supervisor
from reconciler.model import Folder
from reconciler.sources import catalog
from reconciler.sources.catalog import Polling, SourceCatalog, SourceDescriptor, Webhooks, reads
from tests.support.cli import Workspace
from tests.support.daemon import DaemonHarness, wait_until


@pytest.fixture
def daemon(ws: Workspace) -> Iterator[Callable[..., DaemonHarness]]:
    started: list[DaemonHarness] = []

    def make(**kw: Any) -> DaemonHarness:
        h = DaemonHarness(ws, **kw)
        started.append(h)
        return h.start()

    yield make
    for h in started:
        if h._thread.is_alive():
            assert h.stop() == 0
        assert h.leaks() == []


def value(sm: Any, name: str) -> str | None:
    try:
        return str(sm.get_secret_value(SecretId=name)["SecretString"])
    except sm.exceptions.ResourceNotFoundException:
        return None


def save_atomically(path: Path, text: str | bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(text.encode() if isinstance(text, str) else text)
    os.replace(tmp, path)


# -- issue 13 item 4: one bad byte must not stop file watching --------------------------------
@pytest.mark.parametrize("byte", [b"\x07", b"\x00"], ids=["BEL", "NUL"])
def test_a_control_byte_in_a_spec_is_reported_and_watching_goes_on(
        ws: Workspace, sm_client: Any, daemon: Callable[..., DaemonHarness], byte: bytes) -> None:
    app = ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": "1"})
    h = daemon()
    assert value(sm_client, "app/A") == "1"

    good = yaml.safe_dump(ws.sync(), sort_keys=False).encode()
    save_atomically(app, good.replace(b"name: app", b"name: app" + byte))
    wait_until(lambda: h.events("spec.load_failed") or h.events("spec.diagnostic", file=str(app)), 10,
               "the bad byte to be reported")
    h.wait_idle()
    assert h.http("GET", "/healthz")[0] == 200 and h.http("GET", "/readyz")[0] == 200
    ws.set_secrets({"A": "2"})
    wait_until(lambda: value(sm_client, "app/A") == "2", 10, "the running sync to go on (last known good)")

    # a later save is still seen: fixed spec, and a new one
    save_atomically(app, good)
    ws.write_spec("late.yaml", [ws.sync("late", secretPath="/late", syncOptions={"keySchema": "late/{{secretKey}}"})])
    ws.set_secrets({"L": "late-value"}, path="/late")
    wait_until(lambda: value(sm_client, "late/L") == "late-value", 10, "a save after the bad one to be applied")
    assert not h.events("daemon.task_failed") and not h.events("daemon.task_ended")


def test_a_part_that_dies_is_restarted_and_readyz_says_so_meanwhile(
        ws: Workspace, daemon: Callable[..., DaemonHarness]) -> None:
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": "1"})
    h = daemon(restart_pause=1.0)
    d = h.daemon
    lives: list[int] = []
    release = asyncio.Event()

    async def part() -> None:
        lives.append(1)
        if len(lives) == 1:
            raise RuntimeError("boom")
        await release.wait()  # the second life lasts

    h.on_loop(lambda: d.supervisor.start("probe", part))
    wait_until(lambda: h.http("GET", "/readyz")[0] == 503, 5, "readyz to report the dead part")
    _code, body, _ = h.http("GET", "/readyz")
    assert b"probe restarting" in body
    assert h.http("GET", "/healthz")[0] == 503
    wait_until(lambda: h.http("GET", "/readyz")[0] == 200, 5, "the part to be restarted")
    assert len(lives) == 2
    assert h.events("daemon.task_failed", task="probe", error_type="RuntimeError")
    assert h.events("daemon.task_restarted", task="probe")
    h.on_loop(release.set)


def test_a_part_that_keeps_dying_stops_the_daemon_with_exit_code_1(ws: Workspace) -> None:
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": "1"})
    h = DaemonHarness(ws, restart_pause=0.05, max_restarts=2).start()

    async def part() -> None:
        raise OSError("gone")

    h.on_loop(lambda: h.daemon.supervisor.start("probe", part))
    h._thread.join(10)
    assert not h._thread.is_alive(), "the daemon must not keep running without its parts"
    assert h.code == 1
    assert h.events("daemon.failed") and h.events("daemon.task_gave_up", task="probe")
    assert h.leaks() == []


def test_a_scheduler_that_stopped_fails_health_and_stops_the_daemon_with_exit_code_1(ws: Workspace) -> None:
    """Nothing would run on time again: /healthz says why, and the daemon exits 1 so the
    service manager starts a fresh one."""
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": "1"})
    h = DaemonHarness(ws).start()
    assert h.http("GET", "/healthz")[0] == 200
    h.on_loop(h.daemon.schedule.shutdown)
    h._thread.join(10)
    assert not h._thread.is_alive(), "the daemon must not keep running without its scheduler"
    assert h.code == 1
    assert any("scheduler stopped" in str(e) for e in h.events("daemon.failed")), h.events("daemon.failed")


def test_the_watcher_survives_a_failing_handler() -> None:
    """Whatever a batch of file events fails on, the next batch is still handled."""
    from reconciler.daemon.watcher import Watcher

    seen: list[set[str]] = []

    async def handler(paths: set[str]) -> None:
        seen.append(paths)
        if len(seen) == 1:
            raise ValueError("bad file")

    async def main() -> None:
        w = Watcher(handler)
        await w._deliver({"a.yaml"})
        await w._deliver({"b.yaml"})

    asyncio.run(main())
    assert seen == [{"a.yaml"}, {"b.yaml"}]


def test_supervisor_gives_up_only_after_repeated_deaths_within_the_window() -> None:
    fatal: list[str] = []
    now = [0.0]

    async def main() -> list[str]:
        s = Supervisor(fatal.append, restarts=2, window=60.0, pause=0.0, clock=lambda: now[0])
        deaths = 0

        async def part() -> None:
            nonlocal deaths
            deaths += 1
            now[0] += 100.0 if deaths <= 3 else 1.0  # three deaths far apart, then fast ones
            raise RuntimeError("x")

        s.start("p", part)
        for _ in range(200):
            await asyncio.sleep(0)
            if fatal:
                break
        problems = s.problems()
        await s.stop()
        # three deaths far apart are each restarted; the third within one window is the end
        assert deaths == 5, deaths
        return problems

    problems = asyncio.run(main())
    assert fatal == ["p failed 3 times in 60s"]
    assert problems == ["p failed"]


# -- issue 13 item 14 ----------------------------------------------------------------------------
def _metric(h: DaemonHarness, state: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    body = h.http("GET", "/metrics")[1].decode()
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            if s.name == "reconciler_syncs" and s.labels.get("state") == state:
                return float(s.value)
    raise AssertionError(state)


def test_a_kept_invalid_sync_is_counted_once(ws: Workspace, daemon: Callable[..., DaemonHarness]) -> None:
    a = ws.write_spec("a.yaml", [ws.sync("a", secretPath="/a", syncOptions={"keySchema": "a/{{secretKey}}"})])
    ws.write_spec("b.yaml", [ws.sync("b", secretPath="/b", syncOptions={"keySchema": "b/{{secretKey}}"})])
    ws.write_spec("c.yaml", [ws.sync("c", secretPath="/c", syncOptions={"keySchema": "c/{{secretKey}}"},
                                     reconcile={"interval": "never"})])
    ws.set_secrets({"K": "a"}, path="/a")
    ws.set_secrets({"K": "b"}, path="/b")
    h = daemon()
    assert (_metric(h, "active"), _metric(h, "invalid_kept"), _metric(h, "invalid")) == (2, 0, 1)
    save_atomically(a, yaml.safe_dump(ws.sync("a", secretPath="/a", syncOptions={"keySchema": "a/{{secretKey}}"},
                                              reconcile={"interval": "soon"}), sort_keys=False))
    wait_until(lambda: h.events("spec.invalid", sync="a"), 10, "a to turn invalid")
    assert (_metric(h, "active"), _metric(h, "invalid_kept"), _metric(h, "invalid")) == (1, 1, 1)
    status = json.loads(h.http("GET", "/status")[1])["syncs"]
    assert {n: s["state"] for n, s in status.items()} == {"a": "invalid-kept", "b": "active", "c": "invalid"}


def test_last_sync_job_id_is_the_run_id_of_the_logs(ws: Workspace, daemon: Callable[..., DaemonHarness]) -> None:
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": "1"})
    h = daemon()
    (started,) = h.events("reconcile.started", sync="app")
    (row,) = json.loads(h.cli("status", "--json").out)["syncs"]
    assert row["lastSyncJobId"] == started["run_id"]
    assert json.loads(h.http("GET", "/status")[1])["syncs"]["app"]["lastRunId"] == started["run_id"]


# -- issue 9: sources through the catalog --------------------------------------------------------
def test_webhook_routes_come_from_the_catalog(ws: Workspace, daemon: Callable[..., DaemonHarness]) -> None:
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": "1"})
    h = daemon()
    assert h.http("POST", "/webhooks/kms/local", b"{}")[0] == 404, "a file source takes no webhooks"
    assert h.http("POST", "/webhooks/nope/local", b"{}")[0] == 404
    assert h.http("POST", "/webhooks/kms/missing", b"{}")[0] == 404
    assert h.http("POST", "/webhooks/kms", b"{}")[0] == 404
    assert h.http("GET", "/webhooks/kms/local")[0] == 405


def _descriptor(app: str, route: str | None = None) -> SourceDescriptor:
    hooks = Webhooks(route=route, verify=lambda _b, _h, _s: Folder("dev", "/")) if route else None
    return SourceDescriptor(app=app, label=app, open="x:y", polling=Polling(), webhooks=hooks)


def test_catalog_rejects_duplicates_and_reads_capabilities() -> None:
    cat = SourceCatalog((_descriptor("a", "hooks"),))
    with pytest.raises(ValueError, match="registered twice"):
        cat.register(_descriptor("a"))
    with pytest.raises(ValueError, match="route 'hooks' is registered twice"):
        cat.register(_descriptor("b", "hooks"))
    assert cat.by_route("hooks") is cat.get("a") and cat.by_route("nope") is None
    built = catalog.default()
    assert built.apps() == ("kms", "file")
    kms, file = built.get("kms"), built.get("file")
    assert kms is not None and kms.needs_project and kms.recursive and kms.webhooks and kms.polling
    assert file is not None and file.local_file == "path" and not file.polling and not file.webhooks
    assert kms.polling.interval({"pollInterval": 7}) == 7.0 and kms.polling.interval({"pollInterval": 0}) == 60.0


def test_a_recursive_reader_reads_sub_folders_of_its_project_only() -> None:
    deep = Folder("dev", "/app", "p", recursive=True)
    assert reads(deep, Folder("dev", "/app/sub", "p")) and reads(deep, Folder("dev", "/app", "p"))
    assert not reads(deep, Folder("dev", "/apple", "p")) and not reads(deep, Folder("dev", "/app/sub", "q"))
    assert not reads(Folder("dev", "/app", "p"), Folder("dev", "/app/sub", "p"))


def test_loading_the_catalog_imports_no_http_client() -> None:
    code = ("import sys; from reconciler.sources import catalog; catalog.default(); "
            "import reconciler.specs.loader; assert 'httpx' not in sys.modules, 'httpx'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_the_watcher_follows_a_spec_directory_symlink_that_is_swapped(tmp_path: Path) -> None:
    """git-sync (examples/kubernetes) and release-style deploys point a symlink at a new
    checkout: nothing changes inside the old one, so the swap went unseen until the old
    checkout was deleted, if ever."""
    from reconciler.daemon.watcher import Watcher

    (tmp_path / "rev1").mkdir()
    (tmp_path / "rev2").mkdir()
    (tmp_path / "rev1" / "a.yaml").write_text("kind: Connection\n")
    (tmp_path / "rev2" / "a.yaml").write_text("kind: Connection\n")
    link = tmp_path / "specs"
    link.symlink_to("rev1")
    seen: list[set[str]] = []

    async def main() -> None:
        w = Watcher(lambda paths: _record(seen, paths), step_ms=20, debounce_ms=50)
        w.set_targets(link, [])
        task = asyncio.create_task(w.run())
        await asyncio.sleep(0.5)
        (tmp_path / "next").symlink_to("rev2")
        os.replace(tmp_path / "next", link)  # the atomic swap git-sync makes
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.05)
        w.stop()
        await asyncio.wait_for(task, 5)

    asyncio.run(main())
    assert seen == [{str(link)}], seen


async def _record(seen: list[set[str]], paths: set[str]) -> None:
    seen.append(paths)


def test_the_watcher_sees_a_spec_directory_that_comes_back(tmp_path: Path) -> None:
    """Deleted (an unmounted volume), then back: its files were never announced, and the
    watch stayed on the deleted directory, so later edits went unseen too."""
    from reconciler.daemon.watcher import Watcher

    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "a.yaml").write_text("kind: Connection\n")
    seen: list[set[str]] = []

    async def main() -> None:
        w = Watcher(lambda paths: _record(seen, paths), step_ms=20, debounce_ms=50)
        w.set_targets(specs, [])
        task = asyncio.create_task(w.run())
        await asyncio.sleep(0.5)
        shutil.rmtree(specs)
        await asyncio.sleep(1.5)
        seen.clear()
        specs.mkdir()
        (specs / "a.yaml").write_text("kind: Connection\n")
        for _ in range(60):
            if seen:
                break
            await asyncio.sleep(0.05)
        assert {str(specs)} in seen, seen
        await asyncio.sleep(0.5)
        seen.clear()
        (specs / "b.yaml").write_text("kind: Connection\n")  # watched again
        for _ in range(60):
            if seen:
                break
            await asyncio.sleep(0.05)
        w.stop()
        await asyncio.wait_for(task, 5)

    asyncio.run(main())
    assert any(p.endswith("b.yaml") for batch in seen for p in batch), seen
