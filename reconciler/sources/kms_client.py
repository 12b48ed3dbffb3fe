"""HTTP client for a Hanzo KMS (Infisical-compatible) API: login, token cache, retries.

Why its own module: every call needs the same three things — a bearer token renewed before
it expires (and once more after a 401), bounded retries that honour ``Retry-After``, and
error messages built from our own words, the status and the request path. A response body
is never put in an error: an API error can echo a secret value (upstream's Axios bodies in
``lastSyncMessage`` are exactly that leak).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import random
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx

from reconciler import calls, deadline, retryafter
from reconciler.model import SecretValue
from reconciler.sources.errors import SourceError

DEFAULT_SITE_URL: Final = "https://app.kms.hanzo.ai"
LOGIN_PATH: Final = "/api/v1/auth/universal-auth/login"
#: statuses worth another attempt: throttled, or the server (or a proxy) failed
RETRY_STATUSES: Final = frozenset({429, 500, 502, 503, 504})
#: a Retry-After longer than this is not waited out inside one reconcile; the daemon retries later
MAX_WAIT_SECONDS: Final = 30.0


class KmsError(SourceError):
    """A KMS request failed. ``status`` is the HTTP status (None: no response)."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class KmsAuthError(KmsError):
    """Login refused, or a fresh token still refused."""


def _token_refused(response: httpx.Response) -> bool:
    """The server wants a new token: 401, or (Infisical, for an expired or invalid token) 403
    with ``"error": "TokenError"``. A 403 for a missing permission is not one."""
    if response.status_code == 401:
        return True
    if response.status_code != 403:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("error") == "TokenError"


def _throttled(response: httpx.Response) -> bool:
    """Throttled, so surely not processed: 429, or Infisical's rate limiter, which answers 500
    "Something went wrong" with a Retry-After (and x-ratelimit-*) header."""
    status = response.status_code
    return status == 429 or (status == 500 and ("retry-after" in response.headers
                                                or "x-ratelimit-remaining" in response.headers))


