"""boto3 client construction, request counting and error translation for Secrets Manager.

boto3/botocore are imported inside functions so that loading this module (e.g. for the
registry or for tests of the pure parts) never pays for the SDK.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from reconciler import calls, deadline
from reconciler.destinations import errors
from reconciler.destinations.contract import ConnectionInfo, header_secret
from reconciler.logging import get_logger

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_secretsmanager import SecretsManagerClient

KIND: Final = "aws-secrets-manager"

_THROTTLED = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded",
     "ProvisionedThroughputExceededException", "SlowDown"}
)
_AUTH = frozenset(
    {"AccessDeniedException", "AccessDenied", "UnrecognizedClientException", "InvalidSignatureException",
     "ExpiredTokenException", "ExpiredToken", "InvalidClientTokenId", "SignatureDoesNotMatch",
     "IncompleteSignature", "MissingAuthenticationToken", "AuthFailure"}
)
_TRANSIENT = frozenset({"InternalServiceError", "InternalFailure", "ServiceUnavailable", "RequestTimeout"})


def _before_retry(request: Any = None, operation_name: str = "", **_: Any) -> None:
    """Each attempt after the first (botocore has already waited its back-off): say so, and
    stop if the sync run's deadline has passed rather than run out every attempt."""
    retries = getattr(request, "context", {}).get("retries", {}) if request is not None else {}
    attempt = retries.get("attempt", 1) if isinstance(retries, dict) else 1
    if attempt > 1:
        get_logger(destination=KIND).warning("destination.retry", call=operation_name, attempt=attempt,
                                             deadline_left=_left())
        deadline.check(f"{operation_name} (attempt {attempt})")


def _left() -> float | None:
    left = deadline.remaining()
    return None if left is None else round(left, 1)


def _check_body(response_dict: Any = None, operation_model: Any = None, **_: Any) -> None:
    """A 2xx answer that is not AWS JSON (a proxy's login page, a wrong endpoint) is an error:
    botocore would parse it as an empty answer, which reads as "no secrets" or "written"."""
    if not isinstance(response_dict, dict) or not 200 <= int(response_dict.get("status_code") or 0) < 300:
        return
    body = response_dict.get("body") or b""
    try:
        ok = not body.strip() or isinstance(json.loads(body), dict)
    except ValueError:
        ok = False
    if not ok:
        op = getattr(operation_model, "name", "request")
        ctype = str((response_dict.get("headers") or {}).get("content-type", "no content type")).split(";")[0]
        raise errors.Permanent(f"{op} failed: the endpoint answered {response_dict.get('status_code')} with a body "
                               f"that is not an AWS answer ({ctype}); is the endpoint right, or is a proxy in the way?")


def _record(event_name: str, parsed_response: Any = None, exception: Any = None, **_: Any) -> None:
    """Count every HTTP attempt (retries included) as (operation, outcome)."""
    op = event_name.rsplit(".", 1)[-1]
    if exception is not None:
        outcome = type(exception).__name__
    elif isinstance(parsed_response, dict) and "Error" in parsed_response:
        err = parsed_response["Error"]
        meta = parsed_response.get("ResponseMetadata", {})
        outcome = str(err.get("Code") or meta.get("HTTPStatusCode") or "error")
    else:
        outcome = "ok"
    calls.record(KIND, op, outcome)


def _setting(connection: ConnectionInfo, name: str, default: Any) -> Any:
    value = connection.settings.get(name)
    return default if value is None else value


def _verify(connection: ConnectionInfo) -> str | None:
    """The connection's CA bundle (private CAs, TLS-inspecting proxies); None = botocore's default."""
    ca = connection.settings.get("caBundle")
    return str(ca) if ca else None


