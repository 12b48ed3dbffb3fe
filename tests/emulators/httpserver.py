"""A threaded HTTP(S) server on 127.0.0.1 with a request log and fault injection: the base
every emulator of a destination API builds on (tests only, never shipped).

Notes from test-infrastructure.md §3 that shape this file: the handler sets
``disable_nagle_algorithm`` (44 ms -> 2 ms per request), the TLS handshake happens in the
request thread (a stalled client never blocks ``accept``), and :meth:`HttpsEmulator.authorize`
answers before a request body is looked at. Pass ``ca=None`` for plain HTTP (self-hosted
services and private endpoints allow it).
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Fault:
    """Answer the next ``times`` requests matching (method, path regex) differently.

    ``drop``: "before" closes the connection without touching state; "after" runs the
    operation, then closes without answering (the client cannot tell whether it landed).
    ``status`` answers instead of the service without running the operation (a 429 or a
    gateway error), unless ``process``: then the operation runs and its answer is lost.
    """

    method: str | None = None
    path: str = ".*"
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    delay: float = 0.0
    drop: str | None = None
    process: bool = False
    times: int = 1

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and re.fullmatch(self.path, path) is not None


@dataclass(frozen=True)
class Record:
    method: str
    path: str
    query: str
    status: int | None  # None: dropped
    authorized: bool


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class HttpsEmulator:
    """Base: TLS, threading, request log, faults. Subclasses implement :meth:`handle`."""

    def __init__(self, ca: Any, *, port: int = 0) -> None:
        self.ca = ca
        self._port = port
        self.log: list[Record] = []
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> HttpsEmulator:
        emulator = self

        class Handler(_Handler):
            owner = emulator

        server = _Server(("127.0.0.1", self._port), Handler)
        if self.ca is not None:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
            server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        scheme = "https" if self.ca is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def write_ca(self, path: Path) -> Path:
        self.ca.cert_pem.write_to_path(str(path))
        return path

    # -- faults and counts ---------------------------------------------------------------------
    def inject(self, fault: Fault | None = None, **kw: Any) -> Fault:
        f = fault or Fault(**kw)
        with self._lock:
            self.faults.append(f)
        return f

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for f in self.faults:
                if f.times > 0 and f.matches(method, path):
                    f.times -= 1
                    return f
        return None

    def record(self, rec: Record) -> None:
        with self._lock:
            self.log.append(rec)

    def clear(self) -> None:
        with self._lock:
            self.log.clear()
            self.faults.clear()

    def count(self, method: str | None = None, path: str = ".*", *, authorized: bool | None = True) -> int:
        with self._lock:
            return sum(1 for r in self.log
                       if (method is None or r.method == method) and re.fullmatch(path, r.path)
                       and (authorized is None or r.authorized == authorized))

    # -- the service ---------------------------------------------------------------------------
    def authorize(self, method: str, path: str, headers: Mapping[str, str]) -> Reply | None:
        """None to proceed; a Reply to answer before the body is read."""
        return None

    def authenticate(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply | None:
        """None to proceed; a Reply to refuse once the body is read (a request signature that
        covers the body). ``target`` is the path and query exactly as the request line sent them."""
        return None

    def handle(self, method: str, path: str, query: dict[str, str], headers: Mapping[str, str],
               body: bytes) -> Reply:
        raise NotImplementedError

    def fault_body(self, status: int) -> Any:
        """The body an injected status carries: the service's own error shape."""
        return {"error": {"code": "Injected", "message": f"injected status {status}"}}

    def fault_headers(self, status: int) -> dict[str, str]:
        """Headers an injected status carries (its Content-Type); a Fault's own headers win."""
        return {}

    def response_headers(self) -> dict[str, str]:
        """Headers every answer carries (a service version, a request id)."""
        return {}


class _Handler(BaseHTTPRequestHandler):
    owner: HttpsEmulator
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(30)
        if isinstance(self.connection, ssl.SSLSocket):
            try:
                self.connection.do_handshake()
            except (ssl.SSLError, OSError):
                self.close_connection = True

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ssl.SSLError, ConnectionError, TimeoutError, OSError):
            self.close_connection = True

    def do_GET(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_OPTIONS(self) -> None:  # Azure DevOps' location discovery
        self._serve()

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        owner = self.owner
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        method = self.command
        challenge = owner.authorize(method, path, headers)
        if challenge is not None:
            self._body()  # drained, never parsed
            owner.record(Record(method, path, parts.query, challenge.status, False))
            self._send(challenge)
            return
        body = self._body()
        refusal = owner.authenticate(method, self.path, headers, body)
        if refusal is not None:
            owner.record(Record(method, path, parts.query, refusal.status, False))
            self._send(refusal)
            return
        fault = owner.take_fault(method, path)
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is not None and fault.drop == "before":
            owner.record(Record(method, path, parts.query, None, True))
            self._drop()
            return
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        skip = fault is not None and fault.status is not None and not fault.process and fault.drop is None
        reply = Reply(0) if skip else owner.handle(method, path, query, headers, body)
        if fault is not None and fault.drop == "after":
            owner.record(Record(method, path, parts.query, None, True))
            self._drop()
            return
        if fault is not None and fault.status is not None:
            reply = Reply(fault.status, fault.body if fault.body is not None else owner.fault_body(fault.status),
                          {**owner.fault_headers(fault.status), **fault.headers})
        elif fault is not None and fault.headers:
            reply.headers.update(fault.headers)
        owner.record(Record(method, path, parts.query, reply.status, True))
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        if reply.body is None:
            data = b""
        elif isinstance(reply.body, bytes):
            data = reply.body
        else:
            data = json.dumps(reply.body).encode()
        self.send_response(reply.status)
        ctype = reply.headers.get("Content-Type", "application/json; charset=utf-8")
        if data:
            self.send_header("Content-Type", ctype)
        for k, v in reply.headers.items():
            if k.lower() != "content-type":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        for k, v in self.owner.response_headers().items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.connection.close()
        except OSError:
            pass


def wait_for_stop() -> None:
    """An emulator run as a program (`python -m tests.emulators.X`) serves until SIGTERM or
    Ctrl-C; the caller then stops its servers."""
    import signal

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