class TokenCache:
    """Access tokens by (site, identity, secret digest), shared by every client of a process:
    the engine opens a source per sync run, and a login per run would be most of the traffic."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, str, str], tuple[SecretValue, float]] = {}

    @staticmethod
    def key(site: str, client_id: str, client_secret: SecretValue) -> tuple[str, str, str]:
        digest = hmac.new(_CACHE_KEY, client_secret.reveal().encode(), hashlib.sha256).hexdigest()
        return (site, client_id, digest)

    def get(self, key: tuple[str, str, str], now: float) -> SecretValue | None:
        with self._lock:
            hit = self._tokens.get(key)
        return hit[0] if hit is not None and now < hit[1] else None

    def put(self, key: tuple[str, str, str], token: SecretValue, renew_at: float) -> None:
        with self._lock:
            self._tokens[key] = (token, renew_at)

    def drop(self, key: tuple[str, str, str], token: SecretValue) -> None:
        with self._lock:
            if key in self._tokens and self._tokens[key][0] == token:
                del self._tokens[key]

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


_CACHE_KEY = os.urandom(32)
#: the process-wide cache :func:`reconciler.sources.kms.open_kms` uses
TOKENS = TokenCache()


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    backoff: float = 0.5  # first delay; doubles per attempt, with jitter
    max_backoff: float = 8.0
    max_wait: float = MAX_WAIT_SECONDS


def _retry_after(response: httpx.Response, now: Callable[[], float] = time.time) -> float | None:
    return retryafter.seconds(response.headers, now)

def _describe(status: int) -> str:
    return {
        400: "the request was refused as invalid",
        401: "not authorised",
        403: "the identity lacks permission",
        404: "not found (project, environment or folder)",
        409: "conflict",
        429: "throttled",
    }.get(status, "server error" if status >= 500 else "request failed")


class KmsClient:
    """One identity's session with one KMS site. Not thread-safe; one per source."""

    def __init__(
        self,
        site_url: str,
        client_id: str,
        client_secret: SecretValue,
        *,
        ca_bundle: str | None = None,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
        transport: httpx.BaseTransport | None = None,
        token_cache: TokenCache | None = None,
    ) -> None:
        self.site_url = site_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._retry = retry or RetryPolicy()
        self._sleep, self._clock, self._rng = sleep, clock, rng
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else True
        self._http = httpx.Client(
            base_url=self.site_url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            verify=verify,
            transport=transport,
            follow_redirects=False,
            headers={"user-agent": "reconciler"},
        )
        self._cache = token_cache if token_cache is not None else TokenCache()
        self._cache_key = TokenCache.key(self.site_url, client_id, client_secret)
        self.logins = 0

    def __repr__(self) -> str:
        return f"KmsClient({self.site_url!r}, client_id={self._client_id!r})"

    # -- token ---------------------------------------------------------------------------------
    def _login(self) -> SecretValue:
        body = {"clientId": self._client_id, "clientSecret": self._client_secret.reveal()}
        response = self._send("POST", LOGIN_PATH, json=body, auth=False, unsafe=False)
        if response.status_code in (400, 401, 403, 404):
            raise KmsAuthError(
                f"KMS login at {self.site_url} refused ({response.status_code}): "
                "check the connection's clientId and clientSecret", response.status_code)
        self._raise_for(response, "POST", LOGIN_PATH)
        try:
            data = response.json()
            token, expires_in = data["accessToken"], float(data.get("expiresIn") or 0)
        except (ValueError, KeyError, TypeError):
            raise KmsAuthError(f"KMS login at {self.site_url}: the response is not a login response") from None
        if not isinstance(token, str) or not token:
            raise KmsAuthError(f"KMS login at {self.site_url}: the response holds no access token")
        self.logins += 1
        # renew a little early: a token that expires in flight costs a 401 and a second login
        margin = min(60.0, expires_in * 0.2)
        renew_at = self._clock() + expires_in - margin if expires_in > 0 else float("inf")
        self._cache.put(self._cache_key, SecretValue(token), renew_at)
        return SecretValue(token)

    def _bearer(self) -> SecretValue:
        cached = self._cache.get(self._cache_key, self._clock())
        return cached if cached is not None else self._login()

    # -- requests ------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        unsafe: bool = False,
    ) -> Any:
        """Send an authenticated request and return its JSON body.

        ``unsafe`` marks a request that must not be repeated once the server may have acted on
        it (a batch create): it is retried only when it surely was not processed (throttled, or
        no connection at all).
        """
        for attempt in (1, 2):
            token = self._bearer()
            response = self._send(method, path, params=params, json=json, token=token, unsafe=unsafe)
            if not _token_refused(response):
                break
            self._cache.drop(self._cache_key, token)  # revoked or expired early: log in again, once
            if attempt == 2:
                status = response.status_code
                raise KmsAuthError(
                    f"KMS {method} {path}: the token was refused ({status}) even after logging in again; "
                    "check the identity's access to this project", status)
        self._raise_for(response, method, path)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise KmsError(f"KMS {method} {path}: the response is not JSON ({response.status_code})",
                           response.status_code) from None

    def _raise_for(self, response: httpx.Response, method: str, path: str) -> None:
        status = response.status_code
        if status < 400:
            return
        after = _retry_after(response) if status in RETRY_STATUSES else None
        wait = f"; retry after {after:.0f}s" if after is not None else ""
        what = "throttled" if _throttled(response) else _describe(status)
        raise KmsError(f"KMS {method} {path}: {what} ({status}){wait}", status, after)

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        token: SecretValue | None = None,
        auth: bool = True,
        unsafe: bool,
    ) -> httpx.Response:
        """One logical request with bounded retries; returns the last response."""
        headers = {"authorization": f"Bearer {token.reveal()}"} if auth and token is not None else {}
        policy = self._retry
        call = f"{method} {path}"
        for attempt in range(1, policy.max_attempts + 1):
            last = attempt == policy.max_attempts
            try:
                response = self._http.request(method, path, params=params, json=json, headers=headers)
            except httpx.TransportError as e:
                sent = not isinstance(e, httpx.ConnectError | httpx.ConnectTimeout)
                calls.record("kms", call, "error")
                if last or (unsafe and sent):
                    what = "timed out" if isinstance(e, httpx.TimeoutException) else "connection failed"
                    raise KmsError(f"KMS {call}: {what} ({type(e).__name__}) at {self.site_url}") from None
                self._wait(self._backoff(attempt), call, attempt)
                continue
            status = response.status_code
            calls.record("kms", call, "ok" if status < 400 else str(status))
            retryable = _throttled(response) or (status in RETRY_STATUSES and not unsafe)
            if not retryable or last:
                return response
            after = _retry_after(response)
            if after is not None and after > policy.max_wait:
                return response  # the caller reports the wait; the daemon's retry takes it from there
            self._wait(after if after is not None else self._backoff(attempt), call, attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait(self, seconds: float, call: str, attempt: int) -> None:
        """Wait before the next attempt, saying so; give up instead when the sync run's
        deadline would pass (reconciler/deadline.py)."""
        deadline.pause(f"KMS {call}", attempt + 1, seconds, self._sleep, event="source.retry", component="kms")

    def _backoff(self, attempt: int) -> float:
        base = min(self._retry.max_backoff, self._retry.backoff * 2 ** (attempt - 1))
        return float(base / 2 + base / 2 * self._rng())  # "equal jitter": never zero, never in lockstep

    def close(self) -> None:
        self._http.close()
