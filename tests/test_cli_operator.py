"""The operator's view through the CLI against moto: plans that say where (text, Markdown),
a safe ``remove`` (shown, confirmed or ``--yes``, ``--dry-run``), and ``status DIR``."""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.canary import CANARIES
from tests.support.cli import Workspace

C1, C2, C3 = CANARIES
TARGET = "AWS Secrets Manager region us-east-1 of connection 'aws'"


@pytest.fixture
def ws(tmp_path: Path, aws_endpoint: str) -> Workspace:
    w = Workspace(tmp_path, aws_endpoint)
    w.write_spec("app.yaml", [w.sync()])
    w.set_secrets({"DB_PASSWORD": C1, "API_KEY": C2})
    return w


def _names(sm: Any) -> set[str]:
    return {s["Name"] for s in sm.list_secrets()["SecretList"]}


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@contextmanager
def _typing(answer: str) -> Iterator[None]:
    """A person at a terminal typing ``answer`` (stdin is the process's, not our code)."""
    saved = sys.stdin
    sys.stdin = _Terminal(answer + "\n")
    try:
        yield
    finally:
        sys.stdin = saved


# -- plans that say where --------------------------------------------------------------------


def test_text_plan_names_target_and_markdown_for_prs(ws: Workspace) -> None:
    r = ws.run("plan")
    assert r.out.splitlines()[0] == f"sync app → {TARGET}"
    r = ws.run("plan", "--format", "markdown", "--detailed-exitcode")
    assert r.code == 2, str(r)
    assert r.out.startswith("## reconciler plan\n")
    assert f"### `app` → {TARGET}" in r.out
    assert "| `+` | create | `app/API_KEY` | new |" in r.out
    assert "**Plan: 2 to create, 0 to update, 0 to delete.**" in r.out
    assert "\x1b" not in r.out
    assert json.loads(ws.run("plan", "--format", "json").out) == json.loads(ws.run("plan", "--json").out)
    assert json.loads(ws.run("plan", "--json").out)["syncs"][0]["target"] == TARGET
    r = ws.run("plan", "--json", "--format", "markdown")
    assert r.code == 1 and "cannot be combined" in r.err
    assert not ws.leaks()


def test_property_change_shown_by_name(ws: Workspace) -> None:
    assert ws.run("apply").code == 0
    ws.write_spec("app.yaml", [ws.sync(syncOptions={"tags": [{"key": "team", "value": "payments"}]})])
    r = ws.run("plan")
    assert "  ~ app/API_KEY (tags changed)" in r.out and "      ~ tag team" in r.out
    assert "payments" not in r.out.replace("tag team", "")


# -- safe remove -------------------------------------------------------------------------------


def test_remove_without_yes_and_no_terminal_deletes_nothing(ws: Workspace, sm_client: Any) -> None:
    assert ws.run("apply").code == 0
    r = ws.run("remove", "app")
    assert r.code == 1 and "--yes" in r.err and "nothing was deleted" in r.err, str(r)
    assert f"sync app → {TARGET}" in r.out and "- app/API_KEY (remove)" in r.out
    assert _names(sm_client) == {"app/API_KEY", "app/DB_PASSWORD"}
    assert json.loads(ws.run("status", "--json").out)["syncs"][0]["removeStatus"] is None


def test_remove_dry_run_only_shows(ws: Workspace, sm_client: Any) -> None:
    assert ws.run("apply").code == 0
    r = ws.run("remove", "app", "--dry-run", "--yes")
    assert r.code == 0 and "- app/DB_PASSWORD (remove)" in r.out and "Dry run" in r.out, str(r)
    assert _names(sm_client) == {"app/API_KEY", "app/DB_PASSWORD"}


def test_remove_asks_on_a_terminal(ws: Workspace, sm_client: Any) -> None:
    assert ws.run("apply").code == 0
    with _typing("no"):
        r = ws.run("remove", "app")
    assert r.code == 1 and "cancelled" in r.out and "Delete these 2 secret(s)" in r.out, str(r)
    assert _names(sm_client) == {"app/API_KEY", "app/DB_PASSWORD"}
    with _typing("yes"):
        r = ws.run("remove", "app")
    assert r.code == 0 and "2 deleted" in r.out, str(r)
    assert _names(sm_client) == set()
    assert not ws.leaks()


def test_remove_with_yes(ws: Workspace, sm_client: Any) -> None:
    assert ws.run("apply").code == 0
    r = ws.run("remove", "app", "--yes")
    assert r.code == 0 and "2 deleted" in r.out
    assert _names(sm_client) == set()
    r = ws.run("remove", "app")
    assert r.code == 0 and "Nothing of sync app to remove" in r.out, "nothing to delete: nothing to confirm"


# -- status DIR --------------------------------------------------------------------------------


