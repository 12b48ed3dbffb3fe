"""The planner's rules, one example each: scope, create/update/restore, drift, properties,
lifecycles, empty and oversize values, deletes and ordering. Guards, import and remove
live in test_planner_guards.py / test_planner_actions.py."""

from __future__ import annotations

import dataclasses
from typing import Any

from reconciler.changes import Action, Change, Plan
from reconciler.model import Lifecycle
from reconciler.planning.planner import PlanOptions, in_scope, plan
from tests.support.simulate import by_key, fp, recorded, seen, want

PENDING = Lifecycle.PENDING_DELETION
DISABLED = Lifecycle.DISABLED


def opts(**kw: Any) -> PlanOptions:
    base: dict[str, Any] = {
        "sync": "s",
        "destination": "aws-secrets-manager",
        "key_schema": None,
        "environment": "dev",
        "max_deletes": (100, True),
        "destination_label": "AWS Secrets Manager",
        "property_names": {"kms": "KMS key"},
    }
    base.update(kw)
    return PlanOptions(**base)


def only(p: Plan) -> Change:
    assert len(p.changes) == 1, p.changes
    return p.changes[0]


def actions(changes: tuple[Change, ...]) -> list[tuple[str, str]]:
    return [(c.action.value, c.key) for c in changes]


# -- scope -------------------------------------------------------------------------------------


def test_in_scope_schema_and_exact() -> None:
    assert in_scope("APP_X", opts(key_schema="APP_{{secretKey}}"))
    assert not in_scope("X", opts(key_schema="APP_{{secretKey}}"))
    assert in_scope("anything", opts())
    exact = opts(key_schema="APP_{{secretKey}}", exact_scope=frozenset({"bundle"}))
    assert in_scope("bundle", exact)
    assert not in_scope("APP_X", exact)


def test_out_of_scope_keys_are_invisible() -> None:
    o = opts(key_schema="APP_{{secretKey}}")
    p = plan(by_key(want("APP_A")), by_key(seen("APP_A"), seen("OTHER"), seen("A")), {}, o)
    assert p.changes == () and p.unchanged == 1 and p.issues == ()


def test_slash_rule_protects_nested_paths() -> None:
    o = opts(key_schema="/path/{{secretKey}}")
    p = plan({}, by_key(seen("/path/A"), seen("/path/nested/A"), seen("/path/B")), {}, o)
    assert actions(p.changes) == [("delete", "/path/A"), ("delete", "/path/B")]


def test_exact_scope_many_to_one() -> None:
    o = opts(key_schema=None, exact_scope=frozenset({"bundle"}))
    p = plan(by_key(want("bundle", "{}")), by_key(seen("bundle", "old"), seen("OTHER")), {}, o)
    assert actions(p.changes) == [("update", "bundle")]


def test_desired_key_outside_scope_is_an_error_not_a_write() -> None:
    """A key we could never see again could never be updated or pruned: refuse it."""
    o = opts(key_schema="/path/{{secretKey}}")
    p = plan(by_key(want("/path/a/b"), want("/path/C")), {}, {}, o)
    assert actions(p.changes) == [("create", "/path/C")]
    (issue,) = p.issues
    assert issue.severity == "error" and issue.key == "/path/a/b" and "outside" in issue.message


# -- create -------------------------------------------------------------------------------------


def test_create_new_key() -> None:
    c = only(plan(by_key(want("A", "v1", {"tag:team": "x"})), {}, {}, opts()))
    assert (c.action, c.key, c.reason) == (Action.CREATE, "A", "new")
    assert c.value is not None and c.value.reveal() == "v1" and c.fingerprint == fp("v1")
    assert dict(c.set_properties) == {"tag:team": "x"}
    assert not c.drift and not c.unowned


def test_create_of_key_deleted_out_of_band_is_drift() -> None:
    c = only(plan(by_key(want("A")), {}, by_key(recorded("A")), opts()))
    assert c.action is Action.CREATE and c.drift and c.reason == "deleted outside reconciler"


def test_report_mode_withholds_recreate_when_source_unchanged() -> None:
    p = plan(by_key(want("A")), {}, by_key(recorded("A")), opts(drift="report"))
    assert p.changes == ()
    assert actions(p.drift) == [("create", "A")]


def test_report_mode_recreates_when_source_changed() -> None:
    p = plan(by_key(want("A", "v2")), {}, by_key(recorded("A", "v1")), opts(drift="report"))
    assert only(p).action is Action.CREATE and only(p).drift
    assert p.drift == ()


# -- update -------------------------------------------------------------------------------------


def test_in_sync_key_is_unchanged() -> None:
    p = plan(by_key(want("A")), by_key(seen("A")), by_key(recorded("A")), opts())
    assert p.changes == () and p.unchanged == 1


