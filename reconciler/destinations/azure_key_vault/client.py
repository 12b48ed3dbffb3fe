"""Key Vault transport: credentials, the SDK pipeline, request counting, retries, errors.

The SDK's ``SecretClient`` is used as a pipeline only (TLS, the bearer-challenge handshake,
tokens) through its public ``send_request``: we see every status and header, so we own the
retry policy (``Retry-After`` honoured, bounded), can tell a write that may have landed from
one that surely did not, and translate errors into our tree with messages of our own.
azure-* packages are imported inside functions: loading this module never pays for them.
"""

from __future__ import annotations

import hashlib
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from reconciler import calls, deadline, retryafter
from reconciler.destinations import errors
from reconciler.destinations.azure_key_vault import rules as azure_rules
from reconciler.destinations.contract import ConnectionInfo
from reconciler.logging import get_logger

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.keyvault.secrets import SecretClient

KIND: Final = "azure-key-vault"
RETRYABLE: Final = frozenset({408, 429, 500, 502, 503, 504})
#: the pause used when a retryable answer names none; doubled per attempt, capped
BACKOFF: Final = 0.5
BACKOFF_CAP: Final = 8.0

#: tests replace this to run on fake time
sleep: Callable[[float], None] = time.sleep

_warned: set[str] = set()
_credentials: dict[str, TokenCredential] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class Reply:
    status: int
    body: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


def operation(method: str, url: str) -> str:
    """A stable name for a Key Vault request, for counts and messages."""
    seg = [s for s in urlsplit(url).path.split("/") if s]
    if seg[:1] == ["deletedsecrets"]:
        if len(seg) == 1:
            return "list-deleted"
        if len(seg) == 3:
            return "recover"
        return "purge" if method == "DELETE" else "get-deleted"
    if len(seg) == 1:
        return "list"
    if len(seg) == 3 and seg[2] == "versions":
        return "versions"
    return {"PUT": "set", "PATCH": "update", "DELETE": "delete"}.get(method, "get")


def _counter() -> Any:
    """A pipeline policy placed after authentication: it sees every attempt, the
    challenge round trip included (recorded as ``auth-challenge``)."""
    from azure.core.pipeline.policies import SansIOHTTPPolicy

    class Count(SansIOHTTPPolicy):  # type: ignore[type-arg]
        def on_response(self, request: Any, response: Any) -> None:
            req, status = request.http_request, response.http_response.status_code
            op = operation(req.method, req.url)
            if status == 401 and not any(h.lower() == "authorization" for h in req.headers):
                op = "auth-challenge"
            calls.record(KIND, op, "ok" if status < 400 else str(status))

        def on_exception(self, request: Any) -> None:
            req = request.http_request
            calls.record(KIND, operation(req.method, req.url), "connection-error")

    return Count()


def _credential_key(connection: ConnectionInfo) -> str:
    parts = [connection.method or "default", str(connection.settings.get("authorityHost") or ""),
             str(connection.settings.get("caBundle") or "")]
    for name in ("tenantId", "clientId", "clientSecret"):
        parts.append(hashlib.sha256((connection.secret(name) or "").encode()).hexdigest())
    return "\x1f".join(parts)


def credential(connection: ConnectionInfo) -> TokenCredential:
    """The azure-identity credential for a connection, shared across syncs in one process
    (its token cache then saves the identity provider a call per reconcile)."""
    key = _credential_key(connection)
    with _lock:
        cached = _credentials.get(key)
        if cached is None:
            cached = _credentials[key] = _new_credential(connection)
        return cached