def _session(connection: ConnectionInfo, region: str, config: Any, sync: str) -> boto3.Session:
    import boto3
    from botocore.exceptions import ProfileNotFound

    method = connection.method or "default"
    try:
        if method == "default":
            return boto3.Session(region_name=region)
        if method == "profile":
            profile = connection.secret("profile") or connection.settings.get("profile")
            if not profile:
                raise errors.ConfigError("credentials method 'profile' needs a profile name")
            return boto3.Session(profile_name=str(profile), region_name=region)
        if method == "access-key":
            # the key id and session token travel in headers; the secret key only signs
            key_id, secret = header_secret(connection, "accessKeyId"), connection.secret("secretAccessKey")
            if not key_id or not secret:
                raise errors.ConfigError(
                    "credentials method 'access-key' needs accessKeyId and secretAccessKey")
            return boto3.Session(aws_access_key_id=key_id, aws_secret_access_key=secret,
                                 aws_session_token=header_secret(connection, "sessionToken") or None,
                                 region_name=region)
        if method == "assume-role":
            return _assume_role_session(connection, region, config, sync)
    except ProfileNotFound:
        raise errors.ConfigError(f"AWS profile for connection {connection.name!r} not found") from None
    raise errors.ConfigError(f"unknown AWS credentials method {method!r}")


def _assume_role_session(connection: ConnectionInfo, region: str, config: Any, sync: str) -> boto3.Session:
    """A session whose credentials come from sts:AssumeRole on top of the default chain,
    refreshed by botocore before they expire."""
    import boto3
    import botocore.session
    from botocore.credentials import CredentialProvider, CredentialResolver, DeferredRefreshableCredentials

    role_arn = connection.secret("roleArn")
    if not role_arn:
        raise errors.ConfigError("credentials method 'assume-role' needs roleArn")
    external_id = connection.secret("externalId")
    base = boto3.Session(region_name=region)
    sts_endpoint = connection.settings.get("stsEndpoint")

    def fetch() -> dict[str, str]:
        sts = base.client("sts", region_name=region, endpoint_url=sts_endpoint, config=config,
                          verify=_verify(connection))
        sts.meta.events.register("response-received.sts", _record)
        args: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": f"reconciler-{sync}"[:64]}
        if external_id:
            args["ExternalId"] = external_id
        creds = sts.assume_role(**args)["Credentials"]
        return {"access_key": creds["AccessKeyId"], "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"], "expiry_time": creds["Expiration"].isoformat()}

    class _AssumeRole(CredentialProvider):
        METHOD = "assume-role"

        def load(self) -> DeferredRefreshableCredentials:
            return DeferredRefreshableCredentials(refresh_using=fetch, method=self.METHOD)

    core = botocore.session.get_session()
    core.register_component("credential_provider", CredentialResolver([_AssumeRole()]))
    return boto3.Session(botocore_session=core, region_name=region)


#: clients by connection identity: building one (session, service model, endpoint
#: resolution) costs ~100 ms, more than a no-op reconcile itself; boto3 clients are thread-safe
_CLIENTS: OrderedDict[str, SecretsManagerClient] = OrderedDict()
_CLIENTS_LOCK = threading.Lock()
_CLIENTS_MAX = 64


