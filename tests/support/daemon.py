"""Run the daemon in-process on its own thread, as the tests' counterpart of `reconciler run`.

The test thread writes files and asserts; the daemon's loop runs beside it. Every log line
is kept (JSON, debug level) so a test can assert on events and scan them for canaries.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import replace
from typing import Any, TypeVar

from reconciler.daemon.config import DaemonConfig
from reconciler.daemon.daemon import Daemon
from reconciler.daemon.systemd import Notifier
from reconciler.logging import configure
from tests.support.canary import find_leaks
from tests.support.cli import Workspace

T = TypeVar("T")


class ThreadSafeBuffer(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def write(self, s: str) -> int:
        with self._lock:
            return super().write(s)

    def text(self) -> str:
        with self._lock:
            return self.getvalue()


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class DaemonHarness:
    def __init__(self, ws: Workspace, *, loader: Any = None, notifier: Notifier | None = None,
                 sources: Any = None, destinations: Any = None, **overrides: Any) -> None:
        self.ws = ws
        self.logs = ThreadSafeBuffer()
        configure("json", "debug", stream=self.logs)
        config = DaemonConfig(spec_dir=ws.specs, state_dir=ws.state, listen=("127.0.0.1", 0),
                              install_signals=False, watch_step_ms=10, watch_debounce_ms=200,
                              shutdown_timeout=10.0)
        self.config = replace(config, **overrides)
        kwargs: dict[str, Any] = {"notifier": notifier or Notifier(""), "rand": lambda: 0.5}
        if loader is not None:
            kwargs["loader"] = loader
        if sources is not None:
            kwargs["sources"] = sources
        if destinations is not None:
            kwargs["destinations"] = destinations
        self.daemon = Daemon(self.config, **kwargs)
        self.code: int | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="daemon-under-test", daemon=True)

    def _main(self) -> None:
        try:
            self.code = asyncio.run(self.daemon.run())
        except BaseException as e:
            self.error = e

    def start(self, *, ready: bool = True) -> DaemonHarness:
        self._thread.start()
        wait_until(lambda: self.daemon.ready or self.error is not None or (not ready and self.daemon.specs),
                   15, "the daemon to become ready")
        if self.error is not None:
            raise self.error
        return self

    def stop(self, timeout: float = 15.0) -> int | None:
        self.daemon.request_stop()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "daemon did not stop"
        if self.error is not None:
            raise self.error
        return self.code

    # -- talking to it ------------------------------------------------------------------------
    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 15.0) -> T:
        """Run a coroutine on the daemon's loop and wait for its result."""
        loop = self.daemon._loop
        assert loop is not None
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    def on_loop(self, fn: Callable[[], T], timeout: float = 15.0) -> T:
        async def wrapped() -> T:
            return fn()

        return self.call(wrapped(), timeout)

    def idle(self) -> bool:
        return self.on_loop(self.daemon.runner.idle)

    def wait_idle(self, timeout: float = 15.0) -> None:
        wait_until(self.idle, timeout, "the daemon to finish its runs")

    def http(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
             *, token: bool = True) -> tuple[int, bytes, dict[str, str]]:
        """A request to the daemon; the run endpoints get its control token, as `reconciler
        trigger` sends it (``token=False``: as a client without it)."""
        from reconciler.daemon import control

        server = self.daemon.server
        assert server is not None
        headers = dict(headers or {})
        if token and path.startswith(("/syncs/", "/runs/")):
            headers.update(control.header(control.read(self.daemon.config.state_dir)))
        req = urllib.request.Request(f"http://127.0.0.1:{server.port}{path}", data=body or None, method=method,
                                     headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read(), dict(e.headers)

    def cli(self, *args: str) -> Any:
        """Run a CLI command beside the daemon (it reconfigures logging; take the logs back);
        `trigger` reads this daemon's control token from its state directory."""
        if args and args[0] == "trigger" and "--state-dir" not in args:
            args = (*args, "--state-dir", str(self.daemon.config.state_dir))
        try:
            return self.ws.run(*args)
        finally:
            configure("json", "debug", stream=self.logs)

    # -- what it said -------------------------------------------------------------------------
    def events(self, name: str | None = None, **match: Any) -> list[dict[str, Any]]:
        out = []
        for line in self.logs.text().splitlines():
            event = json.loads(line)  # every line is one JSON object
            if name is not None and event.get("event") != name:
                continue
            if all(event.get(k) == v for k, v in match.items()):
                out.append(event)
        return out

    def leaks(self) -> list[str]:
        from tests.support.canary import scan_tree

        found = find_leaks([self.logs.text()])
        if self.ws.state.exists():
            found += scan_tree(self.ws.state)
        return found


@contextlib.contextmanager
def harnesses(ws: Workspace) -> Iterator[Callable[..., DaemonHarness]]:
    """A factory of started daemons on ``ws``. Afterwards each must stop gracefully (exit 0)
    and no secret value may have reached its logs, the CLI's output or the state directory."""
    started: list[DaemonHarness] = []

    def make(**kw: Any) -> DaemonHarness:
        h = DaemonHarness(ws, **kw)
        started.append(h)
        return h.start()

    yield make
    for h in started:
        assert h.stop() == 0
        assert h.leaks() == [] and ws.leaks() == [], "a secret value reached output, logs or state"