def _new_credential(connection: ConnectionInfo) -> TokenCredential:
    from azure import identity

    method = connection.method or "default"
    authority = connection.settings.get("authorityHost")
    ca = connection.settings.get("caBundle")
    kw: dict[str, Any] = {}
    if ca:
        kw["connection_verify"] = str(ca)
    if authority:
        kw["authority"] = str(authority)
        if not azure_rules.is_microsoft_authority(str(authority)):
            # otherwise msal asks login.microsoftonline.com whether the authority is known
            kw["disable_instance_discovery"] = True
    if method == "client-secret":
        tenant, client, secret = (connection.secret(n) for n in ("tenantId", "clientId", "clientSecret"))
        if not (tenant and client and secret):
            raise errors.ConfigError("credentials method 'client-secret' needs tenantId, clientId and clientSecret")
        return identity.ClientSecretCredential(tenant, client, secret, **kw)
    if method == "managed-identity":
        client_id = connection.secret("clientId")
        mi_kw = {"connection_verify": kw["connection_verify"]} if ca else {}
        return identity.ManagedIdentityCredential(client_id=client_id or None, **mi_kw)
    if method == "default":
        return identity.DefaultAzureCredential(**kw)
    raise errors.ConfigError(f"unknown Azure credentials method {method!r}")


def make_client(connection: ConnectionInfo, vault_url: str) -> SecretClient:
    """A SecretClient used as a pipeline: no SDK retries (ours honour Retry-After and
    know which writes may have landed), every attempt counted."""
    from azure.keyvault.secrets import SecretClient

    verify = azure_rules.verifies_challenge(vault_url)
    if not verify:
        host = urlsplit(vault_url).netloc.lower()
        with _lock:
            first = host not in _warned
            _warned.add(host)
        if first:
            # a vault on this machine (an emulator) is obviously not a cloud's: say it quietly
            log = get_logger(destination=KIND)
            (log.debug if azure_rules.is_loopback(vault_url) else log.warning)(
                "keyvault.challenge_check_off", vault=host,
                reason="the vault host is not under a Key Vault domain of a known cloud, so the SDK "
                       "cannot match the challenge's resource to it")
    ca = connection.settings.get("caBundle")
    return SecretClient(
        vault_url, credential(connection), verify_challenge_resource=verify,
        connection_verify=str(ca) if ca else True, retry_total=0, custom_hook_policy=_counter(),
        connection_timeout=float(connection.settings.get("connectTimeout") or 10),
        read_timeout=float(connection.settings.get("readTimeout") or 30),
    )


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from ``Retry-After`` or ``retry-after-ms``/``x-ms-retry-after-ms``."""
    return retryafter.seconds(headers)

def error_code(body: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(code, innererror code) of a Key Vault error body."""
    err = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(err, Mapping):
        return None, None
    inner = err.get("innererror")
    inner_code = inner.get("code") if isinstance(inner, Mapping) else None
    code = err.get("code")
    return (str(code) if code else None), (str(inner_code) if inner_code else None)


def from_status(reply: Reply, op: str, key: str | None) -> errors.DestinationError:
    """Our error for a Key Vault answer. The message names the operation, status and codes,
    never the service's text (it can echo names and input)."""
    code, inner = error_code(reply.body)
    codes = "/".join(c for c in (code, inner) if c)
    msg = f"{op} failed: HTTP {reply.status}" + (f" {codes}" if codes else "")
    s = reply.status
    if s == 429:
        return errors.Throttled(f"{msg} (retries exhausted)", retry_after=retry_after(reply.headers), key=key,
                                code=inner or code)
    if s == 404:
        return errors.NotFound(msg, key=key, code=inner or code)
    if s == 409:
        return errors.Conflict(msg, key=key, code=inner or code)
    if s in (401, 403):
        return errors.AuthError(msg + " (check the identity's Key Vault secret permissions)", key=key,
                                code=inner or code)
    if s in RETRYABLE or s >= 500:
        return errors.Transient(msg, key=key, code=inner or code)
    return errors.Permanent(msg, key=key, code=inner or code)


def from_exception(exc: BaseException, op: str, key: str | None) -> errors.DestinationError | None:
    """Our error for an SDK or identity exception (None: not one of theirs)."""
    from azure.core import exceptions as ax

    name = type(exc).__name__
    if isinstance(exc, ax.ClientAuthenticationError):
        aadsts = re.search(r"AADSTS\d+", str(exc))
        detail = f" ({aadsts.group(0)})" if aadsts else ""
        return errors.AuthError(f"{op} failed: no token from Microsoft Entra: {name}{detail}", key=key, code=name)
    if isinstance(exc, ax.ServiceRequestError | ax.ServiceResponseError):
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return errors.Permanent(f"{op} failed: the vault's TLS certificate is not trusted "
                                      "(a private CA needs the connection's caBundle)", key=key, code=name)
        return errors.Transient(f"{op} failed: {name} (vault unreachable or connection dropped)", key=key, code=name)
    if isinstance(exc, ax.AzureError):
        return errors.Permanent(f"{op} failed: {name}", key=key, code=name)
    if isinstance(exc, ValueError) and "challenge resource" in str(exc):
        return errors.Permanent(f"{op} failed: the vault's authentication challenge names another resource "
                                  "than its host", key=key, code="ChallengeResourceMismatch")
    return None


