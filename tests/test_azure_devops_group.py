"""The one body a write sends: merge, never clobber (pure)."""

from __future__ import annotations

from reconciler.destinations.azure_devops.group import Group, body, merged, project_ref
from reconciler.model import SecretValue

LISTED = {
    "id": 7, "name": "prod", "type": "Vsts", "description": "d", "modifiedOn": "2026-01-01T00:00:00.0000001Z",
    "modifiedBy": {"id": "me", "displayName": "reconciler"},
    "variables": {"OURS": {"value": None, "isSecret": True}, "THEIRS": {"value": None, "isSecret": True},
                  "LOG_LEVEL": {"value": "info"}, "LOCKED": {"value": "x", "isReadOnly": True},
                  "Old_Case": {"value": None, "isSecret": True}},
    "variableGroupProjectReferences": [{"name": "prod", "projectReference": {"id": "p1", "name": "P1"}},
                                       {"name": "prod", "projectReference": {"id": "p2", "name": "P2"}}],
}


def test_parse_reads_what_a_write_must_send_back() -> None:
    g = Group.parse(LISTED)
    assert g.id == 7 and g.version == "2026-01-01T00:00:00.0000001Z|me"
    assert g.variables["LOG_LEVEL"].value == "info" and not g.variables["LOG_LEVEL"].secret
    assert g.variables["OURS"].secret and g.variables["OURS"].value is None
    assert len(g.project_refs) == 2


def test_merge_resends_everything_else_untouched() -> None:
    g = Group.parse(LISTED)
    out = merged(g, {"NEW": SecretValue("n"), "old_case": SecretValue("c")}, ["OURS"])
    assert out == {
        "THEIRS": {"isSecret": True},            # someone else's secret: no value key, kept
        "LOG_LEVEL": {"value": "info"},          # non-secret: as it is
        "LOCKED": {"value": "x", "isReadOnly": True},
        "NEW": {"value": "n", "isSecret": True},
        "old_case": {"value": "c", "isSecret": True},  # replaces Old_Case (names fold)
    }


def test_a_new_group_body_carries_its_project() -> None:
    ref = project_ref("prod", "by reconciler", "p1", None)
    b = body("prod", "by reconciler", merged(None, {"A": SecretValue("1")}, []), [ref])
    assert b["variableGroupProjectReferences"] == [{"name": "prod", "description": "by reconciler",
                                                    "projectReference": {"id": "p1", "name": "p1"}}]
    assert b["variables"] == {"A": {"value": "1", "isSecret": True}} and b["type"] == "Vsts"
