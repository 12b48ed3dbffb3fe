"""KMS sources under the daemon: folder polls by change token, and signed webhooks. The KMS
source is a fake here (its own tests live with it); the destination is moto."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from reconciler.daemon.changes import PollKey
from reconciler.model import Folder, SecretValue, SourceSecret
from reconciler.sources import catalog
from reconciler.sources.base import content_token
from reconciler.sources.catalog import Polling, SourceCatalog, SourceDescriptor, WebhookError, Webhooks
from reconciler.sources.webhook import sign
from reconciler.specs.loader import load
from reconciler.specs.model import Connection, CredentialRef, Location, SpecSet
from tests.support.canary import CANARIES
from tests.support.cli import Workspace
from tests.support.daemon import DaemonHarness, wait_until

HOOK_SECRET = CANARIES[2]
PROJECT = "3c90c3cc-0d44-4b50-8888-8dd25736052a"


class FakeKms:
    """Folders of secrets; counts token reads."""

    def __init__(self) -> None:
        self.folders: dict[str, dict[str, str]] = {}
        self.token_reads = 0

    def read(self, folder: Folder) -> list[SourceSecret]:
        items: dict[str, str] = {}
        for path, secrets in self.folders.items():
            under = path.startswith(folder.secret_path.rstrip("/") + "/")
            if path == folder.secret_path or (folder.recursive and under):
                items.update(secrets)
        return [SourceSecret(k, SecretValue(v)) for k, v in sorted(items.items())]


class FakeSource:
    writable = False

    def __init__(self, kms: FakeKms) -> None:
        self.kms = kms

    def read(self, folder: Folder) -> list[SourceSecret]:
        return self.kms.read(folder)

    def write(self, folder: Folder, updates: Mapping[str, SecretValue]) -> None:
        raise AssertionError("not used")

    def change_token(self, folder: Folder) -> str:
        self.kms.token_reads += 1
        return content_token(self.kms.read(folder))

    def close(self) -> None:
        return None


@pytest.fixture
def kms(monkeypatch: pytest.MonkeyPatch) -> FakeKms:
    monkeypatch.setenv("KMS_HOOK_SECRET", HOOK_SECRET)
    return FakeKms()


def fake_catalog(fake: FakeKms) -> SourceCatalog:
    """The built-in catalog with the kms source opening the fake (polls and webhooks as built)."""
    real = catalog.default().get("kms")
    assert real is not None
    return catalog.default().replace(dataclasses.replace(real, open=lambda _conn: FakeSource(fake)))


def kms_loader(root: Path) -> SpecSet:
    """The YAML specs (file-source syncs), re-pointed at a kms connection built here, so the
    test does not depend on the kms schema's details."""
    specs = load(root)
    conn = Connection(name="kms", app="kms", location=Location(root / "kms.yaml", 1),
                      settings=MappingProxyType({"pollInterval": 7,
                                                 "webhookSecret": CredentialRef("env", "KMS_HOOK_SECRET")}),
                      method="universal-auth")
    quiet = dataclasses.replace(conn, name="quiet-kms", settings=MappingProxyType({}))
    syncs = {n: dataclasses.replace(s, source="kms", project_id=PROJECT, recursive=s.name == "deep")
             for n, s in specs.syncs.items()}
    return dataclasses.replace(specs, syncs=MappingProxyType(syncs),
                               connections=MappingProxyType({**specs.connections, "kms": conn, "quiet-kms": quiet}))


@pytest.fixture
def started(tmp_path: Path, aws_endpoint: str, kms: FakeKms) -> Iterator[tuple[DaemonHarness, FakeKms, Any]]:
    import boto3

    ws = Workspace(tmp_path, aws_endpoint)
    for name, path in (("one", "/one"), ("one-b", "/one"), ("two", "/two"), ("deep", "/deep")):
        ws.write_spec(f"{name}.yaml", [ws.sync(name, secretPath=path,
                                              syncOptions={"keySchema": f"{name}/{{{{secretKey}}}}"})])
    kms.folders = {"/one": {"K": "1"}, "/two": {"K": "2"}, "/deep/x": {"K": "d"}}
    h = DaemonHarness(ws, loader=kms_loader, sources=fake_catalog(kms)).start()
    sm = boto3.client("secretsmanager", endpoint_url=aws_endpoint, region_name="us-east-1")
    try:
        yield h, kms, sm
    finally:
        assert h.stop() == 0
        assert h.leaks() == []


def val(sm: Any, name: str) -> str:
    return str(sm.get_secret_value(SecretId=name)["SecretString"])


def test_poll_runs_only_the_syncs_of_a_folder_whose_token_moved(started: tuple[DaemonHarness, FakeKms, Any]) -> None:
    h, kms, sm = started
    d = h.daemon
    assert val(sm, "one/K") == "1" and val(sm, "two/K") == "2" and val(sm, "deep/K") == "d"
    keys = h.on_loop(lambda: dict(d.polls.groups))
    one = PollKey("kms", Folder("dev", "/one", PROJECT, False))
    two = PollKey("kms", Folder("dev", "/two", PROJECT, False))
    assert keys[one] == (7.0, ["one", "one-b"]) and keys[two] == (7.0, ["two"])
    assert h.on_loop(lambda: d.schedule.polls()) == {str(k) for k in keys}, "one poll job per distinct folder"
    wait_until(lambda: h.on_loop(lambda: len(d.polls.poller.tokens)) == len(keys), 5, "first tokens")

    assert h.call(d.polls.poll(one)) == [] and h.call(d.polls.poll(two)) == [], "nothing moved"
    kms.folders["/one"] = {"K": "1b"}
    assert h.call(d.polls.poll(two)) == []
    assert h.call(d.polls.poll(one)) == ["one", "one-b"]
    h.wait_idle()
    assert val(sm, "one/K") == "1b" and val(sm, "one-b/K") == "1b" and val(sm, "two/K") == "2"
    assert not h.events("reconcile.started", sync="two", trigger="source-changed")


