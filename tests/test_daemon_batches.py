"""Issue 14 items 2 and 5 in the daemon: syncs of one target triggered together — by their
periodic checks (one phase per target) or by a spec change touching many — share one listing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import yaml

from reconciler import calls
from tests.support.cli import Workspace
from tests.support.daemon import DaemonHarness, wait_until

AWS = "aws-secrets-manager"


def _teams(ws: Workspace, n: int, value: str = "v") -> list[str]:
    names = [f"team-{i:02d}" for i in range(n)]
    ws.write_spec("teams.yaml", [ws.sync(name, secretPath=f"/t{i}",
                                         syncOptions={"keySchema": f"t{i}/{{{{secretKey}}}}"})
                                 for i, name in enumerate(names)])
    ws.secrets_file.write_text(yaml.safe_dump({"dev": {f"/t{i}": {"A": f"{value}{i}", "B": "b"} for i in range(n)}}))
    return names


def _runs(h: DaemonHarness) -> dict[str, str | None]:
    return h.on_loop(lambda: {n: r.last_run_id for n, r in h.daemon.syncs.items()})


def test_periodic_checks_of_one_target_come_due_together_and_share_a_listing(
        ws: Workspace, daemon: Callable[..., DaemonHarness]) -> None:
    names = _teams(ws, 12)
    h = daemon(workers=4, per_connection=2)
    h.wait_idle()
    due = {h.on_loop(lambda n=n: h.daemon.schedule.next_run(n)) for n in names}
    assert len(due) == 1, "one phase per destination target"
    before = _runs(h)
    calls.reset()

    fired: list[asyncio.Future[None]] = []

    def fire_all() -> None:  # the scheduler firing the jobs that came due together
        fired.extend(asyncio.ensure_future(h.daemon._due(n, "interval")) for n in names)

    h.on_loop(fire_all)
    wait_until(lambda: all(_runs(h)[n] != before[n] for n in names), 30, "every sync to run again")
    h.wait_idle()
    assert calls.by_call(AWS) == {"ListSecrets": 1}, "12 no-op checks, one listing of the account"


def test_a_change_to_many_specs_at_once_is_one_listing(ws: Workspace, daemon: Callable[..., DaemonHarness],
                                                       sm_client: Any) -> None:
    names = _teams(ws, 10)
    h = daemon(workers=4, per_connection=2)
    h.wait_idle()
    before = _runs(h)
    calls.reset()
    _teams(ws, 10, value="new")  # one save rewrites the secrets of every team: a git pull
    wait_until(lambda: all(_runs(h)[n] != before[n] for n in names), 30, "every sync to apply the change")
    h.wait_idle()
    assert sm_client.get_secret_value(SecretId="t9/A")["SecretString"] == "new9"
    assert calls.by_call(AWS).get("ListSecrets") == 1, calls.by_call(AWS)
