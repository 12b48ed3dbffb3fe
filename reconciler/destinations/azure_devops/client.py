"""Azure DevOps REST transport: credentials, httpx, request counting, retries, errors.

Why not Microsoft's ``azure-devops`` SDK: it is msrest-based and in maintenance mode, it
spends two calls on location discovery (and caches them on disk), and its retry policy is
not ours (it ignores Retry-After on writes and retries nothing but reads). The routes it
would discover are fixed for variable groups and projects, so we call them directly
(protocols.md §2) with ``api-version=7.1`` in the query.

Every request carries ``X-TFS-FedAuthRedirect: Suppress``: without it a wrong PAT is
answered with ``203`` and an HTML sign-in page instead of a 401. Error messages are ours,
built from the status and the service's ``typeKey``; a response body is never quoted.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import random
import re
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote, urlsplit

import httpx

from reconciler import calls, deadline, retryafter
from reconciler.destinations import errors
from reconciler.model import SecretValue

KIND: Final = "azure-devops"
API_VERSION: Final = "7.1"
#: the Azure DevOps resource in Microsoft Entra (a token for it is what the REST API accepts)
DEVOPS_SCOPE: Final = "499b84ac-1321-427f-aa17-267ca6975798/.default"
RETRYABLE: Final = frozenset({408, 429, 500, 502, 503, 504})
BACKOFF: Final = 0.5
BACKOFF_CAP: Final = 8.0
DEFAULT_AUTHORITY: Final = "https://login.microsoftonline.com"
PAT_SCOPE_HINT: Final = "the PAT needs the scope Variable Groups: Read, create & manage"


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


def organization_url(settings: Mapping[str, Any]) -> str:
    """``organizationUrl`` checked: http(s), a host, and the organization (or collection) path."""
    raw = str(settings.get("organizationUrl") or "").strip().rstrip("/")
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc or not parts.path.strip("/"):
        raise errors.ConfigError("organizationUrl must be http(s)://host/ORGANIZATION "
                                 "(e.g. https://dev.azure.com/my-org)")
    if parts.query or parts.fragment:
        raise errors.ConfigError("organizationUrl must not carry a query or a fragment")
    return raw


def retry_after(headers: Mapping[str, str], now: Callable[[], float] = time.time) -> float | None:
    """Seconds from ``Retry-After`` (seconds or an HTTP date)."""
    return retryafter.seconds(headers, now)

def type_key(body: Any) -> str | None:
    """The WrappedException's ``typeKey`` (what clients match on), if the body is one."""
    key = body.get("typeKey") if isinstance(body, Mapping) else None
    return str(key) if isinstance(key, str) and key else None


def from_status(reply: Reply, op: str) -> errors.DestinationError:
    """Our error for an answer: operation, status and typeKey only, never the service's text."""
    key = type_key(reply.body)
    msg = f"{op} failed: HTTP {reply.status}" + (f" {key}" if key else "")
    s = reply.status
    if s == 203 or s == 401:
        return errors.AuthError(f"{op} failed: Azure DevOps did not accept the credentials (HTTP {s}); "
                                "check the PAT (or the Entra app) and that it is not expired", code=key)
    if s == 403:
        return errors.AuthError(f"{msg}: permission denied ({PAT_SCOPE_HINT})", code=key)
    if s == 404:
        return errors.NotFound(msg, code=key)
    if s == 409:
        return errors.Conflict(msg, code=key)
    if s == 429:
        return errors.Throttled(f"{msg} (retries exhausted)", retry_after=retry_after(reply.headers), code=key)
    if s in RETRYABLE or s >= 500:
        return errors.Transient(msg, code=key)
    return errors.Permanent(msg, code=key)


