"""The OCI Vault emulator's data: secrets, versions, their JSON shapes and the request
checks that need no state. Written from protocols.md §4 and test-infrastructure.md §4."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.emulators.httpserver import Reply

DEFAULT_COMPARTMENT = "ocid1.compartment.oc1..emulatorcompartment"
DEFAULT_VAULT = "ocid1.vault.oc1.iad.emulatorvault"
DEFAULT_KEY = "ocid1.key.oc1.iad.emulatorkey"
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,255}$")
#: "The maximum allowable size for a secret bundle is 25 KB" (Oracle's docs): taken as the
#: base64 content as sent, so the largest plaintext is 3/4 of it
MAX_BUNDLE_CHARS = 25 * 1024
MAX_CONTENT_BYTES = MAX_BUNDLE_CHARS * 3 // 4
MIN_DELETION_DAYS, MAX_DELETION_DAYS, DEFAULT_DELETION_DAYS = 1, 30, 30
MAX_FREEFORM_TAGS = 10
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
TRANSITIONAL = frozenset({"CREATING", "UPDATING", "SCHEDULING_DELETION", "CANCELLING_DELETION", "DELETING"})
NOT_FOUND = "Authorization failed or requested resource not found."
DAY = 86400.0


def error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"code": code, "message": message})


def not_found() -> Reply:
    return error(404, "NotAuthorizedOrNotFound", NOT_FOUND)


def stamp(t: float) -> str:
    """RFC 3339 with milliseconds and Z: the form the SDK parses as UTC."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(t * 1000) % 1000:03d}Z"


def parse_stamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass
class Version:
    number: int
    content: str  # base64, as sent
    created: float


@dataclass
class Secret:
    id: str
    name: str
    compartment: str
    vault: str
    key: str
    created: float
    description: str | None = None
    freeform: dict[str, str] = field(default_factory=dict)
    defined: dict[str, dict[str, Any]] = field(default_factory=dict)
    metadata: dict[str, Any] | None = None
    versions: list[Version] = field(default_factory=list)
    current: int = 1
    state: str = "ACTIVE"  # the settled state
    transient: str | None = None  # shown instead of state while reads_left allows
    reads_left: int | None = 0  # None: held until released
    time_of_deletion: float | None = None
    etag: str = ""

    def version(self, number: int) -> Version | None:
        return next((v for v in self.versions if v.number == number), None)


def content_of(body: Mapping[str, Any]) -> tuple[str | None, Reply | None]:
    sc = body.get("secretContent")
    if sc is None:
        return None, None
    if not isinstance(sc, dict) or sc.get("contentType") != "BASE64":
        return None, error(400, "InvalidParameter", "secretContent.contentType must be BASE64.")
    content = sc.get("content")
    if not isinstance(content, str) or not content:
        return None, error(400, "InvalidParameter", "secretContent.content must not be empty.")
    try:
        raw = base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError):
        return None, error(400, "InvalidParameter", "secretContent.content is not valid base64.")
    if len(content) > MAX_BUNDLE_CHARS or len(raw) > MAX_CONTENT_BYTES:
        return None, error(400, "InvalidParameter", "The secret bundle must be at most 25 KB.")
    return content, None

def tags_error(body: Mapping[str, Any]) -> Reply | None:
    ff = body.get("freeformTags")
    if ff is not None:
        if not isinstance(ff, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in ff.items()):
            return error(400, "InvalidParameter", "freeformTags must map strings to strings.")
        if len(ff) > MAX_FREEFORM_TAGS:
            return error(400, "InvalidParameter", f"At most {MAX_FREEFORM_TAGS} freeform tags are allowed.")
        if any(len(k) > 100 or len(v) > 256 for k, v in ff.items()):
            return error(400, "InvalidParameter", "A freeform tag key is at most 100 and a value 256 characters.")
    return None

def etag_mismatch(s: Secret, if_match: str | None) -> Reply | None:
    if if_match is not None and if_match != s.etag:
        return error(412, "NoEtagMatch", "The resource's etag does not match the if-match header.")
    return None


def summary(s: Secret, state: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": s.id, "secretName": s.name, "compartmentId": s.compartment, "vaultId": s.vault, "keyId": s.key,
        "lifecycleState": state, "timeCreated": stamp(s.created), "freeformTags": dict(s.freeform),
        "definedTags": {k: dict(v) for k, v in s.defined.items()}, "systemTags": {},
        "isAutoGenerationEnabled": False,
    }
    if s.description is not None:
        out["description"] = s.description
    if s.time_of_deletion is not None and state in ("PENDING_DELETION", "SCHEDULING_DELETION", "DELETED"):
        out["timeOfDeletion"] = stamp(s.time_of_deletion)
    return out

def full(s: Secret, state: str) -> Reply:
    body = summary(s, state)
    body.pop("systemTags")
    body["currentVersionNumber"] = s.current
    if s.metadata is not None:
        body["metadata"] = s.metadata
    return Reply(200, body, {"etag": s.etag})


def encode_page(offset: int) -> str:
    return base64.urlsafe_b64encode(f"emulator-page:{offset}".encode()).decode().rstrip("=")


def decode_page(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("bad page") from exc
    prefix, _, offset = text.partition(":")
    if prefix != "emulator-page" or not offset.isdigit():
        raise ValueError("bad page")
    return int(offset)
