"""Plan rendering: golden text (plain and coloured), the pinned JSON shape, and no leaks."""

from __future__ import annotations

import dataclasses
import json
from types import MappingProxyType

from reconciler.changes import Action, Change, Plan, PlanIssue
from reconciler.model import Lifecycle, SecretValue, SourceSecret
from reconciler.planning.planner import PlanOptions, plan, plan_import
from reconciler.planning.render import PlanError, render_json, render_text
from tests.support.canary import CANARIES, find_leaks
from tests.support.simulate import FINGERPRINT, by_key, fp, recorded, seen, want


def _v(text: str) -> SecretValue:
    return SecretValue(text)


PAYMENTS = Plan(
    sync="payments",
    destination="aws-secrets-manager",
    changes=(
        Change(Action.UPDATE, "API_KEY", "value changed", _v("s3cret"), fp("s3cret")),
        Change(Action.CREATE, "DB_URL", "new", _v("postgres://x"), fp("postgres://x")),
        Change(Action.DELETE, "OLD", "not in source", unowned=True),
        Change(Action.RESTORE, "PEND", "scheduled for deletion"),
        Change(Action.UPDATE, "PEND", "value unknown", _v("p"), fp("p")),
        Change(
            Action.UPDATE,
            "TAGGED",
            "tags changed",
            _v("t"),
            fp("t"),
            value_changed=False,
            set_properties=MappingProxyType({"tag:team": "payments"}),
        ),
    ),
    drift=(Change(Action.UPDATE, "EDITED", "changed outside reconciler", _v("e"), fp("e"), drift=True),),
    issues=(PlanIssue("disabled at destination; left alone", key="DIS", severity="warning"),),
    unchanged=4,
)
CLEAN = Plan(sync="billing", destination="windmill", unchanged=2)
BROKEN = PlanError("legacy", "oci-vault", "source unreadable: connection refused")

GOLDEN = """\
sync payments → aws-secrets-manager
  ~ API_KEY (value changed)
  + DB_URL
  - OLD [not created by reconciler]
  ^ PEND (restore: scheduled for deletion)
  ~ PEND (value unknown)
  ~ TAGGED (tags changed)
  Drift (not corrected, drift: report):
    ~ EDITED (changed outside reconciler)
  ! warning: DIS: disabled at destination; left alone
Plan: 1 to create, 3 to update, 1 to delete, 1 to restore.

sync billing → windmill
No changes. billing is up to date.

sync legacy → oci-vault
  ! error: source unreadable: connection refused
Error: legacy could not be planned.

Total: 1 to create, 3 to update, 1 to delete, 1 to restore in 3 syncs (1 could not be planned).
"""


def test_golden_text() -> None:
    assert render_text([PAYMENTS, CLEAN, BROKEN], color=False) == GOLDEN


def test_single_sync_has_no_total() -> None:
    text = render_text([CLEAN], color=False)
    assert text == "sync billing → windmill\nNo changes. billing is up to date.\n"
    assert render_text([], color=False) == ""


def test_plain_text_has_no_escape_codes() -> None:
    assert "\x1b" not in render_text([PAYMENTS, CLEAN, BROKEN], color=False)


def test_golden_colour() -> None:
    p = Plan(
        "s",
        "d",
        changes=(
            Change(Action.CREATE, "A", "new", _v("a")),
            Change(Action.DELETE, "B", "not in source"),
            Change(Action.RESTORE, "C", "scheduled for deletion"),
            Change(Action.UPDATE, "C", "value unknown", _v("c")),
        ),
        issues=(PlanIssue("boom"),),
    )
    assert render_text([p], color=True) == (
        "\x1b[1msync s → d\x1b[0m\n"
        "  \x1b[32m+\x1b[0m A\n"
        "  \x1b[31m-\x1b[0m B\n"
        "  \x1b[36m^\x1b[0m C (restore: scheduled for deletion)\n"
        "  \x1b[33m~\x1b[0m C (value unknown)\n"
        "  \x1b[31m!\x1b[0m \x1b[31merror\x1b[0m: boom\n"
        "Plan: 1 to create, 1 to update, 1 to delete, 1 to restore.\n"
    )


def test_non_default_reasons_are_shown() -> None:
    p = Plan(
        "s",
        "d",
        changes=(
            Change(Action.CREATE, "A", "deleted outside reconciler", _v("a"), drift=True),
            Change(Action.DELETE, "B", "empty in source"),
            Change(Action.IMPORT, "C", "only at destination", _v("c")),
        ),
    )
    lines = render_text([p], color=False).splitlines()
    assert lines[1:] == [
        "  + A (deleted outside reconciler)",
        "  - B (empty in source)",
        "  < C (import into source: only at destination)",
        "Plan: 1 to create, 0 to update, 1 to delete, 1 to import.",
    ]


def test_no_changes_but_drift_or_errors_is_not_up_to_date() -> None:
    drift_only = Plan("s", "d", drift=(Change(Action.UPDATE, "A", "changed outside reconciler", drift=True),))
    assert render_text([drift_only], color=False).splitlines()[-1] == (
        "No changes. s is not up to date: 1 drifted key not corrected."
    )
    blocked = Plan("s", "d", issues=(PlanIssue("x"), PlanIssue("y"), PlanIssue("z", severity="warning")))
    assert (
        render_text([blocked], color=False).splitlines()[-1] == "No changes. s is not up to date: 2 errors."
    )


