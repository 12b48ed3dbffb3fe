"""A Hanzo KMS (Infisical-compatible) API emulator on 127.0.0.1, for tests and the demo.

Endpoints: universal-auth login (expiring tokens), ``GET /api/v4/secrets`` (imports,
recursion, reference expansion), batch create/update/delete. Every request is counted;
faults (status, Retry-After, delay, dropped connection) are injected per (method, path);
a webhook sender POSTs a signed ``secrets.modified`` event whenever a folder changes.

Statuses and bodies follow a real Infisical server (shared/reference/kms-real-server.md):
an expired or invalid token is 403 ``TokenError``, a revoked or missing one 401; an unknown
client id at login is 404; throttling is 500 with ``Retry-After``; a missing environment
lists empty; values are trimmed of spaces on write and batch answers echo them; a change
policy makes batch writes answer 200 with an approval request and write nothing.

    python -m tests.emulators.kms --port 8086 --seed seed.yaml
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import socket
import ssl
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from reconciler.model import SecretValue
from reconciler.sources.webhook import sign
from tests.emulators.kms_store import Store, StoreError, norm

LOGIN = "/api/v1/auth/universal-auth/login"
SECRETS = "/api/v4/secrets"
BATCH = "/api/v4/secrets/batch"


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int = 503
    times: int = 1  # -1: forever
    retry_after: str | None = None
    delay: float = 0.0
    drop: bool = False
    body: str | None = None
    #: with drop: act on the request first, then lose the answer
    after: bool = False


class KmsEmulator:
    """Start with ``with KmsEmulator() as kms:``; ``kms.url`` is the siteUrl."""

    def __init__(self, *, token_ttl: float = 3600.0, tls: Any = None, port: int = 0) -> None:
        self.store = Store()
        self.identities: dict[str, str] = {}
        self.token_ttl = token_ttl
        self.tokens: dict[str, float] = {}
        #: every token ever issued (tests scan outputs for them)
        self.issued: list[str] = []
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []
        self.webhooks: list[tuple[str, SecretValue]] = []
        self.deliveries: list[int] = []
        #: answer as for an identity that may list secrets but not read their values
        self.hide_values = False
        #: tokens revoked server-side (401, as opposed to expired: 403 TokenError)
        self.revoked: set[str] = set()
        #: a change policy on every environment: batch writes open approval requests instead
        self.approval_policy = False
        self.approvals: list[dict[str, Any]] = []
        #: (requests, per seconds) of the secret endpoints before the rate limiter answers 500
        self.rate_limit: tuple[int, float] | None = None
        self._recent: list[float] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._server.daemon_threads = True
        scheme = "http"
        if tls is not None:  # a trustme.CA
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
            self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
            scheme = "https"
        bound = self._server.server_address[1]
        self.url = f"{scheme}://127.0.0.1:{bound}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> KmsEmulator:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- test controls ---------------------------------------------------------------------------
    def add_identity(self, client_id: str, client_secret: str) -> None:
        self.identities[client_id] = client_secret

    def expire_tokens(self) -> None:
        """Expire every token early (a clock jump, a rotated server secret): 403 TokenError."""
        with self._lock:
            for token in self.tokens:
                self.tokens[token] = 0.0

    def revoke_tokens(self) -> None:
        """Revoke every token server-side: the next request gets a 401."""
        with self._lock:
            self.revoked.update(self.tokens)
            self.tokens.clear()

    def fault(self, method: str, path: str, status: int = 503, *, times: int = 1, retry_after: str | None = None,
              delay: float = 0.0, drop: bool = False, body: str | None = None, after: bool = False) -> None:
        with self._lock:
            self.faults.append(Fault(method, re.compile(path), status, times, retry_after, delay, drop, body, after))

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def count(self, method: str | None = None, path: str | None = None) -> int:
        with self._lock:
            return sum(1 for m, p in self.requests if (method is None or m == method) and (path is None or p == path))

    def calls(self) -> Counter[tuple[str, str]]:
        with self._lock:
            return Counter(self.requests)

    def subscribe(self, url: str, secret: SecretValue) -> None:
        """Send a signed ``secrets.modified`` event to ``url`` whenever a folder changes."""
        self.webhooks.append((url, secret))

    def put(self, project: str, env: str, path: str, key: str, value: str, **kw: Any) -> None:
        """Change a secret as a KMS user would (fires the webhooks)."""
        self.store.put(project, env, path, key, value, **kw)
        self.notify(project, env, path)

    def notify(self, project: str, env: str, path: str) -> None:
        body = json.dumps({
            "event": "secrets.modified",
            "project": {"workspaceId": project, "projectId": project, "environment": env, "secretPath": norm(path)},
            "timestamp": int(time.time() * 1000),
        }).encode()
        for url, secret in list(self.webhooks):
            header = sign(body, secret, int(time.time() * 1000))
            req = urllib.request.Request(url, data=body, method="POST", headers={
                "content-type": "application/json", "x-infisical-signature": header})
            try:
                with urllib.request.urlopen(req, timeout=5) as r:
                    self.deliveries.append(r.status)
            except urllib.error.HTTPError as e:
                self.deliveries.append(e.code)
            except OSError:
                self.deliveries.append(0)

    # -- request handling ------------------------------------------------------------------------
    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            self.requests.append((method, path))
            for f in self.faults:
                if f.method in (method, "*") and f.path.search(path) and f.times != 0:
                    f.times -= 1 if f.times > 0 else 0
                    return f
        return None

    def _refusal(self, header: str | None) -> tuple[int, Any] | None:
        """The real server's answer to a request it will not authenticate (None: it will)."""
        if not header or not header.startswith("Bearer "):
            return 401, {"statusCode": 401, "message": "Token missing", "error": "UnauthorizedError"}
        token = header[7:]
        with self._lock:
            expiry = self.tokens.get(token)
            revoked = token in self.revoked
        if revoked:
            return 401, {"statusCode": 401, "message": "No identity access token found", "error": "UnauthorizedError"}
        if expiry is None:
            return 403, {"statusCode": 403, "message": "invalid token", "error": "TokenError"}
        if expiry <= time.monotonic():
            return 403, {"statusCode": 403, "message": "Your token has expired. Please re-authenticate.",
                         "error": "TokenError"}
        return None

    def throttle(self, path: str) -> dict[str, str] | None:
        """Headers of a rate-limited answer when this request is over the limit."""
        if self.rate_limit is None or path == LOGIN:
            return None
        limit, window = self.rate_limit
        now = time.monotonic()
        with self._lock:
            self._recent = [t for t in self._recent if t > now - window]
            if len(self._recent) < limit:
                self._recent.append(now)
                return None
            reset = max(1, int(self._recent[0] + window - now + 1))
        return {"Retry-After": str(reset), "X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(reset)}

    def handle(self, method: str, path: str, query: dict[str, str], headers: Any, body: bytes) -> tuple[int, Any]:
        if path == LOGIN and method == "POST":
            try:
                data = json.loads(body)
                client_id, client_secret = data["clientId"], data["clientSecret"]
            except (ValueError, KeyError, TypeError):
                return 401, {"statusCode": 401, "message": "Invalid request body", "error": "ValidationFailure"}
            if client_id not in self.identities:
                return 404, {"statusCode": 404, "message": "Identity not found", "error": "NotFound"}
            if self.identities[client_id] != client_secret:
                return 401, {"statusCode": 401, "message": "Invalid credentials", "error": "UnauthorizedError"}
            token = secrets.token_urlsafe(24)
            with self._lock:
                self.tokens[token] = time.monotonic() + self.token_ttl
                self.issued.append(token)
            return 200, {"accessToken": token, "expiresIn": int(self.token_ttl),
                         "accessTokenMaxTTL": int(self.token_ttl) * 30, "tokenType": "Bearer"}
        refusal = self._refusal(headers.get("authorization"))
        if refusal is not None:
            return refusal
        try:
            if path == SECRETS and method == "GET":
                return 200, self.store.list_secrets(
                    query.get("projectId") or query.get("workspaceId", ""), query.get("environment", ""),
                    query.get("secretPath", "/"),
                    expand=query.get("expandSecretReferences") == "true",
                    imports=query.get("include_imports") == "true",
                    recursive=query.get("recursive") == "true",
                    view=query.get("viewSecretValue", "true") == "true" and not self.hide_values)
            if path == BATCH and method in ("POST", "PATCH", "DELETE"):
                data = json.loads(body)
                if self.approval_policy:
                    request = {"id": f"apr-{len(self.approvals) + 1}", "status": "open", "method": method,
                               "keys": [i.get("secretKey") for i in data.get("secrets") or []]}
                    self.approvals.append(request)
                    return 200, {"approval": request}
                done = self.store.batch(method, data)
                self.notify(data.get("projectId", ""), data["environment"], data.get("secretPath") or "/")
                return 200, {"secrets": done}
        except StoreError as e:
            return e.status, {"message": str(e), "error": "NotFound" if e.status == 404 else "BadRequest"}
        except ValueError:
            return 400, {"message": "invalid JSON"}
        return 404, {"message": f"no route {method} {path}"}


def _handler(emu: KmsEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *args: Any) -> None:
            return None

        def _serve(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            fault = emu._take_fault(self.command, url.path)
            limited = emu.throttle(url.path) if fault is None else None
            if limited is not None:
                self._reply(500, {"statusCode": 500, "message": "Something went wrong",
                                  "error": "InternalServerError"}, limited)
                return
            if fault is not None:
                if fault.delay:
                    time.sleep(fault.delay)
                if fault.drop:
                    if fault.after:
                        emu.handle(self.command, url.path, query, self.headers, body)
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                self._reply(fault.status, fault.body if fault.body is not None else {"message": "injected"}, headers)
                return
            status, payload = emu.handle(self.command, url.path, query, self.headers, body)
            self._reply(status, payload, {})

        def _reply(self, status: int, payload: Any, headers: dict[str, str]) -> None:
            data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json; charset=utf-8")
            self.send_header("content-length", str(len(data)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve

    return Handler


def seed(emu: KmsEmulator, data: dict[str, Any]) -> None:
    """Load ``{identities: {id: secret}, projects: {pid: {env: {path: {secrets: {K: v|{value,
    comment, metadata}}, imports: [{environment, secretPath}]}}}}}``."""
    for cid, csecret in (data.get("identities") or {}).items():
        emu.add_identity(str(cid), str(csecret))
    for pid, envs in (data.get("projects") or {}).items():
        for env, folders in envs.items():
            for path, content in folders.items():
                emu.store.folder(pid, env, path)
                for key, v in ((content or {}).get("secrets") or {}).items():
                    v = v if isinstance(v, dict) else {"value": v}
                    emu.store.put(pid, env, path, key, str(v["value"]), comment=v.get("comment", ""),
                                  metadata={str(a): str(b) for a, b in (v.get("metadata") or {}).items()})
            for path, content in folders.items():
                for imp in (content or {}).get("imports") or []:
                    emu.store.add_import(pid, env, path, imp["environment"], imp["secretPath"])


def main(argv: list[str] | None = None) -> None:
    import yaml

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=8086)
    p.add_argument("--seed", type=Path)
    args = p.parse_args(argv)
    emu = KmsEmulator(port=args.port)
    if args.seed:
        seed(emu, yaml.safe_load(args.seed.read_text()) or {})
    print(f"KMS emulator on {emu.url}", flush=True)
    emu._thread.start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        emu.stop()


if __name__ == "__main__":
    main()
