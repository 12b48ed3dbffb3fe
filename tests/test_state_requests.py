"""Runs asked of a sync's owner (``reconciler_requests``), against a real PostgreSQL: duplicates
coalesce, each request is claimed by exactly one replica (even when they race), a request
claimed by a replica that died is claimable again, and finished rows are collected."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from reconciler.state.pg import members, requests


@pytest.fixture
def db(pg_db: Any) -> Any:
    return pg_db


def test_duplicate_requests_for_one_sync_coalesce(db: Any) -> None:
    first = requests.ask(db, "app", "webhook", "r2", waited=False)
    again = requests.ask(db, "app", "webhook", "r3", waited=False)
    asked = requests.ask(db, "app", "trigger", "r3", waited=True)
    other = requests.ask(db, "web", "webhook", "r2", waited=False)
    assert first == again == asked != other
    got = requests.claim(db, "r1", ["app"])
    assert [(r.id, r.sync, r.waited) for r in got] == [(first, "app", True)], "someone waits: not dropped"
    # claimed: a new request for the sync is a new row (it must see a run that starts after it)
    assert requests.ask(db, "app", "webhook", "r2", waited=False) not in (first, other)


def test_each_request_is_claimed_by_exactly_one_replica_even_when_they_race(db: Any) -> None:
    ids = {requests.ask(db, f"s{i}", "webhook", "r9", waited=i % 2 == 0) for i in range(40)}
    syncs = [f"s{i}" for i in range(40)]
    for i in range(6):  # claimers are live replicas (a dead one's claims are claimable again)
        members.heartbeat(db, f"r{i}", 30.0, 0)
    got: dict[str, list[int]] = {}
    start = threading.Barrier(4)

    def take(replica: str) -> None:
        start.wait()
        got[replica] = [r.id for r in requests.claim(db, replica, syncs)]

    threads = [threading.Thread(target=take, args=(f"r{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    taken = [i for claimed in got.values() for i in claimed]
    assert sorted(taken) == sorted(ids), "every request claimed, none twice"
    assert requests.claim(db, "r5", syncs) == []
    with db.connection() as conn:  # the webhooks' rows are gone; the triggers' wait for a result
        assert conn.execute("SELECT count(*), bool_and(waited) FROM reconciler_requests").fetchone() == (20, True)


def test_only_the_syncs_asked_for_are_claimed(db: Any) -> None:
    members.heartbeat(db, "r1", 30.0, 0)
    requests.ask(db, "mine", "webhook", "r2", waited=False)
    requests.ask(db, "theirs", "webhook", "r2", waited=False)
    assert sorted(requests.claimable(db)) == ["mine", "theirs"]
    assert [r.sync for r in requests.claim(db, "r1", ["mine"])] == ["mine"]
    assert requests.claimable(db) == ["theirs"]


def test_a_request_claimed_by_a_replica_that_died_is_claimable_again(db: Any) -> None:
    members.heartbeat(db, "alive", 30.0, 0)
    rid = requests.ask(db, "app", "trigger", "r2", waited=True)
    assert [r.id for r in requests.claim(db, "alive", ["app"])] == [rid]
    assert requests.claimable(db) == [], "its claimer is alive"
    with db.connection() as conn:  # the claimer stops beating: gone after two thirds of its lease
        conn.execute("UPDATE reconciler_replicas SET heartbeat_at = now() - interval '21 seconds'")
    assert requests.claimable(db) == ["app"]
    assert [r.id for r in requests.claim(db, "next", ["app"])] == [rid]
    answer = requests.get(db, rid)
    assert answer is not None and answer.state == "running" and answer.claimed_by == "next"


def test_a_receiver_takes_its_own_request_only_while_nobody_has(db: Any) -> None:
    members.heartbeat(db, "r2", 30.0, 0)
    rid = requests.ask(db, "app", "trigger", "r2", waited=True)
    assert requests.claim_one(db, rid, "r2")
    assert not requests.claim_one(db, rid, "r3")
    assert requests.claim(db, "r1", ["app"]) == []


def test_a_finished_request_answers_with_its_lines_and_is_collected(db: Any) -> None:
    members.heartbeat(db, "r1", 30.0, 0)
    rid = requests.ask(db, "app", "trigger", "r2", waited=True)
    requests.claim(db, "r1", ["app"])
    requests.finish(db, rid, "success", ["app: 1 created, 0 updated, 0 deleted"])
    requests.finish(db, rid, "failure", ["a second finish changes nothing"])
    answer = requests.get(db, rid)
    assert answer == requests.Answer("finished", "r1", "success", ["app: 1 created, 0 updated, 0 deleted"])
    pending = requests.ask(db, "web", "webhook", "r2", waited=False)
    assert requests.collect(db) == 0, "kept a while for its waiters"
    assert requests.collect(db, keep=0.0) == 1
    assert requests.get(db, rid) is None and requests.get(db, pending) is not None, "pending ones are kept"


def test_a_request_claimed_before_its_claimer_restarted_under_the_same_name_is_claimable_again(db: Any) -> None:
    members.heartbeat(db, "pod-0", 30.0, 0, starting=True)
    rid = requests.ask(db, "app", "trigger", "r2", waited=True)
    assert [r.id for r in requests.claim(db, "pod-0", ["app"])] == [rid]
    members.heartbeat(db, "pod-0", 30.0, 0)
    assert requests.claimable(db) == [], "the same process beats on"
    members.heartbeat(db, "pod-0", 30.0, 0, starting=True)  # kill -9, and back under the same name
    assert requests.claimable(db) == ["app"]