def _identity(connection: ConnectionInfo, region: str, sync: str) -> str:
    """A digest of everything a client is built from (credential values included, so a
    rotated credential gets a new client); the assume-role session name carries the sync."""
    ident = {
        "name": connection.name, "region": region, "method": connection.method,
        "settings": {k: str(v) for k, v in connection.settings.items()},
        "credentials": {k: connection.secret(k) for k in connection.credentials},
        "sync": sync if connection.method == "assume-role" else None,
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()


def make_client(connection: ConnectionInfo, region: str, sync: str) -> SecretsManagerClient:
    """A (cached) Secrets Manager client for this connection."""
    key = _identity(connection, region, sync)
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            client = _new_client(connection, region, sync)
            _CLIENTS[key] = client
            while len(_CLIENTS) > _CLIENTS_MAX:
                _CLIENTS.popitem(last=False)
        else:
            _CLIENTS.move_to_end(key)
        return client


def clear_clients() -> None:
    """Forget cached clients (tests that hook a client's events must not leak the hook)."""
    with _CLIENTS_LOCK:
        _CLIENTS.clear()


def _new_client(connection: ConnectionInfo, region: str, sync: str) -> SecretsManagerClient:
    """A Secrets Manager client with botocore's retry mode owning throttling back-off and
    every HTTP attempt counted in :mod:`reconciler.calls`."""
    from botocore.config import Config

    mode = str(_setting(connection, "retryMode", "standard"))
    if mode not in ("standard", "adaptive", "legacy"):
        raise errors.ConfigError(f"unknown retryMode {mode!r}")
    # total_max_attempts counts the first try too (botocore's "max_attempts" counts retries
    # only); maxAttempts means what the AWS config file's max_attempts means: all attempts
    attempts = int(_setting(connection, "maxAttempts", 5))
    if attempts < 1:
        raise errors.ConfigError("maxAttempts must be at least 1")
    retries: Any = {"mode": mode, "total_max_attempts": attempts}
    config = Config(
        retries=retries,
        connect_timeout=float(_setting(connection, "connectTimeout", 10)),
        read_timeout=float(_setting(connection, "readTimeout", 30)),
        user_agent_extra="reconciler",
    )
    session = _session(connection, region, config, sync)
    endpoint = connection.settings.get("endpoint")
    client = session.client("secretsmanager", region_name=region, config=config,
                            endpoint_url=str(endpoint) if endpoint else None, verify=_verify(connection))
    client.meta.events.register("response-received.secrets-manager", _record)
    client.meta.events.register("request-created.secrets-manager", _before_retry)
    client.meta.events.register("before-parse.secrets-manager", _check_body)
    return client


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a ClientError (None for anything else)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None


def error_text(exc: BaseException) -> str:
    """The service's message, for classification only: never put it in our own messages."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Message") or "")
    return ""


def translate(exc: BaseException, op: str, key: str | None = None) -> errors.DestinationError:
    """Map a botocore exception onto our error tree. The message is ours: operation, code
    and key only, because AWS messages and client validation reports can echo input."""
    from botocore import exceptions as bx

    if isinstance(exc, errors.DestinationError):
        return exc
    if isinstance(exc, bx.ClientError):
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return from_code(error_code(exc) or "UnknownError", op, key, status)
    name = type(exc).__name__
    if isinstance(exc, bx.SSLError):
        return errors.Transient(f"{op} failed: TLS verification failed (a private CA needs the connection's "
                                "caBundle)", key=key, code=name)
    if isinstance(exc, bx.ConnectionError | bx.HTTPClientError):
        return errors.Transient(f"{op} failed: {name} (endpoint unreachable or connection dropped)",
                                key=key, code=name)
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return errors.AuthError(f"{op} failed: no usable AWS credentials ({name})", key=key, code=name)
    if isinstance(exc, bx.NoRegionError):
        return errors.Permanent(f"{op} failed: no AWS region configured", key=key, code=name)
    if isinstance(exc, bx.ParamValidationError):
        return errors.Permanent(f"{op} failed: request refused by client-side validation", key=key, code=name)
    return errors.Permanent(f"{op} failed: {name}", key=key, code=name)


def from_code(code: str, op: str, key: str | None = None, status: int = 0) -> errors.DestinationError:
    """The error for an AWS error code (also used for per-item BatchGetSecretValue errors)."""
    msg = f"{op} failed: {code}"
    if code in _THROTTLED:
        return errors.Throttled(f"{msg} (retries exhausted)", key=key, code=code)
    if code == "ResourceNotFoundException":
        return errors.NotFound(msg, key=key, code=code)
    if code == "ResourceExistsException":
        return errors.Conflict(msg, key=key, code=code)
    if code in _AUTH:
        return errors.AuthError(msg, key=key, code=code)
    if code in _TRANSIENT or status >= 500:
        return errors.Transient(msg, key=key, code=code)
    return errors.Permanent(msg, key=key, code=code)


def is_sdk_error(exc: BaseException) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    return isinstance(exc, BotoCoreError | ClientError)


def guarded(op: str, key: str | None, fn: Callable[[], Any]) -> Any:
    """Run one SDK call, translating SDK errors (and dropping their chain, which carries
    the service's message)."""
    try:
        return fn()
    except Exception as exc:
        if not is_sdk_error(exc):
            raise
        err = translate(exc, op, key)
    raise err
