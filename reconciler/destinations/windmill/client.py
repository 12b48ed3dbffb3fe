"""Windmill transport: httpx with timeouts, the bearer token, bounded retries that honour
``Retry-After``, one count per attempt, and errors in our tree with messages of our own.

Windmill has no official client that installs beside httpx>=0.27 with list and delete
(``windmill-api`` pins httpx<0.25; ``wmill`` has neither), so this speaks the REST API
(``{instanceUrl}/api/w/{workspace}/variables/*``) directly. Variable paths go into the URL
unencoded, as the server's catch-all routes expect. Error bodies are plain text that can
echo input, so a message is built from the status and a classification, never the body.
"""

from __future__ import annotations

import random
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from reconciler import calls, deadline, retryafter
from reconciler.destinations import errors
from reconciler.destinations.windmill.rules import DEFAULT_URL

KIND: Final = "windmill"
RETRYABLE: Final = frozenset({408, 429, 500, 502, 503, 504})
BACKOFF: Final = 0.5
BACKOFF_CAP: Final = 8.0

#: tests replace this to run on fake time
sleep: Callable[[float], None] = time.sleep


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any  # parsed JSON, or the text for text/plain answers
    headers: Mapping[str, str]

    @property
    def text(self) -> str:
        return self.body if isinstance(self.body, str) else ""


