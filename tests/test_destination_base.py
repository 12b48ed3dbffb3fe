"""apply_by_key: bounded concurrency across keys, plan order within a key, results on the
caller's thread, and a failed step skipping the steps behind it for that key."""

from __future__ import annotations

import threading
import time

import pytest

from reconciler.changes import Action, Change, ChangeResult
from reconciler.destinations.contract import apply_by_key


def _changes() -> list[Change]:
    out = []
    for i in range(12):
        out.append(Change(Action.RESTORE, f"k{i}"))
        out.append(Change(Action.UPDATE, f"k{i}"))
    return out


@pytest.mark.parametrize("workers", [1, 4])
def test_order_within_key_and_results_on_caller_thread(workers: int) -> None:
    seen: dict[str, list[str]] = {}
    lock = threading.Lock()
    in_flight, peak = [0], [0]
    caller = threading.get_ident()
    callbacks: list[int] = []

    def one(c: Change) -> ChangeResult:
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
            seen.setdefault(c.key, []).append(c.action.value)
        time.sleep(0.005)
        with lock:
            in_flight[0] -= 1
        return ChangeResult(c, True)

    results: list[ChangeResult] = []

    def on_result(r: ChangeResult) -> None:
        callbacks.append(threading.get_ident())
        results.append(r)

    apply_by_key(_changes(), one, on_result, workers=workers)
    assert len(results) == 24
    assert all(v == ["restore", "update"] for v in seen.values())
    assert set(callbacks) == {caller}
    assert peak[0] <= workers
    if workers > 1:
        assert peak[0] > 1


def test_failed_step_skips_the_rest_of_that_key_only() -> None:
    def one(c: Change) -> ChangeResult:
        return ChangeResult(c, not (c.key == "k3" and c.action is Action.RESTORE), error="boom")

    results: list[ChangeResult] = []
    apply_by_key(_changes(), one, results.append, workers=3)
    failed = {(r.change.key, r.change.action) for r in results if not r.ok}
    assert failed == {("k3", Action.RESTORE), ("k3", Action.UPDATE)}
    skipped = next(r for r in results if r.change.key == "k3" and r.change.action is Action.UPDATE)
    assert skipped.error and "skipped" in skipped.error


def test_a_raised_destination_error_fails_that_change_only_and_keeps_retry_after() -> None:
    from reconciler.destinations.errors import Throttled, Transient

    def one(c: Change) -> ChangeResult:
        if c.key == "k1" and c.action is Action.RESTORE:
            raise Throttled("throttled", retry_after=7.0, key="k1")
        if c.key == "k2" and c.action is Action.UPDATE:
            raise Transient("dropped", key="k2")
        return ChangeResult(c, True)

    results: list[ChangeResult] = []
    apply_by_key(_changes(), one, results.append, workers=3)
    assert len(results) == 24
    failed = {(r.change.key, r.change.action): r for r in results if not r.ok}
    assert set(failed) == {("k1", Action.RESTORE), ("k1", Action.UPDATE), ("k2", Action.UPDATE)}
    assert failed[("k1", Action.RESTORE)].retry_after == 7.0
    assert failed[("k1", Action.RESTORE)].error == "k1: throttled"
    assert failed[("k2", Action.UPDATE)].retry_after is None
