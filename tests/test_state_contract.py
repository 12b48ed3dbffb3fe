"""The state contract, run against both backends: the embedded SQLite store and PostgreSQL.

Whatever keeps the state, the engine sees the same inventory, status fields, fingerprints and
per-sync lock; read-only use creates nothing; no value is ever stored.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import StateError
from reconciler.model import InventoryEntry, SecretValue
from reconciler.state.backend import StateBackend
from reconciler.state.location import StateLocation
from tests.support.canary import CANARIES, find_leaks

Open = Callable[..., StateBackend]


def _location(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> StateLocation:
    if kind == "sqlite":
        return StateLocation(tmp_path / "state")
    pg = request.getfixturevalue("pg_state")
    return StateLocation(tmp_path / "state", pg.url, pg.key_file)


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> StateLocation:
    return _location(request.param, request, tmp_path)


@pytest.fixture
def open_state(location: StateLocation) -> Iterator[Open]:
    opened: list[StateBackend] = []

    def make(*, readonly: bool = False) -> StateBackend:
        st = location.open(readonly=readonly)
        opened.append(st)
        return st

    yield make
    for st in opened:
        st.close()


def test_round_trip_and_forget(open_state: Open) -> None:
    st = open_state()
    st.put_inventory("s", {"a": InventoryEntry("a", "fp", "v1", {"tag:x": "1"})})
    st.put_inventory("s", {"a": InventoryEntry("a", "fp2", "v2", {})})
    assert st.inventory("s")["a"] == InventoryEntry("a", "fp2", "v2", {})
    st.update_status("s", syncStatus="failed", lastSyncMessage="boom")
    assert st.status("s").lastSyncMessage == "boom"
    st.drop_inventory("s", ["a"])
    assert st.inventory("s") == {}
    st.forget("s")
    assert st.status("s").syncStatus is None
    with pytest.raises(StateError):
        st.update_status("s", nonsense="x")


def test_inventory_is_per_sync_and_drops_as_asked(open_state: Open) -> None:
    st = open_state()
    st.put_inventory("one", {k: InventoryEntry(k, f"fp-{k}", None, {"contentType": "text"}) for k in "abc"})
    st.put_inventory("two", {"a": InventoryEntry("a", None, "v9", {})})
    st.drop_inventory("one", [])
    assert set(st.inventory("one")) == {"a", "b", "c"}
    assert st.inventory("one")["b"].properties == {"contentType": "text"}
    assert st.inventory("two") == {"a": InventoryEntry("a", None, "v9", {})}
    st.drop_inventory("one", ["a", "missing"])
    assert set(st.inventory("one")) == {"b", "c"}
    st.drop_inventory("one")
    assert st.inventory("one") == {} and st.inventory("two") != {}


def test_status_fields_merge_and_list_in_order(open_state: Open) -> None:
    st = open_state()
    st.update_status("b", syncStatus="succeeded", lastSyncedAt="2026-01-01T00:00:00Z", destination="aws")
    st.update_status("b", lastSyncMessage="ok")
    st.update_status("a", importStatus="failed")
    b = st.status("b")
    assert (b.syncStatus, b.lastSyncedAt, b.lastSyncMessage, b.destination) == (
        "succeeded", "2026-01-01T00:00:00Z", "ok", "aws")
    assert [s.sync for s in st.all_status()] == ["a", "b"]
    assert st.status("never").as_dict()["syncStatus"] is None


def test_state_survives_reopening(open_state: Open) -> None:
    st = open_state()
    fp = st.fingerprinter(SecretValue("v"))
    st.put_inventory("s", {"k": InventoryEntry("k", fp, "v1")})
    st.update_status("s", syncStatus="succeeded")
    st.close()
    again = open_state()
    assert again.fingerprinter(SecretValue("v")) == fp
    assert again.inventory("s")["k"].fingerprint == fp
    assert again.exists()
    ro = open_state(readonly=True)
    assert ro.inventory("s")["k"].fingerprint == fp and ro.status("s").syncStatus == "succeeded"


def test_read_only_state_reads_empty_and_refuses_writes(open_state: Open, location: StateLocation) -> None:
    ro = open_state(readonly=True)
    assert ro.inventory("s") == {} and ro.status("s").syncStatus is None and ro.all_status() == []
    assert not ro.exists()
    with pytest.raises(StateError):
        ro.update_status("s", syncStatus="x")
    if location.url is None:
        assert not location.directory.exists()
    else:
        assert _tables(location) == [], "read-only use never creates the schema"


def _tables(location: StateLocation) -> list[str]:
    import psycopg

    from reconciler.state.pg.url import parse

    assert location.url is not None
    url = parse(location.url)
    with psycopg.connect(url.conninfo, password=url.password) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE tablename LIKE 'reconciler%'").fetchall()
    return sorted(r[0] for r in rows)


def test_no_value_reaches_the_state(open_state: Open, location: StateLocation) -> None:
    st = open_state()
    fp = st.fingerprinter
    st.put_inventory("s", {f"K{i}": InventoryEntry(f"K{i}", fp(SecretValue(c)), "v1", {"tag:owner": "me"})
                           for i, c in enumerate(CANARIES)})
    st.update_status("s", syncStatus="succeeded", lastSyncMessage="3 written")
    st.close()
    if location.url is None:
        from tests.support.canary import scan_tree

        assert scan_tree(location.directory) == []
    else:
        import psycopg

        from reconciler.state.pg.url import parse

        url = parse(location.url)
        with psycopg.connect(url.conninfo, password=url.password) as conn:
            dump = [repr(conn.execute(f"SELECT * FROM {t}").fetchall())  # noqa: S608
                    for t in ("reconciler_inventory", "reconciler_status", "reconciler_meta")]
        assert "K0" in dump[0]
        assert find_leaks(dump) == []


def _hold_then_report(location: StateLocation, ready: Any, release: Any) -> None:
    st = location.open()
    with st.hold("app"):
        ready.set()
        release.wait(30)
    st.close()


def test_one_writing_run_of_a_sync_at_a_time_across_processes(location: StateLocation) -> None:
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold_then_report, args=(location, ready, release))
    proc.start()
    try:
        assert ready.wait(30)
        st = location.open()
        with st.hold("other", wait=1):
            pass  # another sync is free
        started = time.monotonic()
        with pytest.raises(StateError, match=r"sync app is being reconciled by .*try again"), st.hold("app", wait=0.5):
            pass
        assert time.monotonic() - started >= 0.5
        release.set()
        with st.hold("app", wait=10):
            pass
        st.close()
    finally:
        release.set()
        proc.join(30)
    assert proc.exitcode == 0


def test_a_dead_holder_never_keeps_the_lock(location: StateLocation) -> None:
    """kill -9 of the holder: the kernel (flock) or the server (a session ending) frees it."""
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold_then_report, args=(location, ready, release))
    proc.start()
    assert ready.wait(30)
    proc.kill()
    proc.join(30)
    st = location.open()
    with st.hold("app", wait=15):
        pass
    st.close()


def test_holders_name_the_replica_running_a_sync(open_state: Open, location: StateLocation) -> None:
    st, other = open_state(), open_state()
    assert st.holders(["app", "other"]) == {}
    with st.hold("app"):
        if location.url is None:
            assert other.holders(["app"]) == {}  # one host: nobody to name
        else:
            assert other.holders(["app", "other"]) == {"app": st.db.name}  # type: ignore[attr-defined]
    assert other.holders(["app"]) == {}


def test_the_longest_sync_name_the_schema_allows_can_be_locked(location: StateLocation) -> None:
    """A 256-character slug validated, planned, and failed every apply: its lock file name
    was longer than a file name may be (ENAMETOOLONG)."""
    st = location.open()
    for name in ("a" * 256, "a" * 255 + "b"):
        with st.hold(name, wait=1):
            pass
    st.close()
