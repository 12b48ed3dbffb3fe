"""The lock's fence against a real PostgreSQL: its bound comes from the session's own settings,
and a session the server ends is noticed at once (not at the next confirmation)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from reconciler.changes import Action, Change, ChangeResult
from reconciler.destinations.contract import NOT_STARTED, apply_by_key, stopping
from reconciler.state.location import StateLocation
from reconciler.state.pg.database import KEEPALIVE_SECONDS
from reconciler.state.pg.fence import CONFIRM_SHARE, FENCE_SHARE
from tests.fixtures_postgres import PgState
from tests.support.daemon import wait_until
from tests.support.postgres import APP_USER


@pytest.fixture
def db(pg_db: Any) -> Any:
    return pg_db


def test_the_fence_is_bounded_by_the_sessions_keepalives(db: Any) -> None:
    with db.hold("app") as fence:
        assert fence.bound == KEEPALIVE_SECONDS  # idle 10 + interval 5 x count 3
        assert fence.limit == pytest.approx(FENCE_SHARE * KEEPALIVE_SECONDS)
        assert fence.every == pytest.approx(CONFIRM_SHARE * KEEPALIVE_SECONDS)
        assert not fence.is_set() and fence.lost is None


def test_a_shorter_server_timeout_shortens_the_fence(pg_state: PgState, tmp_path: Path) -> None:
    pg_state.cluster.sql(f"ALTER ROLE {APP_USER} IN DATABASE {pg_state.db} SET idle_session_timeout = '8s'")
    try:
        d = StateLocation(tmp_path, pg_state.url, pg_state.key_file).database(pool_size=2)
        try:
            with d.hold("app") as fence:
                assert fence.bound == 8.0 and fence.limit == pytest.approx(8.0 * FENCE_SHARE)
        finally:
            d.close()
    finally:
        pg_state.cluster.sql(f"ALTER ROLE {APP_USER} IN DATABASE {pg_state.db} RESET idle_session_timeout")


def test_a_session_the_server_ends_sets_the_fence_at_once(db: Any, pg_state: PgState) -> None:
    with db.hold("app") as fence:
        ended = pg_state.cluster.sql("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                                     "AND objsubid = 2 AND granted", pg_state.db)
        assert ended == [(True,)]
        started = time.monotonic()
        wait_until(fence.is_set, 2.0, "the fence to notice")
        assert time.monotonic() - started < fence.every, "before the next confirmation was due"
        assert fence.lost is not None and fence.lost.startswith("its database session failed"), fence.lost



class _Flag:
    """A stop signal that is not an Event (like a fence)."""

    def __init__(self) -> None:
        self.up = False

    def is_set(self) -> bool:
        return self.up


def test_a_fence_is_one_more_stop_signal_no_change_starts_once_any_is_set() -> None:
    fence, results = _Flag(), list[ChangeResult]()
    changes = [Change(Action.CREATE, f"K{i}") for i in range(5)]

    def one(change: Change) -> ChangeResult:
        fence.up = change.key == "K1"  # the fence closes while K1 is on the wire: K1 lands
        return ChangeResult(change, True)

    with stopping(threading.Event(), None, fence):
        apply_by_key(changes, one, results.append)
    assert [(r.change.key, r.ok) for r in results] == [("K0", True), ("K1", True), ("K2", False), ("K3", False),
                                                       ("K4", False)]
    assert {r.error for r in results if not r.ok} == {NOT_STARTED}
