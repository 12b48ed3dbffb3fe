"""Windmill workspace variables as state + operations, written from the OpenAPI spec
(shared/reference/specs/windmill-openapi.yaml, ``/w/{workspace}/variables/*``) and protocols.md §1.

Pure: no sockets. Every operation returns a :class:`Reply` shaped like the server's:
JSON for reads, ``text/plain`` for mutations and for every error (``"<Kind>: <message>"``,
as Windmill's error type prints itself). Time comes from an injectable clock; ``edited_at``
is strictly increasing on every write even when the clock stands still, because the
destination uses it as a version marker.

Unverified details (protocols.md marks them [U] or does not say) are chosen and named here:
the 401 text for an unknown token or a foreign workspace, and that ``f/`` folders need not exist.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.emulators.httpserver import Reply

#: the DB CHECK ``proper_id`` on variable.path (protocols.md §1)
PATH = re.compile(r"^[ufg](/[\w-]+){2,}$")
MAX_PATH = 255
MAX_STORED_VALUE = 15000  # VARCHAR(15000): the ciphertext for secrets, so ~11 KB of plaintext
MAX_DESCRIPTION = 10000
DEFAULT_PER_PAGE = 1000  # the server code's default (the spec text says 30)
MAX_PER_PAGE = 10000
CREATE_REQUIRED = ("path", "value", "is_secret", "description")
TEXT = {"Content-Type": "text/plain; charset=utf-8"}


def text(status: int, message: str) -> Reply:
    return Reply(status, message.encode(), dict(TEXT))


def bad_request(message: str) -> Reply:
    return text(400, f"Bad request: {message}")


def not_found(message: str) -> Reply:
    return text(404, f"Not found: {message}")


def sql_error(message: str) -> Reply:
    return text(400, f"SqlErr: error returned from database: {message}")


def like(pattern: str) -> re.Pattern[str]:
    """A SQL LIKE pattern (``%``, ``_``, backslash escapes) as a regex: ``path_start`` is one."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "%" else "." if c == "_" else re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def seal(value: str) -> str:
    """A stand-in ciphertext (never the plaintext): what ``include_encrypted`` and ``/encrypt``
    show, and what the VARCHAR(15000) limit measures for secrets."""
    raw = value.encode()
    stream = b""
    counter = 0
    while len(stream) < len(raw):
        stream += hashlib.sha256(b"windmill-emulator" + counter.to_bytes(4, "big")).digest()
        counter += 1
    nonce = hashlib.sha256(raw).digest()[:16]
    return base64.b64encode(nonce + bytes(a ^ b for a, b in zip(raw, stream, strict=False))).decode()


@dataclass
class Variable:
    path: str
    value: str  # plaintext
    is_secret: bool
    description: str
    edited_at: int  # microseconds since the epoch
    edited_by: str
    labels: list[str] = field(default_factory=list)


