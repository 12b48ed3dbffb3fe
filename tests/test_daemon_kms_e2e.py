"""The whole chain with nothing faked: the KMS emulator's signed webhook reaches the
daemon's HTTP server, the daemon reads the folder through the real KMS source and writes to
moto; and the poll path, fired by hand, triggers a run only when the folder changed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reconciler.model import SecretValue
from tests.emulators.kms import KmsEmulator
from tests.fixtures_kms import KMS_CLIENT_SECRET, KMS_PROJECT, kms_workspace
from tests.support.canary import CANARIES, find_leaks, scan_tree
from tests.support.cli import Workspace
from tests.support.daemon import DaemonHarness, wait_until

C1, C2, C3 = CANARIES
P = KMS_PROJECT
CLIENT_SECRET = KMS_CLIENT_SECRET
WEBHOOK_SECRET = "kms-webhook-secret-for-daemon-tests"


@pytest.fixture
def kms(kms_emulator: KmsEmulator) -> KmsEmulator:
    return kms_emulator


@pytest.fixture
def ws(tmp_path: Path, aws_endpoint: str, kms: KmsEmulator, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.setenv("TEST_KMS_WEBHOOK_SECRET", WEBHOOK_SECRET)
    w = kms_workspace(tmp_path, aws_endpoint, kms, monkeypatch,
                      pollInterval=3600,  # the tests fire polls themselves
                      webhookSecret={"env": "TEST_KMS_WEBHOOK_SECRET"})
    w.write_spec("app.yaml", [w.sync(source="kms", projectId=P)])
    return w


def _value(sm: Any, name: str) -> str | None:
    try:
        return sm.get_secret_value(SecretId=name)["SecretString"]  # type: ignore[no-any-return]
    except sm.exceptions.ResourceNotFoundException:
        return None


def _no_leaks(h: DaemonHarness, ws: Workspace, kms: KmsEmulator) -> None:
    secrets = [*CANARIES, CLIENT_SECRET, WEBHOOK_SECRET, *kms.issued]
    assert find_leaks([h.logs.text(), *ws.outputs], secrets) == []
    assert scan_tree(ws.state, secrets) == []


def test_a_kms_webhook_reaches_the_destination_through_the_daemon(
        ws: Workspace, kms: KmsEmulator, sm_client: Any) -> None:
    kms.store.put(P, "dev", "/app", "A", C1)
    h = DaemonHarness(ws).start()
    try:
        assert _value(sm_client, "app/A") == C1, "the first reconcile read KMS"
        url = f"http://127.0.0.1:{h.daemon.server.port}/webhooks/kms/kms"
        kms.subscribe(url, SecretValue(WEBHOOK_SECRET))
        kms.put(P, "dev", "/app", "A", C2)  # a user edits the secret; KMS sends the signed event
        assert kms.deliveries[-1] == 202
        wait_until(lambda: _value(sm_client, "app/A") == C2, 10, "the webhook's change in AWS")
        kms.put(P, "dev", "/other", "X", C3)  # a folder no sync reads: accepted, nothing runs
        assert kms.deliveries[-1] == 202
        h.wait_idle()
        assert len(h.events("reconcile.started", sync="app")) == 2
        # a forged event (wrong secret) is refused and triggers nothing
        kms.webhooks[:] = [(url, SecretValue("not-the-secret"))]
        kms.put(P, "dev", "/app", "A", C3)
        assert kms.deliveries[-1] == 401
        h.wait_idle()
        assert _value(sm_client, "app/A") == C2
        assert len(h.events("reconcile.started", sync="app")) == 2
    finally:
        assert h.stop() == 0
    _no_leaks(h, ws, kms)


def test_the_kms_poll_runs_a_sync_only_when_its_folder_changed(
        ws: Workspace, kms: KmsEmulator, sm_client: Any) -> None:
    kms.store.put(P, "dev", "/app", "A", C1)
    h = DaemonHarness(ws).start()
    try:
        (key,) = h.on_loop(lambda: list(h.daemon.polls.groups))
        wait_until(lambda: h.on_loop(lambda: key in h.daemon.polls.poller.tokens), 10, "the first poll's baseline")
        lists = kms.count("GET")
        assert h.call(h.daemon.polls.poll(key)) == [], "nothing changed: no run"
        assert kms.count("GET") == lists + 1, "a poll is one list call"
        kms.store.put(P, "dev", "/app", "A", C2)  # no webhook: only the poll can notice
        assert h.call(h.daemon.polls.poll(key)) == ["app"]
        wait_until(lambda: _value(sm_client, "app/A") == C2, 10, "the polled change in AWS")
        h.wait_idle()
        assert len(h.events("reconcile.started", sync="app")) == 2
    finally:
        assert h.stop() == 0
    _no_leaks(h, ws, kms)
    assert json.loads((ws.state / "daemon.json").read_text())["syncs"]
