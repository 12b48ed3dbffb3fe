"""Verify and read a Hanzo KMS (Infisical-compatible) "secrets modified" webhook.

The sender signs ``f"{t}.{body}"`` with HMAC-SHA256 under the webhook's shared secret and
sends ``x-infisical-signature: t=<unix ms>;<hex digest>`` (Hanzo KMS also as
``x-kms-signature``). The body names the folder that changed, never a value; we only learn
*where* to look, and the next read fetches what changed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass

from reconciler.errors import WebhookError, WebhookPayloadError
from reconciler.model import Folder, SecretValue

__all__ = ["FolderChange", "WebhookError", "changed_folder", "sign", "verify_and_parse"]

SIGNATURE_HEADERS = ("x-kms-signature", "x-infisical-signature")
#: a signed payload older (or newer) than this is a replay, not news
TOLERANCE_SECONDS = 300.0
MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class FolderChange:
    project_id: str
    environment: str
    secret_path: str


def sign(body: bytes, secret: SecretValue, timestamp_ms: int) -> str:
    """The header value a sender puts on ``body`` (used by the emulator and the tests)."""
    digest = hmac.new(secret.reveal().encode(), f"{timestamp_ms}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp_ms};{digest}"


def _header(headers: Mapping[str, str]) -> str:
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in SIGNATURE_HEADERS:
        if name in lowered:
            return lowered[name]
    raise WebhookError("no signature header")


def verify_and_parse(
    body: bytes, headers: Mapping[str, str], secret: SecretValue, *, now: float | None = None
) -> FolderChange:
    """Check signature and freshness, then return the folder the event is about."""
    if len(body) > MAX_BODY_BYTES:
        raise WebhookError("payload too large")
    if secret.is_empty():
        raise WebhookError("no webhook secret configured")  # an empty HMAC key lets anyone sign
    parts: dict[str, str] = {}
    for piece in _header(headers).split(";"):
        piece = piece.strip()
        name, _, value = piece.partition("=") if piece.startswith("t=") else ("v", "", piece)
        parts[name] = value
    try:
        timestamp_ms = int(parts["t"])
        given = parts["v"].lower().encode("ascii")
    except (KeyError, ValueError):  # UnicodeEncodeError is a ValueError
        raise WebhookError("malformed signature header") from None
    if not 0 <= timestamp_ms < 10**15:  # milliseconds until year 33658; beyond that a float overflows
        raise WebhookError("malformed signature header")
    expected = sign(body, secret, timestamp_ms).split(";", 1)[1]
    # bytes, not str: compare_digest refuses non-ASCII str with a TypeError (a 500, not a 401)
    if not hmac.compare_digest(expected.encode("ascii"), given):
        raise WebhookError("signature does not match")
    current = time.time() if now is None else now
    if abs(current - timestamp_ms / 1000.0) > TOLERANCE_SECONDS:
        raise WebhookError("signature timestamp outside the allowed window")
    try:
        payload = json.loads(body)
        project = payload["project"]
        project_id = project.get("projectId") or project["workspaceId"]
        environment = project["environment"]
        secret_path = project.get("secretPath") or "/"
    except (ValueError, KeyError, TypeError, AttributeError):
        raise WebhookPayloadError("payload does not name a project, environment and secret path") from None
    if not all(isinstance(v, str) for v in (project_id, environment, secret_path)):
        raise WebhookPayloadError("payload does not name a project, environment and secret path")
    return FolderChange(project_id, environment, "/" + secret_path.strip("/"))


def changed_folder(body: bytes, headers: Mapping[str, str], secret: SecretValue) -> Folder:
    """The source catalog's view of :func:`verify_and_parse`: the folder the event names."""
    change = verify_and_parse(body, headers, secret)
    return Folder(change.environment, change.secret_path, change.project_id)