def _hook(h: DaemonHarness, conn: str, body: dict[str, Any], secret: str = HOOK_SECRET,
          header: str = "x-kms-signature") -> tuple[int, bytes]:
    raw = json.dumps(body).encode()
    sig = sign(raw, SecretValue(secret), int(time.time() * 1000))
    status, out, _ = h.http("POST", f"/webhooks/kms/{conn}", raw, {header: sig, "Content-Type": "application/json"})
    return status, out


def _event(path: str) -> dict[str, Any]:
    return {"event": "secrets.modified", "project": {"workspaceId": PROJECT, "projectId": PROJECT,
                                                     "environment": "dev", "secretPath": path}}


def test_signed_webhook_triggers_the_syncs_of_its_folder(started: tuple[DaemonHarness, FakeKms, Any]) -> None:
    h, kms, sm = started
    kms.folders["/one"] = {"K": "hook"}
    kms.folders["/deep/x"] = {"K": "deeper"}
    status, out = _hook(h, "kms", _event("/one"))
    assert status == 202 and json.loads(out) == {"triggered": ["one", "one-b"]}
    status, out = _hook(h, "kms", _event("/deep/x"), header="x-infisical-signature")
    assert status == 202 and json.loads(out) == {"triggered": ["deep"]}, "a recursive sync covers sub-folders"
    h.wait_idle()
    assert val(sm, "one/K") == "hook" and val(sm, "deep/K") == "deeper"

    assert _hook(h, "kms", _event("/one"), secret="wrong")[0] == 401
    status, out = _hook(h, "kms", {"not": "an event"})
    assert status == 400 and out == b"Bad Request\n", "signed, so no 'unauthorized'; and no detail in the answer"
    status, out = _hook(h, "kms", {"not": "an event"}, secret="wrong")
    assert status == 401 and b"project" not in out, "unsigned: unauthorized, whatever the payload"
    assert _hook(h, "nope", _event("/one"))[0] == 404
    assert _hook(h, "local", _event("/one"))[0] == 404, "a file connection takes no webhooks"
    assert _hook(h, "quiet-kms", _event("/one"))[0] == 404, "no webhookSecret: webhooks are off"
    assert h.http("GET", "/webhooks/kms/kms")[0] == 405
    assert h.events("webhook.rejected", connection="kms")


def test_a_source_kind_the_daemon_never_heard_of_is_polled_and_takes_webhooks(
        tmp_path: Path, aws_endpoint: str, kms: FakeKms) -> None:
    """The daemon knows change detection only through the source catalog: a new kind, with a
    poll interval setting and a webhook route of its own, works with no daemon change."""
    import boto3

    def verify(body: bytes, headers: Mapping[str, str], secret: SecretValue) -> Folder:
        if headers.get("x-token") != secret.reveal():
            raise WebhookError("bad token")
        return Folder("dev", json.loads(body)["path"], PROJECT)

    other = SourceDescriptor(app="other-vault", label="Other", open=lambda _conn: FakeSource(kms),
                             needs_project=True, polling=Polling(default_seconds=60, setting="every"),
                             webhooks=Webhooks(route="other", verify=verify, signed_with="hookToken"))
    sources = SourceCatalog((*catalog.default().descriptors(), other))

    def loader(root: Path) -> SpecSet:
        specs = load(root)
        conn = Connection(name="ov", app="other-vault", location=Location(root / "ov.yaml", 1),
                          settings=MappingProxyType({"every": 9,
                                                     "hookToken": CredentialRef("env", "KMS_HOOK_SECRET")}))
        syncs = {n: dataclasses.replace(s, source="ov", project_id=PROJECT) for n, s in specs.syncs.items()}
        return dataclasses.replace(specs, syncs=MappingProxyType(syncs),
                                   connections=MappingProxyType({**specs.connections, "ov": conn}))

    ws = Workspace(tmp_path, aws_endpoint)
    ws.write_spec("one.yaml", [ws.sync("one", secretPath="/one", syncOptions={"keySchema": "one/{{secretKey}}"})])
    kms.folders = {"/one": {"K": "1"}}
    h = DaemonHarness(ws, loader=loader, sources=sources).start()
    sm = boto3.client("secretsmanager", endpoint_url=aws_endpoint, region_name="us-east-1")
    try:
        d = h.daemon
        assert val(sm, "one/K") == "1"
        key = PollKey("ov", Folder("dev", "/one", PROJECT, False))
        assert h.on_loop(lambda: dict(d.polls.groups)) == {key: (9.0, ["one"])}
        wait_until(lambda: h.on_loop(lambda: key in d.polls.poller.tokens), 5, "the first token")
        kms.folders["/one"] = {"K": "polled"}
        assert h.call(d.polls.poll(key)) == ["one"]
        h.wait_idle()
        assert val(sm, "one/K") == "polled"

        kms.folders["/one"] = {"K": "hooked"}
        body = json.dumps({"path": "/one"}).encode()
        status, out, _ = h.http("POST", "/webhooks/other/ov", body, {"x-token": HOOK_SECRET})
        assert (status, json.loads(out)) == (202, {"triggered": ["one"]})
        h.wait_idle()
        assert val(sm, "one/K") == "hooked"
        assert h.http("POST", "/webhooks/other/ov", body, {"x-token": "wrong"})[0] == 401
        assert h.http("POST", "/webhooks/kms/ov", body, {"x-token": HOOK_SECRET})[0] == 404, "not its route"
    finally:
        assert h.stop() == 0
        assert h.leaks() == []