class _Entra:
    """A bearer token for the Azure DevOps resource by the OAuth client-credentials grant on
    Microsoft Entra (``{authority}/{tenant}/oauth2/v2.0/token``), over httpx like the rest:
    the azure SDKs stay the Key Vault destination's. Tokens are shared per identity within a
    process and renewed a little before they expire."""

    _tokens: dict[tuple[str, str, str, str], tuple[SecretValue, float]] = {}
    _lock = threading.Lock()

    def __init__(self, settings: Mapping[str, Any], tenant: str, client: str, secret: str) -> None:
        authority = str(settings.get("authorityHost") or DEFAULT_AUTHORITY).rstrip("/")
        self._url = f"{authority}/{quote(tenant, safe='')}/oauth2/v2.0/token"
        self._form = {"grant_type": "client_credentials", "client_id": client, "client_secret": secret,
                      "scope": DEVOPS_SCOPE}
        self._key = (authority, tenant, client, hashlib.sha256(secret.encode()).hexdigest())
        ca = settings.get("caBundle")
        self._verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(ca)) if ca else True

    def header(self) -> str:
        with self._lock:
            hit = self._tokens.get(self._key)
        if hit is not None and time.monotonic() < hit[1]:
            return "Bearer " + hit[0].reveal()
        token, expires_in = self._request()
        renew = time.monotonic() + max(0.0, expires_in - min(300.0, expires_in * 0.2))
        with self._lock:
            self._tokens[self._key] = (token, renew)
        return "Bearer " + token.reveal()

    def _request(self) -> tuple[SecretValue, float]:
        try:
            response = httpx.post(self._url, data=self._form, verify=self._verify, timeout=30.0,
                                  headers={"accept": "application/json"})
            calls.record(KIND, "entra-token", "ok" if response.status_code < 400 else str(response.status_code))
        except httpx.TransportError as exc:
            calls.record(KIND, "entra-token", "connection-error")
            raise errors.Transient(f"no token from Microsoft Entra: {type(exc).__name__}",
                                   code=type(exc).__name__) from None
        try:
            data = response.json()
        except ValueError:
            data = {}
        if response.status_code != 200 or not isinstance(data, dict) or not data.get("access_token"):
            aadsts = re.search(r"AADSTS\d+", str(data.get("error_description", "")) if isinstance(data, dict) else "")
            code = aadsts.group(0) if aadsts else None
            raise errors.AuthError(f"no token from Microsoft Entra for Azure DevOps (HTTP {response.status_code}"
                                   + (f" {code}" if code else "") + "); check tenantId, clientId and clientSecret",
                                   code=code)
        return SecretValue(str(data["access_token"])), float(data.get("expires_in") or 3600)


def authorization(method: str | None, secret: Callable[[str], str | None],
                  settings: Mapping[str, Any]) -> Callable[[], str]:
    """The Authorization header for a connection's credentials method."""
    method = method or "pat"
    if method == "pat":
        token = secret("token")
        if not token:
            raise errors.ConfigError("credentials method 'pat' needs token")
        header = "Basic " + base64.b64encode(f":{token}".encode()).decode()  # empty user name
        return lambda: header
    if method == "client-secret":
        tenant, client, client_secret = secret("tenantId"), secret("clientId"), secret("clientSecret")
        if not (tenant and client and client_secret):
            raise errors.ConfigError("credentials method 'client-secret' needs tenantId, clientId and clientSecret")
        return _Entra(settings, tenant, client, client_secret).header
    raise errors.ConfigError(f"unknown Azure DevOps credentials method {method!r}")