class VaultHttp:
    """Requests to one vault with our retry policy.

    Retried: 408/429/5xx and dropped connections, up to ``attempts`` tries in all, waiting
    what ``Retry-After`` says (a wait longer than ``max_wait`` is not slept: it is raised as
    Throttled for the caller's scheduler). A request that may have landed (a 5xx or a
    connection lost after sending) is resent only after ``landed()`` -- when given -- says
    the effect is not there yet: that is how a retried write never makes a second version.
    """

    def __init__(self, client: SecretClient, *, attempts: int = 5, max_wait: float = 60.0) -> None:
        self._client = client
        self._base = client.vault_url
        self.attempts = max(1, attempts)
        self.max_wait = max_wait

    def call(self, method: str, url: str, *, key: str | None = None, body: Mapping[str, Any] | None = None,
             expect: tuple[int, ...] = (200,), landed: Callable[[], Reply | None] | None = None) -> Reply:
        from azure.core import exceptions as ax

        op = operation(method, url)
        if "://" in url and not azure_rules.same_origin(url, self._base):
            raise errors.Permanent(f"{op} failed: the vault pointed at another host; not followed", key=key)
        for attempt in range(1, self.attempts + 1):
            maybe_landed = False
            try:
                reply = self._send(method, url, body)
            except (ax.ServiceRequestError, ax.ServiceResponseError) as exc:
                err = from_exception(exc, op, key) or errors.Transient(f"{op} failed", key=key)
                if isinstance(err, errors.Permanent) or attempt == self.attempts:
                    raise err from None
                # ServiceRequestError: never sent; ServiceResponseError: sent, the answer was lost
                wait, maybe_landed = None, isinstance(exc, ax.ServiceResponseError)
            except Exception as exc:
                mapped = from_exception(exc, op, key)
                if mapped is None:
                    raise
                raise mapped from None
            else:
                if reply.status in expect:
                    return reply
                if reply.status not in RETRYABLE or attempt == self.attempts:
                    raise from_status(reply, op, key)
                wait = retry_after(reply.headers)
                maybe_landed = reply.status != 429  # a throttled request was not processed
            if wait is None:
                wait = min(BACKOFF_CAP, BACKOFF * 2 ** (attempt - 1)) * random.uniform(0.8, 1.0)
            elif wait > self.max_wait:
                raise errors.Throttled(f"{op} failed: vault asks to wait {wait:g}s", retry_after=wait, key=key)
            deadline.pause(op, attempt + 1, wait, sleep, destination=KIND)
            if maybe_landed and landed is not None:
                done = landed()
                if done is not None:
                    return done
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(self, method: str, url: str, body: Mapping[str, Any] | None) -> Reply:
        from azure.core.rest import HttpRequest

        request = HttpRequest(method, url, json=body) if body is not None else HttpRequest(method, url)
        response = self._client.send_request(request)
        try:
            parsed = response.json() if response.content else {}
        except ValueError:
            parsed = None
        if 200 <= response.status_code < 300 and response.content and not isinstance(parsed, Mapping):
            # a proxy's page or a wrong URL: taking it as an empty answer would read as "no
            # secrets" or "written" — it is neither
            ctype = response.headers.get("content-type", "no content type").split(";")[0]
            raise errors.Permanent(f"{operation(method, url)} failed: the endpoint answered {response.status_code} "
                                   f"with a body that is not a Key Vault answer ({ctype}); "
                                   "is vaultBaseUrl right, or is a proxy in the way?")
        return Reply(response.status_code, parsed if isinstance(parsed, Mapping) else {}, dict(response.headers))

    def close(self) -> None:
        self._client.close()