def api_base(instance_url: str | None) -> str:
    """``{instanceUrl}/api``; plain http is allowed (self-hosted instances, emulators)."""
    url = (instance_url or DEFAULT_URL).strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise errors.ConfigError("instanceUrl must be an http:// or https:// URL")
    return url + "/api"


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from ``Retry-After``: a number, or an HTTP date."""
    return retryafter.seconds(headers)

def classify(text: str) -> str:
    """A safe description of a Windmill 400 (the body itself is never shown)."""
    if "already exists" in text:
        return "already exists"
    if "proper_id" in text:
        return "not a valid Windmill path (u/<user>/... or f/<folder>/..., segments of letters, digits, '_', '-')"
    if "character varying(15000)" in text:
        return "value too large for Windmill (about 11 KB of plaintext at most for a secret)"
    if "character varying(10000)" in text:
        return "description too long for Windmill (10,000 characters at most)"
    if "character varying(255)" in text:
        return "path too long for Windmill (255 characters at most)"
    if "is_secret" in text:
        return "is_secret cannot change without the value"
    return "bad request"


def from_status(reply: Reply, op: str, key: str | None, workspace: str) -> errors.DestinationError:
    s = reply.status
    msg = f"{op} failed: HTTP {s}"
    if s == 401:
        return errors.AuthError(f"{msg}: Windmill refused the token (wrong or expired, or its user is not a "
                                f"member of workspace {workspace})", key=key, code="401")
    if s == 403:
        return errors.AuthError(f"{msg}: permission denied (the token's user may not write here)", key=key,
                                code="403")
    if s == 404:
        return errors.NotFound(f"{msg}: not found", key=key, code="404")
    if s == 429:
        return errors.Throttled(f"{msg} (retries exhausted)", retry_after=retry_after(reply.headers), key=key,
                                code="429")
    if s in RETRYABLE or s >= 500:
        return errors.Transient(msg, key=key, code=str(s))
    if s == 400:
        why = classify(reply.text)
        cls = errors.Conflict if why == "already exists" else errors.Permanent
        return cls(f"{msg}: {why}", key=key, code="400")
    return errors.Permanent(msg, key=key, code=str(s))


def _verify(ca_bundle: str | None) -> ssl.SSLContext | bool:
    if not ca_bundle:
        return True
    try:
        return ssl.create_default_context(cafile=str(ca_bundle))
    except (OSError, ssl.SSLError) as exc:
        raise errors.ConfigError(f"caBundle {ca_bundle} cannot be read as PEM certificates: "
                                 f"{type(exc).__name__}") from None


class WindmillHttp:
    """Requests to one workspace's variables with our retry policy.

    Retried: 408/429/5xx and transport errors, up to ``attempts`` tries in all, waiting what
    ``Retry-After`` says (a wait over ``max_wait`` is raised as Throttled for the caller's
    scheduler instead of slept). Every Windmill variable write is safe to resend: a create
    that landed answers "already exists" (the caller then updates), an update or a delete
    simply happens again.
    """

    def __init__(self, instance_url: str | None, workspace: str, token: str | None, *,
                 ca_bundle: str | None = None, attempts: int = 5, max_wait: float = 60.0,
                 timeout: float = 30.0, connect_timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        if not token:
            raise errors.ConfigError("the Windmill connection needs credentials.token")
        if not workspace:
            raise errors.ConfigError("destinationConfig.workspace is required")
        self.workspace = workspace
        self.base = f"{api_base(instance_url)}/w/{workspace}/variables"
        self.host = urlsplit(self.base).netloc
        self.attempts = max(1, attempts)
        self.max_wait = max_wait
        self._client = httpx.Client(
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            verify=_verify(ca_bundle), timeout=httpx.Timeout(timeout, connect=connect_timeout),
            follow_redirects=False, transport=transport)

    def call(self, method: str, op: str, path: str, *, key: str | None = None,
             params: Mapping[str, Any] | None = None, json: Any = None,
             expect: tuple[int, ...] = (200,), answer: type | None = None) -> Reply:
        """One request (``path`` below ``.../variables/``), retried as the class says; a reply
        with a status in ``expect`` is returned, any other final answer raised. ``answer``:
        the JSON type a success must carry (a list, a string); anything else is not Windmill
        speaking (a proxy's page, a wrong URL) and is an error, never an empty answer."""
        url = f"{self.base}/{path}"
        for attempt in range(1, self.attempts + 1):
            try:
                response = self._client.request(method, url, params=params, json=json)
            except httpx.TransportError as exc:
                calls.record(KIND, op, "connection-error")
                if "CERTIFICATE_VERIFY_FAILED" in str(exc):
                    raise errors.ConfigError(f"{op} failed: Windmill's TLS certificate is not trusted (a private "
                                             "CA needs the connection's caBundle)") from None
                if attempt == self.attempts:
                    raise errors.Transient(f"{op} failed: {type(exc).__name__} (Windmill at {self.host} "
                                           "unreachable or the connection dropped)", key=key) from None
                wait: float | None = None
            else:
                reply = _reply(response)
                calls.record(KIND, op, "ok" if reply.status < 400 else str(reply.status))
                if reply.status in expect:
                    if 200 <= reply.status < 300:
                        _check_answer(reply, op, key, answer)
                    return reply
                if reply.status not in RETRYABLE or attempt == self.attempts:
                    raise from_status(reply, op, key, self.workspace)
                wait = retry_after(reply.headers)
            if wait is None:
                wait = min(BACKOFF_CAP, BACKOFF * 2 ** (attempt - 1)) * random.uniform(0.8, 1.0)
            elif wait > self.max_wait:
                raise errors.Throttled(f"{op} failed: Windmill asks to wait {wait:g}s", retry_after=wait, key=key)
            deadline.pause(op, attempt + 1, wait, sleep, destination=KIND)
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        self._client.close()


def _check_answer(reply: Reply, op: str, key: str | None, answer: type | None) -> None:
    ctype = reply.headers.get("content-type", "no content type").split(";")[0]
    if ctype == "text/html" or (answer is not None and not isinstance(reply.body, answer)):
        raise errors.Permanent(f"{op} failed: the endpoint answered {reply.status} with a body that is not a "
                               f"Windmill answer ({ctype}); is instanceUrl right, or is a proxy in the way?", key=key)


def _reply(response: httpx.Response) -> Reply:
    body: Any = response.text
    if response.headers.get("content-type", "").startswith("application/json"):
        try:
            body = response.json()
        except ValueError:
            body = None
    return Reply(response.status_code, body, dict(response.headers))
