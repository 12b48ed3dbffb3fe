"""A Hanzo KMS (Infisical-compatible) API emulator on 127.0.0.1, for tests and the demo.

Endpoints: universal-auth login (expiring tokens), ``GET /api/v4/secrets`` (imports,
recursion, reference expansion), batch create/update/delete. Every request is counted;
faults (status, Retry-After, delay, dropped connection) are injected per (method, path);
a webhook sender POSTs a signed ``secrets.modified`` event whenever a folder changes.

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
        """Revoke every token (as if they expired server-side): the next request gets a 401."""
        with self._lock:
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

    def _authorised(self, header: str | None) -> bool:
        if not header or not header.startswith("Bearer "):
            return False
        with self._lock:
            expiry = self.tokens.get(header[7:])
        return expiry is not None and expiry > time.monotonic()

    def handle(self, method: str, path: str, query: dict[str, str], headers: Any, body: bytes) -> tuple[int, Any]:
        if path == LOGIN and method == "POST":
            try:
                data = json.loads(body)
                ok = self.identities.get(data["clientId"]) == data["clientSecret"]
            except (ValueError, KeyError, TypeError):
                return 400, {"message": "invalid login body"}
            if not ok:
                return 401, {"message": "invalid credentials"}
            token = secrets.token_urlsafe(24)
            with self._lock:
                self.tokens[token] = time.monotonic() + self.token_ttl
                self.issued.append(token)
            return 200, {"accessToken": token, "expiresIn": int(self.token_ttl),
                         "accessTokenMaxTTL": int(self.token_ttl) * 30, "tokenType": "Bearer"}
        if not self._authorised(headers.get("authorization")):
            return 401, {"message": "token invalid or expired"}
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
