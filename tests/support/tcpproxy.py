"""A TCP proxy on 127.0.0.1 that a test can slow down, watch and cut (its own thread and loop).

``sever()`` models a network partition between a client and its server: from then on nothing
is forwarded either way, and new connections are accepted and never answered. Each server-side
connection is then closed ``free_after`` seconds after the last byte forwarded to it — the
earliest a server with TCP keepalives (idle + interval x count) could notice the client is
gone and end the session — and its client side with it. ``delay`` holds each client-to-server
chunk back that long (a slow destination). ``requests`` records, for HTTP clients, each
request's ``X-Amz-Target`` operation and secret name with the time it was forwarded: which
writes a client made, and when (never a value).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import time
from dataclasses import dataclass, field

_TARGET = re.compile(rb"(?im)^x-amz-target:\s*secretsmanager\.(\w+)\s*$")
_LENGTH = re.compile(rb"(?im)^content-length:\s*(\d+)\s*$")


@dataclass
class _Pair:
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter | None = None
    last_forward: float = field(default_factory=time.monotonic)
    buffer: bytes = b""


class Proxy:
    def __init__(self, upstream_port: int, *, delay: float = 0.0) -> None:
        self.upstream_port = upstream_port
        self.delay = delay
        self.port = 0
        #: (monotonic time forwarded, operation, secret name) of each HTTP request seen
        self.requests: list[tuple[float, str, str]] = []
        self.severed_at: float | None = None
        #: when each server-side connection open at the cut was closed (monotonic)
        self.freed: list[float] = []
        self._pairs: list[_Pair] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="tcp-proxy", daemon=True)
        self._thread.start()
        self._ready.wait(5)

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._closing = asyncio.Event()
        server = self._loop.run_until_complete(asyncio.start_server(self._accept, "127.0.0.1", 0))
        self.port = int(server.sockets[0].getsockname()[1])
        self._ready.set()
        self._loop.run_forever()
        server.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pair = _Pair(writer)
        self._pairs.append(pair)
        if self.severed_at is not None:  # a partition: the connection is never answered
            await self._nap(self.free_after)
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        pair.server = up_writer
        await asyncio.gather(self._pump(reader, up_writer, pair, upstream=True),
                             self._pump(up_reader, writer, pair, upstream=False), return_exceptions=True)
        for w in (writer, up_writer):
            w.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pair: _Pair, *,
                    upstream: bool) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                return
            if upstream and self.delay:
                await asyncio.sleep(self.delay)
            if self.severed_at is not None:
                continue  # dropped: the far side hears nothing
            writer.write(data)
            await writer.drain()
            if upstream:
                pair.last_forward = time.monotonic()
                self._sniff(pair, data)

    def _sniff(self, pair: _Pair, data: bytes) -> None:
        pair.buffer += data
        while True:
            head, sep, rest = pair.buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            m = _LENGTH.search(head)
            length = int(m.group(1)) if m else 0
            if len(rest) < length:
                return
            body, pair.buffer = rest[:length], rest[length:]
            op = _TARGET.search(head)
            if op is None:
                continue
            name = ""
            with contextlib.suppress(ValueError, AttributeError):
                doc = json.loads(body)
                name = str(doc.get("Name") or doc.get("SecretId") or "")
            self.requests.append((pair.last_forward, op.group(1).decode(), name))

    def sever(self, free_after: float) -> None:
        self.free_after = free_after

        async def cut() -> None:
            self.severed_at = time.monotonic()
            for pair in list(self._pairs):
                if pair.server is not None:
                    self._loop.create_task(self._free(pair, free_after))

        asyncio.run_coroutine_threadsafe(cut(), self._loop).result(5)

    async def _nap(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    async def _free(self, pair: _Pair, free_after: float) -> None:
        await self._nap(max(0.0, pair.last_forward + free_after - time.monotonic()))
        if self._closing.is_set():
            return
        if pair.server is not None and not pair.server.is_closing():
            self.freed.append(time.monotonic())
        for w in (pair.server, pair.client):
            if w is not None:
                w.close()

    def close(self) -> None:
        async def stop() -> None:
            self._closing.set()
            for pair in self._pairs:
                for w in (pair.server, pair.client):
                    if w is not None:
                        w.close()
            await asyncio.sleep(0.2)  # the pumps see their connections end

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