def test_value_changed() -> None:
    c = only(plan(by_key(want("A", "v2")), by_key(seen("A", "v1")), by_key(recorded("A", "v1")), opts()))
    assert (c.action, c.reason, c.value_changed, c.drift) == (Action.UPDATE, "value changed", True, False)
    assert c.value is not None and c.value.reveal() == "v2" and c.fingerprint == fp("v2")


def test_unknown_value_is_written() -> None:
    c = only(plan(by_key(want("A")), by_key(seen("A", None)), {}, opts()))
    assert (c.action, c.reason, c.value_changed, c.drift) == (Action.UPDATE, "value unknown", True, False)


def test_out_of_band_edit_is_drift() -> None:
    c = only(plan(by_key(want("A", "v1")), by_key(seen("A", "edited")), by_key(recorded("A", "v1")), opts()))
    assert c.drift and c.reason == "changed outside reconciler" and c.value_changed


def test_report_mode_lists_drift_without_changing() -> None:
    p = plan(
        by_key(want("A", "v1")),
        by_key(seen("A", "edited")),
        by_key(recorded("A", "v1")),
        opts(drift="report"),
    )
    assert p.changes == () and p.unchanged == 0
    (d,) = p.drift
    assert d.action is Action.UPDATE and d.drift and d.reason == "changed outside reconciler"


def test_report_mode_still_applies_source_change_over_an_edit() -> None:
    p = plan(
        by_key(want("A", "v2")),
        by_key(seen("A", "edited")),
        by_key(recorded("A", "v1")),
        opts(drift="report"),
    )
    c = only(p)
    assert c.value_changed and c.reason == "value changed" and p.drift == ()


def test_unknown_value_with_moved_version_is_drift() -> None:
    """Value unreadable, but the version marker moved since our write: evidence of an edit."""
    p = plan(
        by_key(want("A")), by_key(seen("A", None, version="2")), by_key(recorded("A", version="1")), opts()
    )
    c = only(p)
    assert c.drift and c.reason == "changed outside reconciler"


def test_unknown_value_without_evidence_is_not_drift() -> None:
    for obs_version, inv_version in [("1", "1"), (None, "1"), ("2", None)]:
        p = plan(
            by_key(want("A")),
            by_key(seen("A", None, version=obs_version)),
            by_key(recorded("A", version=inv_version)),
            opts(drift="report"),
        )
        c = only(p)
        assert not c.drift and c.reason == "value unknown" and p.drift == ()


def test_unknown_inventory_fingerprint_is_not_a_baseline() -> None:
    p = plan(
        by_key(want("A")), by_key(seen("A", "edited")), by_key(recorded("A", None)), opts(drift="report")
    )
    assert only(p).reason == "value changed" and not only(p).drift


# -- properties ---------------------------------------------------------------------------------


def test_tags_only_update_keeps_value() -> None:
    p = plan(
        by_key(want("A", props={"tag:team": "b", "tag:env": "dev"})),
        by_key(seen("A", props={"tag:team": "a", "tag:env": "dev"})),
        {},
        opts(),
    )
    c = only(p)
    assert (c.action, c.value_changed, c.reason) == (Action.UPDATE, False, "tags changed")
    assert dict(c.set_properties) == {"tag:team": "b"}
    assert c.fingerprint == fp("v1") and c.unset_properties == ()


def test_kms_key_change() -> None:
    c = only(plan(by_key(want("A", props={"kms": "k2"})), by_key(seen("A", props={"kms": "k1"})), {}, opts()))
    assert c.reason == "KMS key changed" and dict(c.set_properties) == {"kms": "k2"}


def test_value_and_properties_in_one_update() -> None:
    c = only(
        plan(
            by_key(want("A", "v2", {"kms": "k", "tag:a": "1"})),
            by_key(seen("A", "v1")),
            by_key(recorded("A", "v1")),
            opts(),
        )
    )
    assert c.reason == "value changed, KMS key and tags changed" and c.value_changed


def test_unset_only_properties_we_set_and_still_present() -> None:
    p = plan(
        by_key(want("A", props={"tag:keep": "1"})),
        by_key(seen("A", props={"tag:keep": "1", "tag:ours": "x", "tag:foreign": "y"})),
        by_key(recorded("A", props={"tag:keep": "1", "tag:ours": "x", "tag:gone": "z"})),
        opts(),
    )
    c = only(p)
    assert c.unset_properties == ("tag:ours",) and dict(c.set_properties) == {}
    assert c.reason == "tags changed" and not c.drift


def test_foreign_property_is_never_removed() -> None:
    p = plan(by_key(want("A")), by_key(seen("A", props={"tag:foreign": "y"})), {}, opts())
    assert p.changes == () and p.unchanged == 1


