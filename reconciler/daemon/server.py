"""A deliberately small HTTP/1.1 server on the daemon's event loop: health, metrics, status
and webhooks. One request per connection, bounded sizes and time, no keep-alive.

Serving on the loop itself makes ``/healthz`` meaningful: an answer proves the loop turns.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from reconciler.logging import get_logger

MAX_BODY = 64 * 1024
MAX_HEADERS = 100
READ_TIMEOUT = 10.0


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: Mapping[str, str]  # names lower-cased
    body: bytes = b""
    query: str = ""  # after the "?", undecoded
    peer: str = ""  # the client's IP address


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: Mapping[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Awaitable[Response]]


class BadRequest(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(HTTPStatus(status).phrase)
        self.status = status


async def _read(reader: asyncio.StreamReader) -> Request:
    line = (await reader.readline()).decode("latin-1").rstrip("\r\n")
    parts = line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(400)
    method, target = parts[0], parts[1]
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS + 1):
        raw = (await reader.readline()).decode("latin-1")
        if raw in ("\r\n", "\n", ""):
            break
        name, sep, value = raw.partition(":")
        if not sep:
            raise BadRequest(400)
        headers[name.strip().lower()] = value.strip()
    else:
        raise BadRequest(431)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise BadRequest(411)
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        raise BadRequest(400) from None
    if length < 0:
        raise BadRequest(400)
    if length > MAX_BODY:
        raise BadRequest(413)
    body = await reader.readexactly(length) if length else b""
    path, _, query = target.partition("?")
    return Request(method.upper(), path, headers, body, query)


def _encode(resp: Response) -> bytes:
    phrase = HTTPStatus(resp.status).phrase
    head = [f"HTTP/1.1 {resp.status} {phrase}", f"Content-Type: {resp.content_type}",
            f"Content-Length: {len(resp.body)}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in resp.headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + resp.body


class HttpServer:
    def __init__(self, host: str, port: int, handler: Handler) -> None:
        self.host, self.port = host, port
        self._handler = handler
        self._server: asyncio.Server | None = None
        self._log = get_logger(component="http")

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        sock = self._server.sockets[0].getsockname()
        self.port = int(sock[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                request = await asyncio.wait_for(_read(reader), READ_TIMEOUT)
                peer = writer.get_extra_info("peername")
                request = dataclasses.replace(request, peer=str(peer[0]) if peer else "")
                response = await self._dispatch(request)
            except BadRequest as e:
                response = Response(e.status, f"{HTTPStatus(e.status).phrase}\n".encode())
            except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                response = Response(400, b"Bad Request\n")
            writer.write(_encode(response))
            await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _dispatch(self, request: Request) -> Response:
        try:
            return await self._handler(request)
        except Exception as e:  # a handler bug answers 500 and is logged, the server lives on
            self._log.error("http.error", path=request.path, error_type=type(e).__name__)
            return Response(500, b"Internal Server Error\n")


def json_response(status: int, data: Any) -> Response:
    import json

    return Response(status, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode(),
                    "application/json")
