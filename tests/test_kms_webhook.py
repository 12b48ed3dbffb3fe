"""Webhook verification: Infisical's ``t=<ms>;<hex>`` signature, freshness, payload shape, and
the emulator's sender verified end to end by a receiver on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from reconciler.model import SecretValue
from reconciler.sources.webhook import (
    MAX_BODY_BYTES,
    TOLERANCE_SECONDS,
    FolderChange,
    WebhookError,
    sign,
    verify_and_parse,
)
from tests.emulators.kms import KmsEmulator
from tests.support.canary import CANARIES, find_leaks

SECRET = SecretValue(CANARIES[0])
NOW = 1_790_000_000.0
T = int(NOW * 1000)


def payload(**project: Any) -> bytes:
    base: dict[str, Any] = {"workspaceId": "proj-1", "environment": "dev", "secretPath": "/app"}
    base.update(project)
    return json.dumps({"event": "secrets.modified", "project": base, "timestamp": T}).encode()


def verify(body: bytes, headers: dict[str, str], secret: SecretValue = SECRET, now: float = NOW) -> FolderChange:
    return verify_and_parse(body, headers, secret, now=now)


def test_round_trip_with_either_header_any_case() -> None:
    body = payload()
    for name in ("x-infisical-signature", "X-Infisical-Signature", "x-kms-signature"):
        assert verify(body, {name: sign(body, SECRET, T)}) == FolderChange("proj-1", "dev", "/app")


def test_signature_format_is_upstreams() -> None:
    import hashlib
    import hmac

    body = payload()
    header = sign(body, SECRET, T)
    digest = hmac.new(SECRET.reveal().encode(), f"{T}.".encode() + body, hashlib.sha256).hexdigest()
    assert header == f"t={T};{digest}"
    assert verify(body, {"x-infisical-signature": f" t={T} ; {digest.upper()} "}).environment == "dev"


@pytest.mark.parametrize("case", ["wrong-secret", "tampered", "other-timestamp"])
def test_bad_signatures_are_refused(case: str) -> None:
    body = payload()
    header = sign(body, SecretValue("another"), T) if case == "wrong-secret" else sign(body, SECRET, T)
    if case == "tampered":
        body = payload(secretPath="/other")
    if case == "other-timestamp":
        header = header.replace(f"t={T}", f"t={T + 1}")
    with pytest.raises(WebhookError, match="signature does not match"):
        verify(body, {"x-infisical-signature": header})


@pytest.mark.parametrize("skew", [TOLERANCE_SECONDS + 1, -(TOLERANCE_SECONDS + 1)])
def test_stale_or_future_timestamps_are_replays(skew: float) -> None:
    body = payload()
    ts = int((NOW - skew) * 1000)
    with pytest.raises(WebhookError, match="outside the allowed window"):
        verify(body, {"x-kms-signature": sign(body, SECRET, ts)})
    assert verify(body, {"x-kms-signature": sign(body, SECRET, int((NOW - 299) * 1000))})


@pytest.mark.parametrize("header", [
    "", "t=;abc", "t=abc;abc", "abcdef", f"t={T}", f"t={T};sigé", f"t={'9' * 30};abc", "t=-5;abc",
])
def test_malformed_headers(header: str) -> None:
    with pytest.raises(WebhookError, match="malformed"):
        verify(payload(), {"x-infisical-signature": header})


def test_missing_header_empty_secret_and_oversized_body() -> None:
    body = payload()
    with pytest.raises(WebhookError, match="no signature header"):
        verify(body, {"content-type": "application/json"})
    with pytest.raises(WebhookError, match="no webhook secret"):
        verify(body, {"x-kms-signature": sign(body, SecretValue(""), T)}, secret=SecretValue(""))
    big = b" " * (MAX_BODY_BYTES + 1)
    with pytest.raises(WebhookError, match="too large"):
        verify(big, {"x-kms-signature": sign(big, SECRET, T)})


@pytest.mark.parametrize("body", [
    b"not json", b"[]", b'{"project": []}', b'{"project": {"environment": "dev"}}',
    b'{"project": {"workspaceId": 5, "environment": "dev"}}', json.dumps({"project": "x"}).encode(),
])
def test_payloads_that_name_no_folder(body: bytes) -> None:
    with pytest.raises(WebhookError, match="does not name") as e:
        verify(body, {"x-kms-signature": sign(body, SECRET, T)})
    assert find_leaks([str(e.value)]) == []


def test_project_id_and_path_normalisation() -> None:
    body = payload(projectId="proj-2", secretPath="app/sub/")
    assert verify(body, {"x-kms-signature": sign(body, SECRET, T)}) == FolderChange("proj-2", "dev", "/app/sub")
    body = payload(secretPath=None)
    assert verify(body, {"x-kms-signature": sign(body, SECRET, T)}).secret_path == "/"


def test_errors_never_quote_the_secret_or_body() -> None:
    body = json.dumps({"project": {"environment": CANARIES[1]}}).encode()
    with pytest.raises(WebhookError) as e:
        verify(body, {"x-kms-signature": sign(body, SECRET, T)[:-2] + "00"})
    assert find_leaks([str(e.value), repr(e.value)]) == []


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[FolderChange | str]]]:
    got: list[FolderChange | str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return None

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            try:
                got.append(verify_and_parse(body, dict(self.headers), SECRET))
                status = 204
            except WebhookError as e:
                got.append(str(e))
                status = 401
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/webhooks/kms/kms", got
    finally:
        srv.shutdown()
        srv.server_close()


def test_emulator_sends_signed_events_on_change(receiver: tuple[str, list[FolderChange | str]]) -> None:
    url, got = receiver
    with KmsEmulator() as kms:
        kms.subscribe(url, SECRET)
        kms.subscribe(url, SecretValue("not-the-shared-secret"))
        started = time.time()
        kms.put("proj-1", "dev", "/app", "A", CANARIES[2])
        assert time.time() - started < 2
    assert got[0] == FolderChange("proj-1", "dev", "/app")
    assert got[1] == "signature does not match"
    assert kms.deliveries == [204, 401]
