"""Deletion guards: source-empty refusal, the default "never empty the scope" rule, maxDeletes."""

from __future__ import annotations

import math
from typing import Any

import pytest

from reconciler.changes import Action, Plan
from reconciler.model import Lifecycle
from reconciler.planning.guards import delete_limit
from reconciler.planning.planner import PlanOptions, plan
from tests.support.simulate import by_key, recorded, seen, want


def opts(**kw: Any) -> PlanOptions:
    base: dict[str, Any] = {"sync": "s", "destination": "d", "key_schema": None, "environment": "dev"}
    base.update(kw)
    return PlanOptions(**base)


def deletes(p: Plan) -> list[str]:
    return [c.key for c in p.changes if c.action is Action.DELETE]


FOUR = by_key(seen("A"), seen("B"), seen("C"), seen("D"))


@pytest.mark.parametrize(
    ("max_deletes", "n_scope", "expected"),
    [
        (None, 4, None),
        ((2, False), 4, 2),
        ((2.9, False), 4, 2),
        ((25, True), 4, 1),
        ((25, True), 3, 0),  # rounds down
        ((100, True), 7, 7),
        ((200, True), 7, 7),
        ((0, True), 7, 0),
        ((-1, False), 7, 0),
        ((math.nan, True), 7, 0),
        ((math.inf, False), 7, 0),
    ],
)
def test_delete_limit(max_deletes: tuple[float, bool] | None, n_scope: int, expected: int | None) -> None:
    assert delete_limit(max_deletes, n_scope) == expected


def test_source_empty_with_inventory_never_deletes() -> None:
    p = plan({}, FOUR, by_key(recorded("A"), recorded("B")), opts(source_empty=True, max_deletes=(100, True)))
    assert p.changes == ()
    (issue,) = p.issues
    assert issue.severity == "error" and issue.key is None
    assert "source returned no secrets but 2 keys were synced before" in issue.message
    assert "4 keys" in issue.message


def test_source_empty_without_inventory_falls_back_to_the_limit() -> None:
    assert deletes(plan({}, FOUR, {}, opts(source_empty=True, max_deletes=(100, True)))) == [
        "A",
        "B",
        "C",
        "D",
    ]
    p = plan({}, FOUR, {}, opts(source_empty=True))
    assert p.changes == () and len(p.errors) == 1 and "refusing to delete all 4" in p.errors[0].message


def test_default_refuses_to_empty_the_scope() -> None:
    p = plan({}, FOUR, by_key(recorded("A")), opts())
    assert p.changes == ()
    (issue,) = p.errors
    assert "all 4 in-scope keys" in issue.message and "100%" in issue.message


def test_default_allows_replacing_keys_while_creating() -> None:
    """The default guard only stops an apply that would leave the scope empty: replacing a
    stray while creating keys is a normal first sync (issue 9)."""
    p = plan(by_key(want("X"), want("Y")), by_key(seen("A"), seen("B")), {}, opts())
    assert sorted((c.action.value, c.key) for c in p.changes) == [
        ("create", "X"), ("create", "Y"), ("delete", "A"), ("delete", "B")]
    assert p.errors == ()


def test_max_deletes_percentage_counts_the_keys_after_the_creates() -> None:
    """25% of (4 present + 4 created) allows 2 deletes; of the 4 present alone it would be 1."""
    p = plan(by_key(want("C"), want("D"), *(want(f"N{i}") for i in range(4))), FOUR, {},
             opts(max_deletes=(25, True)))
    assert deletes(p) == ["A", "B"] and p.errors == ()


def test_default_allows_partial_deletes() -> None:
    p = plan(by_key(want("D")), FOUR, {}, opts())
    assert deletes(p) == ["A", "B", "C"] and p.issues == () and p.unchanged == 1


def test_default_single_key_scope_needs_explicit_permission() -> None:
    assert plan({}, by_key(seen("A")), {}, opts()).errors
    assert deletes(plan({}, by_key(seen("A")), {}, opts(max_deletes=(100, True)))) == ["A"]


def test_hundred_percent_allows_emptying() -> None:
    assert deletes(plan({}, FOUR, {}, opts(max_deletes=(100, True)))) == ["A", "B", "C", "D"]


def test_count_limit_is_all_or_nothing() -> None:
    ok = plan(by_key(want("C"), want("D")), FOUR, {}, opts(max_deletes=(2, False)))
    assert deletes(ok) == ["A", "B"] and ok.issues == ()
    over = plan(by_key(want("D")), FOUR, {}, opts(max_deletes=(2, False)))
    assert deletes(over) == []
    (issue,) = over.errors
    assert "3 deletes exceed maxDeletes" in issue.message and "limit is 2 of 4 in-scope keys" in issue.message


def test_percent_limit_counts_active_in_scope_keys_only() -> None:
    observed = {
        **FOUR,
        **by_key(seen("P", lifecycle=Lifecycle.PENDING_DELETION)),
        **by_key(seen("OUT")),
    }
    o = opts(
        key_schema="{{secretKey}}", exact_scope=frozenset({"A", "B", "C", "D", "P"}), max_deletes=(50, True)
    )
    ok = plan(by_key(want("C"), want("D")), observed, {}, o)
    assert deletes(ok) == ["A", "B"]
    over = plan(by_key(want("D")), observed, {}, o)
    assert deletes(over) == [] and "limit is 2 of 4" in over.errors[0].message


def test_refused_deletes_leave_other_changes() -> None:
    p = plan(by_key(want("D", "v2")), FOUR, {}, opts(max_deletes=(1, False)))
    assert [(c.action.value, c.key) for c in p.changes] == [("update", "D")]
    assert len(p.errors) == 1


def test_no_error_when_nothing_would_be_deleted() -> None:
    assert plan({}, {}, by_key(recorded("A")), opts(source_empty=True)).issues == ()
    assert plan(by_key(want("A")), by_key(seen("A")), {}, opts(max_deletes=(0, False))).issues == ()


def test_disable_deletion_silences_the_guards() -> None:
    p = plan({}, FOUR, by_key(recorded("A")), opts(source_empty=True, disable_deletion=True))
    assert p.changes == () and p.issues == ()


def test_singular_wording() -> None:
    p = plan({}, by_key(seen("A"), seen("B")), by_key(recorded("A")), opts(source_empty=True))
    assert "1 key was synced before" in p.errors[0].message
