"""The Windmill variables API over HTTP(S), on the shared emulator base
(tests/emulators/httpserver.py): bearer tokens (or the ``token`` cookie) scoped to
workspaces, routes under ``/api``, catch-all variable paths sent unencoded."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tests.emulators.httpserver import Fault, HttpsEmulator, Record, Reply
from tests.emulators.windmill.store import Store, parse_json, text

__all__ = ["VERSION", "Fault", "Record", "WindmillEmulator"]

VERSION = "CE v1.850.0"
#: one path segment ops, and the ops that take the rest of the URL as a variable path
_FLAT = {("GET", "list"), ("GET", "list_contextual"), ("POST", "create"), ("POST", "encrypt"),
         ("DELETE", "delete_bulk")}
_BY_PATH = {("GET", "get"), ("GET", "get_value"), ("GET", "exists"), ("POST", "update"), ("DELETE", "delete")}


@dataclass(frozen=True)
class Token:
    user: str
    workspaces: frozenset[str]


class WindmillEmulator(HttpsEmulator):
    """Windmill's ``/api/w/{workspace}/variables/*`` (protocols.md §1). ``ca=None``: plain HTTP."""

    def __init__(self, ca: Any = None, *, port: int = 0, store: Store | None = None) -> None:
        super().__init__(ca, port=port)
        self.store = store or Store()
        self.tokens: dict[str, Token] = {}

    def add_token(self, token: str, *workspaces: str, user: str = "admin") -> None:
        """A token for ``user``, a member of ``workspaces`` (created when missing)."""
        for ws in workspaces:
            self.store.add_workspace(ws)
        self.tokens[token] = Token(user, frozenset(workspaces))

    def reset(self) -> None:
        self.store.reset()
        self.clear()

    # -- the base's hooks ----------------------------------------------------------------------
    def fault_body(self, status: int) -> Any:
        if status == 429:
            return b"Too Many Requests"
        if status in (502, 503, 504):
            return f"<html><body><h1>{status} Gateway error</h1></body></html>".encode()
        return f"Internal: injected status {status}".encode()

    def fault_headers(self, status: int) -> dict[str, str]:
        if status < 400:
            return {}  # a stand-in answer: its body is JSON
        ctype = "text/html" if status in (502, 503, 504) else "text/plain; charset=utf-8"
        return {"Content-Type": ctype}

    def _token(self, headers: Mapping[str, str]) -> Token | None:
        auth = headers.get("authorization", "")
        raw = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if not raw:
            for part in headers.get("cookie", "").split(";"):
                name, _, value = part.strip().partition("=")
                if name == "token":
                    raw = value
        return self.tokens.get(raw) if raw else None

    def authorize(self, method: str, path: str, headers: Mapping[str, str]) -> Reply | None:
        if path == "/api/version":
            return None
        token = self._token(headers)
        if token is None:
            return text(401, "Not authorized: Unauthorized")
        seg = path.split("/")
        if len(seg) > 3 and seg[1:3] == ["api", "w"] and seg[3] not in token.workspaces:
            return text(401, f"Not authorized: you are not a member of workspace {seg[3]}")
        return None

    def handle(self, method: str, path: str, query: dict[str, str], headers: Mapping[str, str],
               body: bytes) -> Reply:
        if path == "/api/version" and method == "GET":
            return text(200, VERSION)
        seg = path.split("/")
        # "", "api", "w", ws, "variables", op, *variable path
        if len(seg) < 6 or seg[1:3] != ["api", "w"] or seg[4] != "variables":
            return Reply(404)
        ws, op, rest = seg[3], seg[5], "/".join(seg[6:])
        token = self._token(headers)
        user = token.user if token else "anonymous"
        s = self.store
        if (method, op) in _FLAT and not rest:
            if op == "list":
                return s.list(ws, query)
            if op == "list_contextual":
                return Reply(200, [{"name": "WM_WORKSPACE", "value": ws, "description": "Workspace id of the "
                                    "current script", "is_custom": False}])
            if method == "GET":
                return Reply(404)
            if method == "POST" and "application/json" not in headers.get("content-type", ""):
                return text(415, "Expected request with `Content-Type: application/json`")
            parsed, bad = parse_json(body)
            if bad:
                return bad
            if op == "create":
                return s.create(ws, parsed, user)
            if op == "encrypt":
                return s.encrypt(ws, parsed)
            return s.delete_bulk(ws, parsed)
        if (method, op) in _BY_PATH and rest:
            if op == "get":
                return s.get(ws, rest, query)
            if op == "get_value":
                return s.get_value(ws, rest)
            if op == "exists":
                return s.exists(ws, rest)
            if op == "delete":
                return s.delete(ws, rest)
            if "application/json" not in headers.get("content-type", ""):
                return text(415, "Expected request with `Content-Type: application/json`")
            parsed, bad = parse_json(body)
            return bad or s.update(ws, rest, parsed, user)
        known = {o for _, o in _FLAT | _BY_PATH}
        return Reply(405) if op in known else Reply(404)
