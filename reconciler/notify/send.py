"""Posting notifications from the daemon's loop without ever holding it up.

Each message is its own task on the loop (httpx's async client: no thread, no blocking
call), bounded by the Notifier's ``timeout`` and tried at most twice. A failure is logged
and dropped: a chat outage must not grow a queue or slow a reconcile. The URL is resolved
from its reference at send time and never logged (a webhook URL is a credential), nor is an
httpx error's text, which quotes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import socket
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from reconciler.engine.outcome import Outcome
from reconciler.errors import CredentialError
from reconciler.logging import get_logger
from reconciler.notify.events import Event, RateLimit, of_run, payload
from reconciler.specs import credentials
from reconciler.specs.model import Notifier, SecretSync, SpecSet
from reconciler.specs.scopes import describe_target

ATTEMPTS: Final = 2
#: the longest a receiver's Retry-After is honoured before the one retry
MAX_RETRY_AFTER: Final = 10.0


class Dispatcher:
    """Lives on the daemon's loop. ``specs`` gives the Notifiers in force (reloads apply)."""

    def __init__(self, specs: Callable[[], SpecSet | None], *, clock: Callable[[], float] = time.monotonic,
                 environ: Mapping[str, str] | None = None, retry_pause: float = 1.0,
                 counted: Callable[[str, str, str], None] = lambda notifier, event, result: None) -> None:
        """``counted(notifier, event, result)``: each message's fate (sent, failed, held_back),
        for the daemon's metrics: a Notifier that cannot send needs an alert of its own."""
        self._specs = specs
        self._counted = counted
        self._clock = clock
        self._environ = environ
        self._retry_pause = retry_pause
        self._limit = RateLimit()
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None
        self._host = socket.gethostname()
        self._log = get_logger(component="notify")

    def check(self) -> None:
        """After a (re)load: say now, not at the first failure, that a Notifier cannot send
        (its reference does not resolve, or holds no http(s) URL)."""
        specs = self._specs()
        for notifier in (specs.notifiers.values() if specs else ()):
            why = self._url(notifier)[1]
            if why is not None:
                self._log.warning("notify.unusable", notifier=notifier.name, reason=why)

    def _url(self, notifier: Notifier) -> tuple[str, None] | tuple[None, str]:
        try:
            url = credentials.resolve(notifier.url, environ=self._environ).reveal()
        except CredentialError as e:  # names the reference, never a value
            return None, str(e)
        unusable = f"{{{notifier.url.kind}: {notifier.url.name}}} does not hold a usable http(s) URL"
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return None, unusable
        try:  # what httpx refuses (a bad port, a line break) it refuses with the URL in its message
            httpx.URL(url)
        except httpx.InvalidURL:
            return None, unusable
        return url, None

    def after_run(self, sync: SecretSync, out: Outcome, failures_before: int, run_id: str) -> None:
        """A run finished: send what it raised to every Notifier that wants it. Never raises:
        the daemon's bookkeeping of the run (retries, status) comes after this call."""
        try:
            self._after_run(sync, out, failures_before, run_id)
        except Exception as e:
            self._log.error("notify.error", sync=sync.name, error_type=type(e).__name__)

    def _after_run(self, sync: SecretSync, out: Outcome, failures_before: int, run_id: str) -> None:
        specs = self._specs()
        if specs is None or not specs.notifiers:
            return
        try:
            target = describe_target(sync, specs.connections.get(sync.connection))
        except Exception:  # a description is a courtesy
            target = ""
        for event in of_run(out, failures_before=failures_before, run_id=run_id, target=target):
            for notifier in specs.notifiers.values():
                if notifier.wants(event.name, event.sync):
                    self._offer(notifier, event)

    def _offer(self, notifier: Notifier, event: Event) -> None:
        held = self._limit.allow((notifier.name, event.sync, event.name), self._clock(),
                                 notifier.min_interval_seconds)
        if held is None:
            self._log.debug("notify.held_back", notifier=notifier.name, notify_event=event.name, sync=event.sync)
            self._counted(notifier.name, event.name, "held_back")
            return
        body = payload(event, notifier=notifier.name, suppressed=held, host=self._host,
                       at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        task = asyncio.get_running_loop().create_task(self._post(notifier, event, body), name="notify")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, notifier: Notifier, event: Event, body: dict[str, Any]) -> None:
        sent = False
        try:
            sent = await self._send(notifier, event, body)
        finally:
            self._counted(notifier.name, event.name, "sent" if sent else "failed")

    async def _send(self, notifier: Notifier, event: Event, body: dict[str, Any]) -> bool:
        log = self._log.bind(notifier=notifier.name, notify_event=event.name, sync=event.sync, run_id=event.run_id)
        url, why = self._url(notifier)
        if url is None:
            log.error("notify.failed", reason=why)
            return False
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False)
        for attempt in range(1, ATTEMPTS + 1):
            wait = self._retry_pause
            try:
                resp = await self._client.post(url, json=body, timeout=notifier.timeout_seconds)
            except (httpx.HTTPError, httpx.InvalidURL) as e:  # InvalidURL is no HTTPError; the type only
                failure: dict[str, Any] = {"error_type": type(e).__name__}
            else:
                if resp.status_code < 300:
                    log.info("notify.sent", status=resp.status_code, attempts=attempt)
                    return True
                failure = {"status": resp.status_code}
                if resp.status_code not in (408, 429) and resp.status_code < 500:
                    log.error("notify.failed", attempts=attempt, **failure)  # the receiver said no: final
                    return False
                wait = max(wait, _retry_after(resp.headers.get("retry-after")))
            if attempt < ATTEMPTS:
                await asyncio.sleep(min(wait, MAX_RETRY_AFTER))
        log.error("notify.failed", attempts=ATTEMPTS, **failure)
        return False

    async def close(self, timeout: float = 2.0) -> None:
        """On shutdown: give messages in flight a moment, then drop them."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _retry_after(value: str | None) -> float:
    if not value:
        return 0.0
    with contextlib.suppress(ValueError):
        return max(0.0, float(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 0.0
    return max(0.0, (when - datetime.now(UTC)).total_seconds()) if when.tzinfo else 0.0
