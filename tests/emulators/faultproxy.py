"""A reverse proxy on 127.0.0.1 in front of an emulator (moto) that injects faults: an error
status with an AWS error code (and optional Retry-After), or a delay per request.

The daemon under test talks to the proxy exactly as to the service; botocore parses the
injected errors like any from the wire.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FaultProxy:
    def __init__(self, upstream: str, *, tls: Any = None) -> None:
        """``tls``: an ``ssl.SSLContext`` to serve HTTPS with (a private CA's certificate)."""
        self.upstream = urllib.parse.urlsplit(upstream)
        self._tls = tls
        self._lock = threading.Lock()
        self._fail_left: int | None = 0
        self._fail: tuple[int, str, float | None] = (500, "InternalFailure", None)
        self._ops: set[str] | None = None
        self.delay = 0.0
        self.requests: list[str] = []
        self.injected = 0
        self._server: ThreadingHTTPServer | None = None

    # -- control ------------------------------------------------------------------------------
    def fail(self, times: int | None = None, *, status: int = 500, code: str = "InternalFailure",
             retry_after: float | None = None, ops: set[str] | None = None) -> None:
        """The next ``times`` requests (None: every one until :meth:`heal`) of ``ops`` fail."""
        with self._lock:
            self._fail_left = times if times is not None else -1
            self._fail = (status, code, retry_after)
            self._ops = ops

    def heal(self) -> None:
        with self._lock:
            self._fail_left = 0

    def _should_fail(self, op: str) -> tuple[int, str, float | None] | None:
        with self._lock:
            self.requests.append(op)
            if self._fail_left == 0 or (self._ops is not None and op not in self._ops):
                return None
            if self._fail_left is not None and self._fail_left > 0:
                self._fail_left -= 1
            self.injected += 1
            return self._fail

    # -- server -------------------------------------------------------------------------------
    def start(self) -> str:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:
                return None

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                op = (self.headers.get("X-Amz-Target") or "").rpartition(".")[2] or self.command
                if proxy.delay:
                    time.sleep(proxy.delay)
                fault = proxy._should_fail(op)
                if fault is not None:
                    status, code, retry_after = fault
                    payload = json.dumps({"__type": code, "message": "injected by the test proxy"}).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/x-amz-json-1.1")
                    self.send_header("Content-Length", str(len(payload)))
                    if retry_after is not None:
                        self.send_header("Retry-After", f"{retry_after:g}")
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection(proxy.upstream.hostname or "127.0.0.1", proxy.upstream.port,
                                                  timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    self.send_response(resp.status)
                    for k, v in resp.getheaders():
                        if k.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                            self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    conn.close()

            do_GET = do_POST = do_PUT = do_DELETE = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if self._tls is not None:
            self._server.socket = self._tls.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True).start()
        host, port = self._server.server_address[:2]
        return f"{'https' if self._tls is not None else 'http'}://{host!s}:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