class DevOpsClient:
    """Requests to one organization with our retry policy.

    Retried: 408/429/5xx and dropped connections, up to ``attempts`` tries, waiting what
    ``Retry-After`` says (longer than ``max_wait`` is raised as Throttled for the daemon's
    scheduler). A request that may have landed (5xx, or an answer lost after sending) is
    resent only after ``landed()`` -- when given -- says its effect is not there.
    """

    def __init__(self, org_url: str, auth: Callable[[], str], *, ca_bundle: str | None = None,
                 timeout: float = 30.0, attempts: int = 5, max_wait: float = 60.0,
                 sleep: Callable[[float], None] = time.sleep, transport: httpx.BaseTransport | None = None) -> None:
        self.org_url = org_url.rstrip("/")
        self._auth = auth
        self.attempts = max(1, attempts)
        self.max_wait = max_wait
        self._sleep = sleep
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else True
        self._http = httpx.Client(
            base_url=self.org_url + "/", verify=verify, transport=transport, follow_redirects=False,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers={"accept": "application/json", "user-agent": "reconciler",
                     "x-tfs-fedauthredirect": "Suppress", "x-vss-forcemsapassthrough": "true"})

    def __repr__(self) -> str:
        return f"DevOpsClient({self.org_url!r})"

    def call(self, op: str, method: str, path: str, *, params: Mapping[str, str] | None = None,
             body: Any = None, expect: tuple[int, ...] = (200,),
             landed: Callable[[], Reply | None] | None = None) -> Reply:
        query = {**(params or {}), "api-version": API_VERSION}
        for attempt in range(1, self.attempts + 1):
            maybe_landed = False
            try:
                reply = self._send(op, method, path, query, body)
            except httpx.TransportError as exc:
                if isinstance(exc, httpx.ConnectError) and "CERTIFICATE_VERIFY_FAILED" in str(exc):
                    raise errors.ConfigError(f"{op} failed: the organization's TLS certificate is not trusted "
                                             "(a private CA needs the connection's caBundle)") from None
                if attempt == self.attempts:
                    what = "timed out" if isinstance(exc, httpx.TimeoutException) else "connection failed"
                    raise errors.Transient(f"{op} failed: {what} ({type(exc).__name__})",
                                           code=type(exc).__name__) from None
                wait: float | None = None
                maybe_landed = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
            else:
                if reply.status in expect:
                    return reply
                if reply.status not in RETRYABLE or attempt == self.attempts:
                    raise from_status(reply, op)
                wait = retry_after(reply.headers)
                maybe_landed = reply.status != 429  # a throttled request was not processed
            if wait is None:
                wait = min(BACKOFF_CAP, BACKOFF * 2 ** (attempt - 1)) * random.uniform(0.8, 1.0)
            elif wait > self.max_wait:
                raise errors.Throttled(f"{op} failed: Azure DevOps asks to wait {wait:g}s", retry_after=wait)
            deadline.pause(op, attempt + 1, wait, self._sleep, destination=KIND)
            if maybe_landed and landed is not None:
                done = landed()
                if done is not None:
                    return done
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(self, op: str, method: str, path: str, query: Mapping[str, str], body: Any) -> Reply:
        headers = {"authorization": self._auth()}
        try:
            response = self._http.request(method, path, params=query, json=body, headers=headers)
        except httpx.TransportError:
            calls.record(KIND, op, "connection-error")
            raise
        calls.record(KIND, op, "ok" if response.status_code < 400 and response.status_code != 203
                     else str(response.status_code))
        parsed: Any = None
        if response.content and response.headers.get("content-type", "").startswith("application/json"):
            try:
                parsed = response.json()
            except ValueError:
                parsed = None
        return Reply(response.status_code, parsed, dict(response.headers))

    # -- the operations the destination needs --------------------------------------------------
    def find_group(self, project: str, name: str) -> dict[str, Any] | None:
        """The project's group called ``name`` (case-insensitive, as the service compares), or None.
        ``groupName`` treats '*' as a wildcard, so the match is checked here too."""
        reply = self.call("list-groups", "GET", f"{quote(project, safe='')}/_apis/distributedtask/variablegroups",
                          params={"groupName": name})
        found = [g for g in (reply.body or {}).get("value") or []
                 if isinstance(g, dict) and str(g.get("name", "")).lower() == name.lower()]
        return found[0] if found else None

    def add_group(self, body: Mapping[str, Any], project: str) -> dict[str, Any]:
        name = str(body["name"])
        reply = self.call("add-group", "POST", "_apis/distributedtask/variablegroups", body=body,
                          landed=lambda: self._landed(project, name))
        return dict(reply.body or {})

    def _landed(self, project: str, name: str) -> Reply | None:
        group = self.find_group(project, name)
        return Reply(200, group) if group is not None else None

    def update_group(self, group_id: int, body: Mapping[str, Any]) -> dict[str, Any]:
        # a full replace is idempotent: resending after a lost answer writes the same group
        reply = self.call("update-group", "PUT", f"_apis/distributedtask/variablegroups/{int(group_id)}", body=body)
        return dict(reply.body or {})

    def delete_group(self, group_id: int, project_id: str) -> None:
        with contextlib.suppress(errors.NotFound):  # gone already (or a retried delete that had landed)
            self.call("delete-group", "DELETE", f"_apis/distributedtask/variablegroups/{int(group_id)}",
                      params={"projectIds": project_id}, expect=(200, 204))

    def project(self, id_or_name: str) -> dict[str, Any]:
        reply = self.call("get-project", "GET", f"_apis/projects/{quote(id_or_name, safe='')}")
        return dict(reply.body or {})

    def close(self) -> None:
        self._http.close()
