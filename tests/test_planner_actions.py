"""The explicit actions: import (upstream ``$importSecrets``) and remove-secrets."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest

from reconciler.changes import Action
from reconciler.model import Lifecycle, SecretValue, SourceSecret
from reconciler.planning.planner import PlanOptions, plan_import, plan_remove
from tests.support.simulate import FINGERPRINT, by_key, fp, recorded, seen, want


def src(key: str, value: str, comment: str = "", **metadata: str) -> SourceSecret:
    return SourceSecret(key, SecretValue(value), comment, MappingProxyType(metadata))


def dest(**values: str) -> dict[str, SecretValue]:
    return {k: SecretValue(v) for k, v in values.items()}


# -- import -------------------------------------------------------------------------------------


def test_import_keys_missing_in_source() -> None:
    source = by_key(src("A", "a"))
    changes, merged = plan_import(source, dest(B="b", A="a"), FINGERPRINT, "source")
    (c,) = changes
    assert (c.action, c.key, c.reason) == (Action.IMPORT, "B", "only at destination")
    assert c.value == SecretValue("b") and c.fingerprint == fp("b")
    assert merged["B"] == SourceSecret("B", SecretValue("b"))
    assert merged["A"] is source["A"]


def test_import_missing_key_even_when_empty() -> None:
    changes, merged = plan_import({}, dest(E=""), FINGERPRINT, "destination")
    assert [c.key for c in changes] == ["E"] and merged["E"].value.is_empty()


@pytest.mark.parametrize("priority", ["source", "import-prioritize-source"])
def test_conflict_source_wins(priority: str) -> None:
    source = by_key(src("A", "mine"))
    changes, merged = plan_import(source, dest(A="theirs"), FINGERPRINT, priority)
    assert changes == () and merged == source


@pytest.mark.parametrize("priority", ["destination", "import-prioritize-destination"])
def test_conflict_destination_wins_keeps_comment_and_metadata(priority: str) -> None:
    source = by_key(src("A", "mine", "a comment", owner="team-a"))
    changes, merged = plan_import(source, dest(A="theirs"), FINGERPRINT, priority)
    (c,) = changes
    assert (c.action, c.reason, c.value) == (Action.IMPORT, "destination wins", SecretValue("theirs"))
    assert merged["A"].value == SecretValue("theirs")
    assert merged["A"].comment == "a comment" and dict(merged["A"].metadata) == {"owner": "team-a"}


def test_empty_destination_value_never_overwrites_source() -> None:
    source = by_key(src("A", "mine"))
    changes, merged = plan_import(source, dest(A=""), FINGERPRINT, "destination")
    assert changes == () and merged["A"].value == SecretValue("mine")


def test_equal_values_are_not_imported() -> None:
    changes, _ = plan_import(by_key(src("A", "same")), dest(A="same"), FINGERPRINT, "destination")
    assert changes == ()


def test_import_is_sorted_and_does_not_mutate_input() -> None:
    source = by_key(src("M", "m"))
    before = dict(source)
    changes, merged = plan_import(source, dest(Z="z", B="b", M="other"), FINGERPRINT, "destination")
    assert [c.key for c in changes] == ["B", "M", "Z"]
    assert source == before and set(merged) == {"B", "M", "Z"}


def test_unknown_priority_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="priority"):
        plan_import({}, {}, FINGERPRINT, "overwrite-destination")


# -- remove -------------------------------------------------------------------------------------


def opts(**kw: Any) -> PlanOptions:
    base: dict[str, Any] = {
        "sync": "s",
        "destination": "d",
        "key_schema": "APP_{{secretKey}}",
        "environment": "dev",
    }
    base.update(kw)
    return PlanOptions(**base)


def test_remove_deletes_what_the_sync_maps_to() -> None:
    desired = by_key(want("APP_A"), want("APP_B"), want("APP_C"), want("APP_D"), want("OUT"))
    observed = by_key(
        seen("APP_A"),
        seen("APP_B", lifecycle=Lifecycle.PENDING_DELETION),
        seen("APP_C", lifecycle=Lifecycle.DISABLED),
        seen("APP_X"),
        seen("OUT"),
    )
    p = plan_remove(desired, observed, opts())
    assert [(c.action, c.key, c.reason, c.value) for c in p.changes] == [
        (Action.DELETE, "APP_A", "remove", None)
    ]
    (issue,) = p.issues
    assert issue.key == "APP_C" and issue.severity == "warning"
    assert p.unchanged == 0 and (p.sync, p.destination) == ("s", "d")


def test_remove_ignores_deletion_guards() -> None:
    desired = by_key(want("APP_A"), want("APP_B"))
    observed = by_key(seen("APP_A"), seen("APP_B"))
    p = plan_remove(desired, observed, opts(disable_deletion=True, max_deletes=(0, False), source_empty=True))
    assert [c.key for c in p.changes] == ["APP_A", "APP_B"] and p.issues == ()


def test_remove_labels_unowned_only_with_an_inventory() -> None:
    desired = by_key(want("APP_A"), want("APP_B"))
    observed = by_key(seen("APP_A", owner=None), seen("APP_B", owner=None))
    assert not any(c.unowned for c in plan_remove(desired, observed, opts()).changes)
    labelled = plan_remove(desired, observed, opts(), inventory=by_key(recorded("APP_A")))
    assert {c.key: c.unowned for c in labelled.changes} == {"APP_A": False, "APP_B": True}