def _stamp(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Store:
    """Every workspace's variables. Thread-safe (one lock; the server is threaded)."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.offset = 0.0  # seconds added to the clock (tests move time with it)
        self._lock = threading.RLock()
        self._last_us = 0
        self.workspaces: dict[str, dict[str, Variable]] = {}
        #: False: list rows carry no ``edited_at`` (an older server), to test the fallback
        self.list_edited_at = True
        self.default_per_page = DEFAULT_PER_PAGE

    # -- helpers -------------------------------------------------------------------------------
    def reset(self) -> None:
        with self._lock:
            for variables in self.workspaces.values():
                variables.clear()
            self.offset = 0.0
            self.list_edited_at = True
            self.default_per_page = DEFAULT_PER_PAGE

    def add_workspace(self, workspace: str) -> None:
        with self._lock:
            self.workspaces.setdefault(workspace, {})

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def _tick(self) -> int:
        """Now in microseconds, strictly after every earlier write."""
        self._last_us = max(int((self._clock() + self.offset) * 1e6), self._last_us + 1)
        return self._last_us

    def _vars(self, workspace: str) -> dict[str, Variable] | Reply:
        found = self.workspaces.get(workspace)
        return not_found(f"workspace {workspace} not found") if found is None else found

    def _var(self, workspace: str, path: str) -> Variable | Reply:
        """One variable, or the 404 Windmill answers for a missing workspace or path."""
        found = self._vars(workspace)
        if isinstance(found, Reply):
            return found
        v = found.get(path)
        return not_found(f"Variable {path} not found") if v is None else v

    def _row(self, workspace: str, v: Variable, *, value: str | None, edited_at: bool = True) -> dict[str, Any]:
        row: dict[str, Any] = {
            "workspace_id": workspace, "path": v.path, "value": value, "is_secret": v.is_secret,
            "description": v.description, "account": None, "is_oauth": False, "extra_perms": {},
            "is_expired": False, "refresh_error": None, "is_linked": False, "is_refreshed": False,
            "expires_at": None, "labels": list(v.labels),
        }
        if edited_at:
            row["edited_at"] = _stamp(v.edited_at)
            row["edited_by"] = v.edited_by
        return row

    @staticmethod
    def _check_path(path: Any) -> Reply | None:
        if not isinstance(path, str):
            return text(422, "Failed to deserialize the JSON body into the target type: path: invalid type")
        if len(path) > MAX_PATH:
            return sql_error("value too long for type character varying(255)")
        if not PATH.match(path):
            return sql_error('new row for relation "variable" violates check constraint "proper_id"')
        return None

    @staticmethod
    def _check_sizes(value: str | None, is_secret: bool, description: str | None) -> Reply | None:
        if value is not None and len(seal(value) if is_secret else value) > MAX_STORED_VALUE:
            return sql_error("value too long for type character varying(15000)")
        if description is not None and len(description) > MAX_DESCRIPTION:
            return sql_error("value too long for type character varying(10000)")
        return None

    # -- reads ---------------------------------------------------------------------------------
    def list(self, workspace: str, query: Mapping[str, str]) -> Reply:
        try:
            page = max(int(query.get("page") or 1), 1)
            per_page = min(max(int(query.get("per_page") or self.default_per_page), 1), MAX_PER_PAGE)
        except ValueError:
            return text(400, "Failed to deserialize query string: invalid digit found in string")
        with self._lock:
            found = self._vars(workspace)
            if isinstance(found, Reply):
                return found
            rows = sorted(found.values(), key=lambda v: v.path)
            if query.get("path_start"):
                prefix = like(query["path_start"] + "%")
                rows = [v for v in rows if prefix.fullmatch(v.path)]
            if query.get("path"):
                rows = [v for v in rows if v.path == query["path"]]
            if query.get("description"):
                needle = query["description"].lower()
                rows = [v for v in rows if needle in v.description.lower()]
            if query.get("value"):
                needle = query["value"].lower()
                rows = [v for v in rows if not v.is_secret and needle in v.value.lower()]
            if query.get("broad_filter"):
                needle = query["broad_filter"].lower()
                rows = [v for v in rows if needle in v.path.lower() or needle in v.description.lower()]
            if query.get("label"):
                rows = [v for v in rows if query["label"] in v.labels]
            chunk = rows[(page - 1) * per_page : page * per_page]
            return Reply(200, [self._row(workspace, v, value=None if v.is_secret else v.value,
                                         edited_at=self.list_edited_at) for v in chunk])

    def get(self, workspace: str, path: str, query: Mapping[str, str]) -> Reply:
        with self._lock:
            v = self._var(workspace, path)
            if isinstance(v, Reply):
                return v
            value: str | None = v.value
            if v.is_secret and query.get("decrypt_secret", "true") == "false":
                value = seal(v.value) if query.get("include_encrypted") == "true" else None
            row = self._row(workspace, v, value=value)
            row["is_draft"] = False
            return Reply(200, row)

    def get_value(self, workspace: str, path: str) -> Reply:
        with self._lock:
            v = self._var(workspace, path)
            if isinstance(v, Reply):
                return v
            return Reply(200, v.value)

    def exists(self, workspace: str, path: str) -> Reply:
        with self._lock:
            found = self._vars(workspace)
            if isinstance(found, Reply):
                return found
            return Reply(200, path in found)

    # -- writes --------------------------------------------------------------------------------
    def create(self, workspace: str, body: Any, user: str) -> Reply:
        if not isinstance(body, dict):
            return text(422, "Failed to deserialize the JSON body into the target type: invalid type: "
                        "expected struct CreateVariable")
        for name in CREATE_REQUIRED:
            if name not in body:
                return text(422, f"Failed to deserialize the JSON body into the target type: missing field `{name}`")
        bad = self._check_path(body["path"])
        if bad:
            return bad
        if not isinstance(body["value"], str) or not isinstance(body["is_secret"], bool) \
                or not isinstance(body["description"], str):
            return text(422, "Failed to deserialize the JSON body into the target type: invalid type")
        bad = self._check_sizes(body["value"], body["is_secret"], body["description"])
        if bad:
            return bad
        with self._lock:
            found = self._vars(workspace)
            if isinstance(found, Reply):
                return found
            path = body["path"]
            if path in found:
                return bad_request(f"Variable {path} already exists")
            found[path] = Variable(path, body["value"], body["is_secret"], body["description"], self._tick(), user,
                                   list(body.get("labels") or []))
            return text(201, f"variable {path} created")

    def update(self, workspace: str, path: str, body: Any, user: str) -> Reply:
        if not isinstance(body, dict):
            return text(422, "Failed to deserialize the JSON body into the target type: invalid type: "
                        "expected struct EditVariable")
        if "is_secret" in body and "value" not in body:
            return bad_request("cannot change is_secret without updating value too")
        with self._lock:
            found = self._vars(workspace)
            if isinstance(found, Reply):
                return found
            v = found.get(path)
            if v is None:
                return not_found(f"Variable not found at name {path}")
            is_secret = bool(body.get("is_secret", v.is_secret))
            bad = self._check_sizes(body.get("value"), is_secret, body.get("description"))
            if bad:
                return bad
            new_path = body.get("path") or path
            if new_path != path:
                bad = self._check_path(new_path)
                if bad:
                    return bad
                if new_path in found:
                    return sql_error('duplicate key value violates unique constraint "variable_pkey"')
                del found[path]
                v.path = new_path
                found[new_path] = v
            if "value" in body:
                v.value = body["value"]
            v.is_secret = is_secret
            if "description" in body:
                v.description = body["description"]
            if "labels" in body:
                v.labels = list(body["labels"] or [])
            v.edited_at, v.edited_by = self._tick(), user
            return text(200, f"variable {new_path} updated")

    def delete(self, workspace: str, path: str) -> Reply:
        """200 whether or not the path existed: the server does not check (protocols.md §1)."""
        with self._lock:
            found = self._vars(workspace)
            if isinstance(found, Reply):
                return found
            found.pop(path, None)
            return text(200, f"variable {path} deleted")

    def delete_bulk(self, workspace: str, body: Any) -> Reply:
        if not isinstance(body, dict) or not isinstance(body.get("paths"), list):
            return text(422, "Failed to deserialize the JSON body into the target type: missing field `paths`")
        with self._lock:
            found = self._vars(workspace)
            if isinstance(found, Reply):
                return found
            deleted = [p for p in body["paths"] if isinstance(p, str) and found.pop(p, None) is not None]
            return Reply(200, deleted)

    def encrypt(self, workspace: str, body: Any) -> Reply:
        if not isinstance(body, str):
            return text(422, "Failed to deserialize the JSON body into the target type: invalid type: "
                        "expected a string")
        if workspace not in self.workspaces:
            return not_found(f"workspace {workspace} not found")
        return text(200, seal(body))

    # -- direct access for tests and seeding (no HTTP, no request log) -------------------------
    def put(self, workspace: str, path: str, value: str, *, is_secret: bool = True, description: str = "",
            user: str = "admin") -> None:
        """Create or overwrite, as someone editing out of band would; moves ``edited_at``."""
        with self._lock:
            self.add_workspace(workspace)
            self.workspaces[workspace][path] = Variable(path, value, is_secret, description, self._tick(), user)

    def variable(self, workspace: str, path: str) -> Variable | None:
        with self._lock:
            return self.workspaces.get(workspace, {}).get(path)

    def value(self, workspace: str, path: str) -> str | None:
        v = self.variable(workspace, path)
        return v.value if v else None

    def paths(self, workspace: str) -> set[str]:
        with self._lock:
            return set(self.workspaces.get(workspace, {}))

    def seed(self, data: Mapping[str, Mapping[str, Any]]) -> None:
        """``{workspace: {path: value | {value, is_secret, description}}}`` (the demo's seed file)."""
        for workspace, variables in data.items():
            self.add_workspace(workspace)
            for path, spec in (variables or {}).items():
                if isinstance(spec, Mapping):
                    self.put(workspace, path, str(spec["value"]), is_secret=bool(spec.get("is_secret", True)),
                             description=str(spec.get("description", "")))
                else:
                    self.put(workspace, path, str(spec))


def parse_json(body: bytes) -> tuple[Any, Reply | None]:
    """The body as JSON, or the 400 axum answers for bad syntax."""
    if not body:
        return None, text(400, "Failed to parse the request body as JSON: EOF while parsing a value at line 1 column 0")
    try:
        return json.loads(body), None
    except ValueError as e:
        return None, text(400, f"Failed to parse the request body as JSON: {e}")