def test_property_edited_out_of_band_is_drift() -> None:
    args = (
        by_key(want("A", props={"tag:team": "a"})),
        by_key(seen("A", props={"tag:team": "edited"})),
        by_key(recorded("A", props={"tag:team": "a"})),
    )
    c = only(plan(*args, opts()))
    assert c.drift and c.reason == "tags changed outside reconciler" and not c.value_changed
    p = plan(*args, opts(drift="report"))
    assert p.changes == () and actions(p.drift) == [("update", "A")]


def test_report_mode_splits_source_and_drift_parts() -> None:
    """Source moved the value; someone edited a tag we set: write the value, report the tag."""
    p = plan(
        by_key(want("A", "v2", {"tag:team": "a"})),
        by_key(seen("A", "v1", props={"tag:team": "edited"})),
        by_key(recorded("A", "v1", props={"tag:team": "a"})),
        opts(drift="report"),
    )
    c = only(p)
    assert c.value_changed and dict(c.set_properties) == {} and not c.drift
    (d,) = p.drift
    assert not d.value_changed and dict(d.set_properties) == {"tag:team": "a"} and d.drift


def test_report_mode_splits_value_drift_from_source_tags() -> None:
    p = plan(
        by_key(want("A", "v1", {"tag:team": "new"})),
        by_key(seen("A", "edited", props={"tag:team": "old"})),
        by_key(recorded("A", "v1", props={"tag:team": "old"})),
        opts(drift="report"),
    )
    c = only(p)
    assert (
        not c.value_changed and dict(c.set_properties) == {"tag:team": "new"} and c.reason == "tags changed"
    )
    (d,) = p.drift
    assert d.value_changed and d.reason == "changed outside reconciler" and dict(d.set_properties) == {}


def test_correct_mode_equals_report_changes_plus_drift_keys() -> None:
    desired = by_key(want("A", "v1", {"tag:t": "1"}), want("B", "v2"), want("C"))
    observed = by_key(seen("A", "x", props={"tag:t": "0"}), seen("B", "v1"))
    inventory = by_key(recorded("A", "v1", props={"tag:t": "1"}), recorded("B", "v1"), recorded("C"))
    correct = plan(desired, observed, inventory, opts())
    report = plan(desired, observed, inventory, opts(drift="report"))
    assert {c.key for c in correct.changes} == {c.key for c in report.changes + report.drift}
    assert correct.drift == ()


# -- ownership label ----------------------------------------------------------------------------


def test_unowned_label() -> None:
    desired = by_key(want("A", "v2"), want("B", "v2"), want("C", "v2"))
    observed = by_key(
        seen("A", owner="other"),
        seen("B", owner="s"),
        seen("C", owner="other"),
        seen("D", owner=None),
        seen("E"),
    )
    p = plan(desired, observed, by_key(recorded("C")), opts())
    flags = {c.key: c.unowned for c in p.changes}
    assert flags == {"A": True, "B": False, "C": False, "D": True, "E": False}


# -- lifecycles ---------------------------------------------------------------------------------


def test_pending_deletion_is_restored_then_updated() -> None:
    p = plan(by_key(want("A")), by_key(seen("A", None, lifecycle=PENDING)), {}, opts())
    assert actions(p.changes) == [("restore", "A"), ("update", "A")]
    restore, update = p.changes
    assert restore.value is None and restore.reason == "scheduled for deletion" and not restore.drift
    assert update.reason == "value unknown (compared after restore)" and update.value_changed
    assert update.compare_first, "the restored value is compared before a new version is written"


def test_pending_with_known_equal_value_needs_only_restore() -> None:
    p = plan(by_key(want("A")), by_key(seen("A", "v1", lifecycle=PENDING)), {}, opts())
    assert actions(p.changes) == [("restore", "A")]


def test_pending_key_of_ours_was_deleted_out_of_band() -> None:
    args = (by_key(want("A")), by_key(seen("A", None, lifecycle=PENDING)), by_key(recorded("A")))
    p = plan(*args, opts())
    assert actions(p.changes) == [("restore", "A"), ("update", "A")]
    assert all(c.drift for c in p.changes) and "outside reconciler" in p.changes[0].reason
    reported = plan(*args, opts(drift="report"))
    assert reported.changes == () and actions(reported.drift) == [("restore", "A"), ("update", "A")]
    assert all(c.drift for c in reported.drift)


def test_pending_key_restored_in_report_mode_when_source_changed() -> None:
    p = plan(
        by_key(want("A", "v2")),
        by_key(seen("A", None, lifecycle=PENDING)),
        by_key(recorded("A")),
        opts(drift="report"),
    )
    assert actions(p.changes) == [("restore", "A"), ("update", "A")]