def test_control_characters_in_keys_are_escaped() -> None:
    """Destination keys are someone else's text: no terminal escapes, no forged lines."""
    p = Plan("s", "d", changes=(Change(Action.DELETE, "A\x1b[2JB\nPlan: 0 to create", "not in source"),))
    text = render_text([p], color=False)
    assert "\x1b" not in text
    assert "  - A\\x1b[2JB\\x0aPlan: 0 to create" in text.splitlines()


# -- JSON ----------------------------------------------------------------------------------------


def test_json_pinned_shape() -> None:
    doc = render_json([PAYMENTS, BROKEN])
    assert doc["format_version"] == "1"
    first, broken = doc["syncs"]
    assert {"name", "destination", "error", "changes", "summary"} <= set(first)
    assert first["name"] == "payments" and first["destination"] == "aws-secrets-manager"
    assert first["error"] is None
    assert [(c["action"], c["key"], c["reason"]) for c in first["changes"]] == [
        ("update", "API_KEY", "value changed"),
        ("create", "DB_URL", "new"),
        ("delete", "OLD", "not in source"),
        ("restore", "PEND", "scheduled for deletion"),
        ("update", "PEND", "value unknown"),
        ("update", "TAGGED", "tags changed"),
    ]
    assert first["summary"] == {
        "create": 1,
        "update": 3,
        "delete": 1,
        "unchanged": 4,
        "restore": 1,
        "import": 0,
    }
    assert broken == {
        "name": "legacy",
        "destination": "oci-vault",
        "error": "source unreadable: connection refused",
        "changes": [],
        "summary": {"create": 0, "update": 0, "delete": 0, "unchanged": 0, "restore": 0, "import": 0},
        "drift": [],
        "issues": [],
    }
    json.dumps(doc)  # serialisable as is


def test_json_extras() -> None:
    first = render_json([PAYMENTS])["syncs"][0]
    old = first["changes"][2]
    assert old == {
        "action": "delete",
        "key": "OLD",
        "reason": "not in source",
        "unowned": True,
        "drift": False,
        "value_changed": False,
        "properties": [],
    }
    tagged = first["changes"][5]
    assert tagged["value_changed"] is False and tagged["properties"] == ["tag:team"]
    assert first["drift"] == [
        {
            "action": "update",
            "key": "EDITED",
            "reason": "changed outside reconciler",
            "unowned": False,
            "drift": True,
            "value_changed": True,
            "properties": [],
        }
    ]
    assert first["issues"] == [
        {"severity": "warning", "key": "DIS", "message": "disabled at destination; left alone"}
    ]


# -- canaries ------------------------------------------------------------------------------------


def _canary_plans() -> list[Plan | PlanError]:
    c1, c2, c3 = CANARIES
    options = PlanOptions(
        "canary",
        "aws-secrets-manager",
        "APP_{{secretKey}}",
        "dev",
        max_deletes=(100, True),
        max_value_bytes=40,
    )
    desired = by_key(
        want("APP_NEW", c1, {"tag:note": c2}),
        want("APP_CHANGED", c2, {"kms": c3}),
        want("APP_DRIFT", c3),
        want("APP_PENDING", c1),
        want("APP_HUGE", c1 * 3),
    )
    observed = by_key(
        seen("APP_CHANGED", c1, props={"tag:old": c3}),
        seen("APP_DRIFT", c1),
        seen("APP_PENDING", c2, lifecycle=Lifecycle.PENDING_DELETION),
        seen("APP_GONE", c3, owner=None),
    )
    inventory = by_key(recorded("APP_DRIFT", c3), recorded("APP_CHANGED", c2, props={"tag:old": c3}))
    planned = plan(desired, observed, inventory, options)
    report = plan(desired, observed, inventory, dataclasses.replace(options, drift="report"))
    source = {"A": SourceSecret("A", SecretValue(c1))}
    imports, _ = plan_import(source, {"A": SecretValue(c2), "B": SecretValue(c3)}, FINGERPRINT, "destination")
    with_imports = Plan("canary-import", "windmill", changes=imports)
    assert planned.changes and report.drift and imports  # the test has something to leak
    assert any(c.value is not None and c.value.reveal() in CANARIES for c in planned.changes)
    return [planned, report, with_imports, PlanError("x", "y", "destination unreachable")]


def test_renderers_never_print_a_canary() -> None:
    plans = _canary_plans()
    outputs = [
        render_text(plans, color=False),
        render_text(plans, color=True),
        json.dumps(render_json(plans)),
        repr(render_json(plans)),
    ]
    assert find_leaks(outputs) == []


def test_renderers_never_print_a_fingerprint() -> None:
    plans = _canary_plans()
    fingerprints = {fp(c) for c in CANARIES} | {fp(c * 3) for c in CANARIES}
    for out in (render_text(plans, color=False), json.dumps(render_json(plans))):
        assert not any(f in out for f in fingerprints)