def _status(ws: Workspace, *extra: str) -> dict[str, dict[str, Any]]:
    r = ws.run("status", str(ws.specs), "--json", *extra)
    assert r.code == 0, str(r)
    return {row["name"]: row for row in json.loads(r.out)["syncs"]}


def test_status_lists_every_sync_of_the_specs(ws: Workspace) -> None:
    ws.write_spec("more.yaml", [
        ws.sync("off", isEnabled=False, secretPath="/off", syncOptions={"keySchema": "off/{{secretKey}}"}),
        ws.sync("held", secretPath="/held", syncOptions={"keySchema": "held/{{secretKey}}"},
                reconcile={"suspend": True}),
        ws.sync("watch", secretPath="/watch", syncOptions={"keySchema": "watch/{{secretKey}}"},
                reconcile={"drift": "report"}),
    ])
    ws.write_spec("broken.yaml", [ws.sync("broken", destination="nowhere")])
    rows = _status(ws)
    assert set(rows) == {"app", "off", "held", "watch", "broken"}
    assert rows["app"]["state"] == "never run" and rows["app"]["syncStatus"] is None
    assert {"name", "syncStatus", "lastSyncMessage", "lastSyncedAt", "importStatus", "removeStatus",
            "nextRunAt", "nextAttemptAt"} <= set(rows["app"])
    assert rows["off"]["state"] == "disabled" and rows["held"]["state"] == "suspended"
    assert rows["broken"]["state"] == "invalid" and "broken.yaml" in rows["broken"]["diagnostics"][0]

    ws.set_secrets({"K": "v"}, path="/watch")
    r = ws.run("apply", "--sync", "app", "--sync", "watch")
    assert "Apply complete: 2 succeeded, 0 failed." in r.out and r.code == 1, "exit 1: a spec is invalid"
    rows = _status(ws, "--sync", "app")
    assert list(rows) == ["app"] and rows["app"]["state"] == "synced" and rows["app"]["lastSyncedAt"]

    text = ws.run("status", str(ws.specs)).out
    assert "app: synced (aws-secrets-manager), last synced" in text
    assert "broken: invalid" in text and "not run until fixed" in text
    assert "off: disabled" in text and "held: suspended" in text


def test_status_failed_and_out_of_sync(ws: Workspace, sm_client: Any) -> None:
    ws.write_spec("app.yaml", [ws.sync(reconcile={"drift": "report"})])
    assert ws.run("apply").code == 0
    sm_client.put_secret_value(SecretId="app/API_KEY", SecretString="edited out of band")
    assert ws.run("apply").code == 0
    row = _status(ws)["app"]
    assert row["state"] == "out of sync" and "drift" in row["lastSyncMessage"], row

    ws.secrets_file.write_text("dev: [not, a, mapping")
    assert ws.run("apply").code == 1
    assert _status(ws)["app"]["state"] == "failed"


def test_status_reads_a_running_daemons_plans(ws: Workspace) -> None:
    ws.state.mkdir(mode=0o700)
    (ws.state / "daemon.json").write_text(json.dumps({
        "format_version": "1", "pid": os.getpid(), "running": True,
        "syncs": {"app": {"state": "active", "nextRunAt": "2030-01-01T00:05:00Z",
                          "nextAttemptAt": "2030-01-01T00:00:30Z", "lastResult": "failure",
                          "lastRunAt": "2030-01-01T00:00:00Z"}},
    }))
    row = _status(ws)["app"]
    assert row["nextRunAt"] == "2030-01-01T00:05:00Z" and row["nextAttemptAt"] == "2030-01-01T00:00:30Z"
    assert row["state"] == "failed" and row["daemon"] is True
    text = ws.run("status", str(ws.specs)).out
    assert "next run: 2030-01-01T00:05:00Z" in text and "next retry: 2030-01-01T00:00:30Z" in text


def test_status_unknown_sync_and_plain_status_unchanged(ws: Workspace) -> None:
    r = ws.run("status", str(ws.specs), "--sync", "nope")
    assert r.code == 1 and "no sync named 'nope'" in r.err
    assert r.out == "", "an unknown name selects nothing; it listed every sync (no name left meant all)"
    r = ws.run("status", "--sync", "app")
    assert r.code == 1 and "needs the spec directory" in r.err
    assert ws.run("status").out == "No syncs have run yet.\n"


def test_a_sync_named_twice_runs_once(ws: Workspace) -> None:
    """`--sync app --sync app` (a script joining two lists) applied and counted it twice."""
    r = ws.run("apply", "--sync", "app", "--sync", "app")
    assert r.code == 0 and r.out.count("app: 2 created") == 1, str(r)
    assert "Apply complete: 1 succeeded, 0 failed." in r.out
    r = ws.run("plan", "--sync", "app", "--sync", "app")
    assert r.code == 0 and r.out.count("sync app ") == 1, str(r)
