"""Runs handed to a sync's owner are never lost (two daemon replicas on one real PostgreSQL,
moto for AWS): a request whose wake-up nobody heard is run at the owner's next heartbeat, a
webhook handed over while the owner's listener is down is still run, and a trigger whose
owner never claims it, or dies before claiming it, still gets its caller a result."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.state.location import StateLocation
from reconciler.state.pg import members
from tests.fixtures_postgres import PgState
from tests.support.canary import CANARIES, find_leaks
from tests.support.cli import Workspace
from tests.support.daemon import DaemonHarness, wait_until
from tests.support.postgres import APP_USER
from tests.test_daemon_replicas import LEASE, SYNCS, _members, _runs, _specs

NAMES = ["r1", "r2"]


@pytest.fixture
def pair(tmp_path: Path, aws_endpoint: str, pg_state: PgState) -> Iterator[list[DaemonHarness]]:
    ws = Workspace(tmp_path, aws_endpoint)
    _specs(ws)
    loc = StateLocation(ws.state, pg_state.url, pg_state.key_file)
    started = [DaemonHarness(ws, state=loc, replica=n, lease_seconds=LEASE, state_dir=tmp_path / f"local-{n}").start()
               for n in NAMES]
    wait_until(lambda: all(_members(h) == NAMES for h in started), 3 * LEASE, "both replicas to see each other")
    for h in started:
        h.wait_idle()
    yield started
    for h in started:
        if h._thread.is_alive():
            assert h.stop() == 0
        assert h.leaks() == []


def _rows(pg: PgState) -> list[tuple[object, ...]]:
    return pg.cluster.sql("SELECT sync, state FROM reconciler_requests ORDER BY id", pg.db)


def test_a_request_whose_wake_up_was_missed_is_run_at_the_owners_next_heartbeat(
        pair: list[DaemonHarness], pg_state: PgState) -> None:
    sync = next(s for s in SYNCS if members.owner(s, NAMES) == "r1")
    before = _runs(pair[0]).get(sync, 0)
    # a request row with no NOTIFY: what a wake-up sent while the owner was not listening leaves
    pg_state.cluster.sql("INSERT INTO reconciler_requests (sync, reason, sender, waited) "  # noqa: S608
                         f"VALUES ('{sync}', 'webhook', 'gone-replica', false)", pg_state.db)
    wait_until(lambda: _runs(pair[0]).get(sync, 0) > before, 2 * LEASE, "the owner to run it")
    assert _rows(pg_state) == [], "claimed and gone"


def test_a_webhook_handed_over_while_the_owners_listener_is_down_is_still_run(
        pair: list[DaemonHarness], pg_state: PgState) -> None:
    owner, receiver = pair
    sync = next(s for s in SYNCS if members.owner(s, NAMES) == "r1")
    before = [_runs(h).get(sync, 0) for h in pair]
    ended = pg_state.cluster.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                                 "application_name = 'r1' AND query LIKE 'LISTEN%'", pg_state.db)
    assert ended == [(True,)], "the owner's listening session"
    receiver.on_loop(lambda: receiver.daemon.trigger(sync, "webhook"))
    wait_until(lambda: _runs(owner).get(sync, 0) > before[0], 2 * LEASE, "the owner to run it")
    receiver.wait_idle()
    assert _runs(receiver).get(sync, 0) == before[1]


def _trigger(h: DaemonHarness, sync: str) -> dict[str, Any]:
    code, body, _ = h.http("POST", f"/syncs/{sync}/trigger")
    assert code == 202, body
    run = json.loads(body)["run"]
    code, body, _ = h.http("GET", f"/runs/{run}?wait=8")
    assert code == 200, body
    answer: dict[str, Any] = json.loads(body)
    return answer


def _said(pair: list[DaemonHarness], event: str, sync: str) -> list[str]:
    """The replicas that logged ``event`` about ``sync`` (in-process daemons share one log)."""
    seen = {json.dumps(e, sort_keys=True): e for h in pair for e in h.events(event, sync=sync)}
    return sorted(str(e.get("replica")) for e in seen.values())


def _ghost(pg: PgState, name: str) -> None:
    pg.cluster.sql("INSERT INTO reconciler_replicas (id, host, pid, lease_seconds) VALUES "  # noqa: S608
                   f"('{name}', 'nowhere', 1, {LEASE}) ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()", pg.db)


def test_a_trigger_nobody_claims_is_run_by_its_receiver(pair: list[DaemonHarness], pg_state: PgState) -> None:
    """The owner is alive (it beats) but never takes the request: after 1.5 leases the receiver
    runs the sync itself, under its lock, and answers."""
    names = ["ghost", *NAMES]
    sync = next(s for s in SYNCS if members.owner(s, names) == "ghost")
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            _ghost(pg_state, "ghost")
            stop.wait(0.3)

    beating = threading.Thread(target=beat, daemon=True)
    beating.start()
    try:
        wait_until(lambda: all(_members(h) == sorted(names) for h in pair), 3 * LEASE, "the ghost to be seen")
        before = _runs(pair[0]).get(sync, 0)
        answer = _trigger(pair[0], sync)
        assert answer["state"] == "finished" and answer["result"] == "success", answer
        assert answer["lines"] == [f"{sync}: no changes"], answer
        assert _runs(pair[0]).get(sync, 0) == before + 1, "the receiver ran it"
        assert _said(pair, "fleet.unclaimed", sync) == ["r1"]
    finally:
        stop.set()
        beating.join()


def test_a_trigger_whose_owner_died_before_claiming_it_is_run_by_the_next_owner(
        pair: list[DaemonHarness], pg_state: PgState) -> None:
    names = ["ghost", *NAMES]
    sync = next(s for s in SYNCS if members.owner(s, names) == "ghost")
    _ghost(pg_state, "ghost")  # one heartbeat, then silence: dead within two thirds of a lease
    wait_until(lambda: all(_members(h) == sorted(names) for h in pair), LEASE, "the ghost to be seen")
    heir = pair[0] if members.owner(sync, NAMES) == "r1" else pair[1]
    receiver = pair[1] if heir is pair[0] else pair[0]
    answer = _trigger(receiver, sync)
    assert answer["state"] == "finished" and answer["result"] == "success", answer
    assert _said(pair, "fleet.unclaimed", sync) == [], "the heir claimed it"
    assert _said(pair, "fleet.request_claimed", sync) == [heir.daemon.state.fleet.replica]  # type: ignore[union-attr]


def test_a_handed_over_triggers_result_carries_key_names_never_a_value(pair: list[DaemonHarness],
                                                                      pg_state: PgState, sm_client: Any) -> None:
    owner, receiver = pair
    sync = next(s for s in SYNCS if members.owner(s, NAMES) == "r1")
    owner.ws.set_secrets({"A": f"{sync}-1", "LEAKY": CANARIES[0]}, path=f"/{sync}")

    def written() -> bool:
        try:
            return bool(sm_client.get_secret_value(SecretId=f"{sync}/LEAKY")["SecretString"] == CANARIES[0])
        except sm_client.exceptions.ResourceNotFoundException:
            return False

    wait_until(written, 10, "the owner to write the change it heard")
    owner.wait_idle()
    sm_client.put_secret_value(SecretId=f"{sync}/LEAKY", SecretString="changed out of band")
    answer = _trigger(receiver, sync)
    assert answer["result"] == "success" and answer["lines"] == [f"{sync}: 0 created, 1 updated, 0 deleted"], answer
    rows = pg_state.cluster.sql("SELECT row_to_json(r)::text FROM reconciler_requests r", pg_state.db)
    assert rows and find_leaks([str(r[0]) for r in rows]) == [], "a value reached the request table"
    assert find_leaks([json.dumps(answer)]) == []


def test_a_trigger_the_database_will_not_take_is_run_by_its_receiver(pair: list[DaemonHarness],
                                                                     pg_state: PgState) -> None:
    """The request cannot be written (here: the role may no longer insert requests): the
    receiver runs the sync itself, under its lock, and answers."""
    receiver = pair[1]
    sync = next(s for s in SYNCS if members.owner(s, NAMES) == "r1")
    before = [_runs(h).get(sync, 0) for h in pair]
    pg_state.cluster.sql(f"REVOKE INSERT ON reconciler_requests FROM {APP_USER}", pg_state.db)
    try:
        answer = _trigger(receiver, sync)
    finally:
        pg_state.cluster.sql(f"GRANT INSERT ON reconciler_requests TO {APP_USER}", pg_state.db)
    assert answer["result"] == "success" and answer["lines"] == [f"{sync}: no changes"], answer
    assert [_runs(h).get(sync, 0) for h in pair] == [before[0], before[1] + 1], "the receiver ran it"
    assert _said(pair, "fleet.hand_over_failed", sync) == ["r2"]
