"""Notifications: a `kind: Notifier` spec, posted by the running daemon to a webhook receiver
on 127.0.0.1 (moto behind the syncs). Never a value in a payload, never the URL in a log."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from reconciler.changes import Action, Change, ChangeResult
from reconciler.engine.outcome import Outcome
from reconciler.notify.send import Dispatcher
from reconciler.specs.loader import load
from tests.support.canary import CANARIES, find_leaks
from tests.support.cli import Workspace
from tests.support.daemon import DaemonHarness, harnesses, wait_until
from tests.support.webhook import WebhookReceiver

C1, C2, C3 = CANARIES
HOOK_PATH = "/services/T000/B000/hook"


@pytest.fixture
def hook(ws: Workspace) -> Iterator[WebhookReceiver]:
    r = WebhookReceiver()
    (ws.root / "hook-url").write_text(r.start() + "\n")  # a webhook URL is a credential: a file
    yield r
    r.stop()
    assert find_leaks(r.raw) == [], "a secret value reached a notification"


@pytest.fixture
def daemon(ws: Workspace) -> Iterator[Callable[..., DaemonHarness]]:
    made: list[DaemonHarness] = []

    def make(**kw: Any) -> DaemonHarness:
        made.append(start(**kw))
        return made[-1]

    with harnesses(ws) as start:
        yield make
    for h in made:
        assert HOOK_PATH not in h.logs.text(), "the webhook URL (a credential) reached a log line"


def notifier(**fields: Any) -> dict[str, Any]:
    return {"kind": "Notifier", "name": "ops", "url": {"file": "../hook-url"}, **fields}


def test_a_failing_sync_sends_one_message_then_one_when_it_recovers(
        ws: Workspace, aws_endpoint: str, hook: WebhookReceiver, daemon: Callable[..., DaemonHarness]) -> None:
    from tests.emulators.faultproxy import FaultProxy

    proxy = FaultProxy(aws_endpoint)
    ws.write_connections(proxy.start(), maxAttempts=1)
    try:
        ws.write_spec("app.yaml", [ws.sync(), notifier(events=["sync-failed", "sync-recovered"])])
        ws.set_secrets({"A": C1, "B": C2})
        proxy.fail(None, status=500, code="InternalFailure")
        h = daemon()  # the first run failed
        wait_until(lambda: hook.events("sync-failed"), 10, "the failure message")
        for _ in range(2):  # the retries fail too: held back by minInterval (default 1h)
            h.call(h.daemon._due("app", "retry"))
            h.wait_idle()
        proxy.heal()
        h.call(h.daemon._due("app", "retry"))
        h.wait_idle()
        wait_until(lambda: hook.events("sync-recovered"), 10, "the recovery message")
        failed, recovered = hook.events("sync-failed"), hook.events("sync-recovered")
        assert len(failed) == 1 and len(recovered) == 1 and len(hook.bodies) == 2
        body = failed[0]
        assert body["text"].startswith("reconciler: sync app failed on aws-secrets-manager"), body
        assert body["attachments"][0]["color"] == "danger"
        assert {f["title"] for f in body["attachments"][0]["fields"]} >= {"sync", "destination", "run", "host"}
        info = body["reconciler"]
        assert (info["event"], info["sync"], info["notifier"], info["attempt"]) == ("sync-failed", "app", "ops", 1)
        assert h.events("reconcile.finished", run_id=info["runId"], result="failure")
        rec = recovered[0]["reconciler"]
        assert rec["failedRuns"] == 3 and rec["counts"]["created"] == 2
        assert recovered[0]["text"].endswith("after 3 failed run(s): 2 created, 0 updated, 0 deleted")
        # the receiver saw the body before the daemon read the answer and logged it
        wait_until(lambda: h.events("notify.sent", notifier="ops", notify_event="sync-recovered", status=200),
                   10, "the sent message's log line")
        wait_until(lambda: 'event="sync-recovered",notifier="ops",result="sent"} 1.0' in h.http("GET", "/metrics")[1]
                   .decode(), 5, "the sent message to be counted")
        metrics = h.http("GET", "/metrics")[1].decode()
        assert 'reconciler_notifications_total{event="sync-failed",notifier="ops",result="held_back"} 2.0' in metrics
        assert 'reconciler_notifications_total{event="sync-failed",notifier="ops",result="sent"} 1.0' in metrics
    finally:
        proxy.stop()


def test_drift_reported_is_announced_with_key_names_only(
        ws: Workspace, sm_client: Any, hook: WebhookReceiver, daemon: Callable[..., DaemonHarness]) -> None:
    ws.write_spec("app.yaml", [ws.sync(reconcile={"drift": "report"}),
                               notifier(events=["drift-detected"], syncs=["app"])])
    ws.set_secrets({"A": C1, "B": C2})
    h = daemon()
    assert hook.bodies == []  # a first sync that succeeds says nothing
    sm_client.put_secret_value(SecretId="app/A", SecretString=C3)  # changed out of band
    h.on_loop(lambda: h.daemon.trigger("app", "interval"))
    wait_until(lambda: hook.events("drift-detected"), 10, "the drift message")
    h.wait_idle()
    [body] = hook.bodies
    info = body["reconciler"]
    assert (info["drifted"], info["reported"], info["corrected"], info["keys"]) == (1, 1, 0, ["app/A"])
    assert "reported, not corrected (drift: report): app/A" in body["text"], body
    assert sm_client.get_secret_value(SecretId="app/A")["SecretString"] == C3, "report only"


def _outcome(failed: bool, sync: str = "app") -> Outcome:
    change = Change(Action.CREATE, f"{sync}/A", "new")
    return Outcome(sync, "aws-secrets-manager", results=[ChangeResult(change, ok=not failed,
                                                                       error="AccessDenied" if failed else None)])


def test_rate_limit_per_notifier_sync_and_event_says_how_many_were_held_back(
        ws: Workspace, hook: WebhookReceiver) -> None:
    other = ws.sync("other", secretPath="/o", syncOptions={"keySchema": "o/{{secretKey}}"})
    ws.write_spec("app.yaml", [ws.sync(), other,
                               notifier(minInterval="10m"),
                               notifier(name="only-other", syncs=["other"], events=["sync-recovered"])])
    specs = load(ws.specs)
    assert specs.ok and set(specs.notifiers) == {"ops", "only-other"}, specs.diagnostics
    now = [1000.0]

    async def scenario() -> None:
        d = Dispatcher(lambda: specs, clock=lambda: now[0])
        app, other = specs.syncs["app"], specs.syncs["other"]
        for i in range(4):  # app fails 4 times in 5 minutes: one message
            d.after_run(app, _outcome(True), i, f"run{i}")
            now[0] += 75
        d.after_run(other, _outcome(True, "other"), 0, "other1")  # another sync: its own limit
        now[0] += 400  # 10m after the first
        d.after_run(app, _outcome(True), 4, "run4")
        d.after_run(other, _outcome(False, "other"), 1, "other2")  # recovered: both notifiers want it
        await d.close()

    asyncio.run(scenario())
    sent = [(b["reconciler"]["notifier"], b["reconciler"]["sync"], b["reconciler"]["event"],
             b["reconciler"]["suppressed"]) for b in hook.bodies]
    assert sorted(sent) == sorted([
        ("ops", "app", "sync-failed", 0), ("ops", "other", "sync-failed", 0), ("ops", "app", "sync-failed", 3),
        ("ops", "other", "sync-recovered", 0), ("only-other", "other", "sync-recovered", 0)])
    held = next(b for b in hook.bodies if b["reconciler"]["suppressed"] == 3)
    assert held["text"].endswith("(3 similar message(s) held back by minInterval)")
    assert held["reconciler"]["message"] == "app/A: AccessDenied"


def test_a_receiver_that_fails_or_hangs_is_logged_and_never_holds_the_loop(
        ws: Workspace, hook: WebhookReceiver) -> None:
    ws.write_spec("app.yaml", [ws.sync(), notifier(minInterval="0s", timeout="1s")])
    specs = load(ws.specs)
    from reconciler.logging import configure
    from tests.support.daemon import ThreadSafeBuffer

    logs = ThreadSafeBuffer()
    configure("json", "debug", stream=logs)

    async def scenario() -> float:
        d = Dispatcher(lambda: specs, retry_pause=0.05)
        hook.status = 503
        started = time.monotonic()
        d.after_run(specs.syncs["app"], _outcome(True), 0, "r1")
        spent = time.monotonic() - started
        await asyncio.sleep(0.5)
        hook.status, hook.delay = 200, 3.0
        d.after_run(specs.syncs["app"], _outcome(True), 1, "r2")
        await asyncio.sleep(2.5)  # two attempts of 1 s each, then it gives up
        await d.close(timeout=0.1)
        return spent

    assert asyncio.run(scenario()) < 0.05, "after_run must only schedule the post"
    text = logs.text()
    assert '"status": 503' in text and '"attempts": 2' in text and '"error_type": "ReadTimeout"' in text, text
    assert len(hook.bodies) == 4  # two tries each, never more
    assert HOOK_PATH not in text


def test_bad_notifier_specs_are_located_diagnostics_that_never_echo_the_url(ws: Workspace) -> None:
    url = "https://hooks.slack.com/services/T000/B000/literal-" + C1
    ws.write_spec("notify.yaml", [
        {"kind": "Notifier", "name": "ops", "url": url, "events": ["sync-failed", "sync-exploded"],
         "syncs": ["nope"], "minInterval": "soon"},
        {"kind": "Notifier", "name": "ok", "url": {"env": "SLACK_URL"}, "timeout": "5m"},
    ])
    r = ws.run("validate")
    assert r.code == 1, str(r)
    spec = ws.specs / "notify.yaml"
    assert f"{spec}:3: $.url: credentials must be references" in r.out + r.err, str(r)
    assert f"{spec}:6: $.events[1]: must be one of: sync-failed, sync-recovered, drift-detected" in r.err, str(r)
    assert f"warning: {spec}:8: $.syncs[0]: no SecretSync named 'nope'" in r.err, str(r)
    assert f"{spec}:9: $.minInterval: 'soon' does not match a duration" in r.err, str(r)
    assert f"{spec}:15: $.timeout: must be between 1s and 60s" in r.err, str(r)
    assert "hooks.slack.com" not in r.out + r.err
    assert ws.leaks() == []


def test_a_notifier_that_cannot_send_is_reported_at_load_not_at_the_first_failure(ws: Workspace) -> None:
    (ws.root / "not-a-url").write_text("hooks.slack.com/no-scheme\n")
    ws.write_spec("app.yaml", [ws.sync(), notifier(url={"env": "NOTIFY_URL_UNSET"}),
                               notifier(name="bad-url", url={"file": "../not-a-url"})])
    specs = load(ws.specs)
    from reconciler.logging import configure
    from tests.support.daemon import ThreadSafeBuffer

    logs = ThreadSafeBuffer()
    configure("json", "debug", stream=logs)
    Dispatcher(lambda: specs, environ={}).check()
    text = logs.text()
    assert "environment variable NOTIFY_URL_UNSET is not set" in text, text
    assert "does not hold a usable http(s) URL" in text and "no-scheme" not in text, text


def test_a_url_httpx_cannot_parse_is_unusable_and_never_quoted(ws: Workspace) -> None:
    """httpx.InvalidURL is no httpx.HTTPError: it escaped the post, and asyncio's "Task exception
    was never retrieved" logged its text -- 'Invalid port: <the token>' -- URL and all."""
    (ws.root / "bad-port").write_text(f"http://127.0.0.1:{C1}/services/T000/B000/hook\n")
    (ws.root / "line-break").write_text(f"http://127.0.0.1:1/services/T000/B000/hook\n{C2}\n")
    ws.write_spec("app.yaml", [ws.sync(), notifier(url={"file": "../bad-port"}, minInterval="0s"),
                               notifier(name="two", url={"file": "../line-break"}, minInterval="0s")])
    specs = load(ws.specs)
    from reconciler.logging import configure
    from tests.support.daemon import ThreadSafeBuffer

    logs = ThreadSafeBuffer()
    configure("json", "debug", stream=logs)

    async def scenario() -> None:
        d = Dispatcher(lambda: specs, retry_pause=0.01)
        d.check()
        d.after_run(specs.syncs["app"], _outcome(True), 0, "r1")
        await asyncio.sleep(0.3)
        await d.close(timeout=0.1)

    asyncio.run(scenario())
    text = logs.text()
    assert text.count("does not hold a usable http(s) URL") == 4, text  # at load and at the post, for each
    assert "{file: " in text and "CredentialRef" not in text, "the reference as written in the spec"
    assert "never retrieved" not in text and "InvalidURL" not in text, text
    assert HOOK_PATH not in text and find_leaks([text]) == []