def test_pending_not_desired_is_left_to_die() -> None:
    p = plan({}, by_key(seen("A", lifecycle=PENDING), seen("B")), {}, opts())
    assert actions(p.changes) == [("delete", "B")] and p.issues == ()


def test_disabled_desired_key_is_left_alone() -> None:
    p = plan(by_key(want("A", "v2")), by_key(seen("A", lifecycle=DISABLED)), {}, opts())
    assert p.changes == () and p.unchanged == 0
    (issue,) = p.issues
    assert issue.severity == "warning" and issue.key == "A" and "disabled at destination" in issue.message


def test_disabled_undesired_key_is_not_deleted() -> None:
    p = plan(by_key(want("B")), by_key(seen("A", lifecycle=DISABLED), seen("B")), {}, opts())
    assert p.changes == () and p.unchanged == 1
    (issue,) = p.issues
    assert issue.severity == "warning" and issue.key == "A"


# -- empty and oversize values ------------------------------------------------------------------


def test_empty_value_is_absent_where_unsupported() -> None:
    p = plan(
        by_key(want("A", ""), want("B"), want("C", "")),
        by_key(seen("A"), seen("B")),
        {},
        opts(allows_empty=False),
    )
    assert actions(p.changes) == [("delete", "A")]
    assert p.changes[0].reason == "empty in source"
    warned = {i.key for i in p.issues if i.severity == "warning"}
    assert warned == {"A", "C"}
    assert all("AWS Secrets Manager cannot store an empty value" in i.message for i in p.issues)


def test_empty_value_is_stored_where_supported() -> None:
    p = plan(by_key(want("A", "")), {}, {}, opts(allows_empty=True))
    assert actions(p.changes) == [("create", "A")] and p.issues == ()


def test_oversize_value_is_an_error_and_key_is_protected() -> None:
    p = plan(
        by_key(want("A", "x" * 11), want("B", "x" * 10), want("N", "é" * 6)),
        by_key(seen("A", "old"), seen("N", "old")),
        {},
        opts(max_value_bytes=10),
    )
    assert actions(p.changes) == [("create", "B")]
    errors = {i.key: i.message for i in p.errors}
    assert set(errors) == {"A", "N"}  # 6 x 'é' is 12 UTF-8 bytes
    assert "11 bytes" in errors["A"] and "at most 10" in errors["A"]


# -- deletes and ordering -----------------------------------------------------------------------


def test_delete_not_in_source() -> None:
    p = plan(by_key(want("B")), by_key(seen("A"), seen("B")), by_key(recorded("A"), recorded("B")), opts())
    c = only(p)
    assert (c.action, c.key, c.reason, c.value, c.unowned) == (
        Action.DELETE,
        "A",
        "not in source",
        None,
        False,
    )
    assert p.unchanged == 1


def test_delete_of_foreign_key_is_labelled() -> None:
    p = plan(by_key(want("B")), by_key(seen("A", owner=None), seen("B")), {}, opts())
    assert only(p).unowned


def test_disable_deletion_keeps_keys_without_counting_them() -> None:
    p = plan(by_key(want("B")), by_key(seen("A"), seen("B")), {}, opts(disable_deletion=True))
    assert p.changes == () and p.unchanged == 1 and p.issues == ()


def test_changes_sorted_by_key_restore_first() -> None:
    desired = by_key(want("d"), want("b", "v2"), want("c"), want("a"))
    observed = by_key(seen("b", "v1"), seen("c", None, lifecycle=PENDING), seen("e"), seen("a0"))
    p = plan(desired, observed, {}, opts())
    assert actions(p.changes) == [
        ("create", "a"),
        ("delete", "a0"),
        ("update", "b"),
        ("restore", "c"),
        ("update", "c"),
        ("create", "d"),
        ("delete", "e"),
    ]


def test_plan_carries_identity_and_is_deterministic() -> None:
    desired = by_key(want("A"), want("B", "v2"))
    observed = by_key(seen("B"), seen("C"))
    o = opts(sync="payments", destination="azure-key-vault")
    first = plan(desired, observed, {}, o)
    assert (first.sync, first.destination) == ("payments", "azure-key-vault")
    assert first == plan(dict(reversed(desired.items())), dict(reversed(observed.items())), {}, o)


def test_unknown_drift_mode_corrects() -> None:
    p = plan(by_key(want("A")), by_key(seen("A", "edited")), by_key(recorded("A")), opts(drift="bogus"))
    assert only(p).drift and p.drift == ()


def test_options_are_frozen() -> None:
    o = opts()
    assert dataclasses.replace(o, drift="report").report_drift and not o.report_drift
