"""The oci SDK for one connection: credentials, the two clients (Vault management and Secrets
retrieval), request counting, our retry policy, and error translation.

The SDK's own retries and circuit breaker are off: its default strategy ignores Retry-After
and can spend ten minutes on one call, and the daemon owns retries across runs. Here a read
is tried up to :data:`ATTEMPTS` times on throttling, 5xx and dropped connections, a write only
on throttling (a refused request did not land; a 5xx or a dropped one might have), waiting
what Retry-After says when it says it. ``oci`` is imported inside functions: loading this
module never pays for the SDK (half a second, half a gigabyte).
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from reconciler import calls, deadline
from reconciler.destinations import errors
from reconciler.destinations.contract import ConnectionInfo
from reconciler.destinations.oci_vault import rules
from reconciler.errors import ReconcilerError

KIND: Final = "oci-vault"
ATTEMPTS: Final = 3
#: the pause when a retryable answer names none; doubled per attempt, capped
BACKOFF: Final = 0.5
BACKOFF_CAP: Final = 8.0
#: a Retry-After longer than this is handed to the daemon instead of slept here
MAX_RETRY_AFTER: Final = 30.0
TIMEOUT: Final = (10.0, 60.0)  # connect, read (the SDK's defaults)

#: tests replace this to run on fake time
sleep: Callable[[float], None] = time.sleep


@dataclass(frozen=True)
class Clients:
    """A VaultsClient (/20180608) and a SecretsClient (/20190301) sharing one signer."""

    vaults: Any
    secrets: Any


_CLIENTS: OrderedDict[str, Clients] = OrderedDict()
_LOCK = threading.Lock()
_MAX_CACHED = 32


def _identity(connection: ConnectionInfo) -> str:
    """A digest of everything the clients are built from (credential values included, so a
    rotated key gets new clients)."""
    ident = {"name": connection.name, "method": connection.method,
             "settings": {k: str(v) for k, v in connection.settings.items()},
             "credentials": {k: connection.secret(k) for k in connection.credentials}}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()


def make_clients(connection: ConnectionInfo) -> Clients:
    """The (cached) clients of a connection: building them costs ~0.1 s, more than a no-op
    reconcile of a small vault."""
    key = _identity(connection)
    with _LOCK:
        cached = _CLIENTS.get(key)
        if cached is None:
            cached = _CLIENTS[key] = _new_clients(connection)
            while len(_CLIENTS) > _MAX_CACHED:
                _CLIENTS.popitem(last=False)
        else:
            _CLIENTS.move_to_end(key)
        return cached


def clear_clients() -> None:
    with _LOCK:
        _CLIENTS.clear()


def _config_and_signer(connection: ConnectionInfo) -> tuple[dict[str, Any], Any]:
    import oci

    method = connection.method or "api-key"
    region = str(connection.settings.get("region") or "")
    if method == "api-key":
        key = connection.secret("privateKey")
        config: dict[str, Any] = {"user": connection.secret("user"), "tenancy": connection.secret("tenancy"),
                                  "fingerprint": connection.secret("fingerprint"), "key_content": key,
                                  "region": region}
        passphrase = connection.secret("passphrase")
        if passphrase:
            config["pass_phrase"] = passphrase
        if not region:
            raise errors.ConfigError("no OCI region: set the connection's region")
        return config, None
    if method == "config-file":
        location = connection.secret("file") or oci.config.DEFAULT_LOCATION
        profile = connection.secret("profile") or oci.config.DEFAULT_PROFILE
        config = dict(oci.config.from_file(file_location=location, profile_name=profile))
        if region:
            config["region"] = region
        return config, None
    if method == "instance-principal":
        signer = oci.auth.signers.InstancePrincipalsSecurityTokenSigner()
        return {"region": region or signer.region}, signer
    raise errors.ConfigError(f"unknown OCI credentials method {method!r}")


def _new_clients(connection: ConnectionInfo) -> Clients:
    import oci

    try:
        config, signer = _config_and_signer(connection)
        kw: dict[str, Any] = {"retry_strategy": oci.retry.NoneRetryStrategy(),
                              "circuit_breaker_strategy": oci.circuit_breaker.NoCircuitBreakerStrategy(),
                              "timeout": _timeouts(connection)}
        if signer is not None:
            kw["signer"] = signer
        endpoint = connection.settings.get("endpoint")
        if endpoint:
            kw["service_endpoint"] = str(endpoint).rstrip("/")  # one URL serves both APIs
        clients = Clients(oci.vault.VaultsClient(config, **kw), oci.secrets.SecretsClient(config, **kw))
    except (errors.DestinationError, errors.ConfigError):
        raise
    except Exception as exc:
        err = _config_error(exc, connection)
        raise err from None
    ca = connection.settings.get("caBundle")
    if ca:
        for client in (clients.vaults, clients.secrets):
            client.base_client.session.verify = str(ca)
    return clients


def _timeouts(connection: ConnectionInfo) -> tuple[float, float]:
    def seconds(name: str, default: float) -> float:
        v = connection.settings.get(name)
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) and v > 0 else default

    return seconds("connectTimeout", TIMEOUT[0]), seconds("readTimeout", TIMEOUT[1])


def _config_error(exc: Exception, connection: ConnectionInfo) -> ReconcilerError:
    """The SDK's configuration errors, in our words (its messages can quote the config)."""
    import oci

    name = type(exc).__name__
    where = f"connection {connection.name}"
    if isinstance(exc, oci.exceptions.ConfigFileNotFound | oci.exceptions.ProfileNotFound):
        return errors.ConfigError(f"{where}: OCI config file or profile not found ({name})")
    if isinstance(exc, oci.exceptions.InvalidConfig):
        fields = sorted(exc.args[0]) if exc.args and isinstance(exc.args[0], dict) else []
        return errors.ConfigError(f"{where}: invalid OCI credentials ({', '.join(fields) or name}: "
                                  "missing or malformed)")
    if isinstance(exc, oci.exceptions.InvalidPrivateKey | oci.exceptions.InvalidKeyFilePath):
        return errors.ConfigError(f"{where}: the private key cannot be loaded ({name}; a passphrase-"
                                  "protected key needs credentials.passphrase)")
    if connection.method == "instance-principal":
        return errors.AuthError(f"{where}: instance principal unavailable ({name}; it works only on an OCI "
                                "instance in a dynamic group)", code=name)
    return errors.ConfigError(f"{where}: cannot build OCI clients ({name})")


# -- calls ---------------------------------------------------------------------------------

def translate(exc: BaseException, op: str, key: str | None = None) -> errors.DestinationError:
    """An SDK exception as our error. Messages are ours (operation, status, code, key):
    the service's message may echo input."""
    import oci

    if isinstance(exc, errors.DestinationError):
        return exc
    if isinstance(exc, oci.exceptions.ServiceError):
        status, code = int(exc.status or 0), str(exc.code or "Unknown")
        msg = f"{op} failed: {status} {code}"
        if status == 429:
            return errors.Throttled(f"{msg} (retries exhausted)", key=key, code=code,
                                    retry_after=rules.retry_after(exc.headers))
        if status == 401:
            return errors.AuthError(f"{msg}: the request signature was refused (check the API key and "
                                    "fingerprint)", key=key, code=code)
        if status == 404:
            return errors.NotFound(f"{msg} (not found, or the policy does not allow it)", key=key, code=code)
        if status == 409 and code == "IncorrectState":
            return errors.Transient(f"{msg} (the secret is changing state; retried later)", key=key, code=code)
        if status in (409, 412):
            return errors.Conflict(msg, key=key, code=code)
        if status >= 500 or status == 0:
            return errors.Transient(msg, key=key, code=code)
        return errors.Permanent(msg, key=key, code=code)
    name = type(exc).__name__
    if "SSL" in name or "SSL" in str(exc)[:200]:
        return errors.Transient(f"{op} failed: TLS verification failed (a private CA needs the connection's "
                                "caBundle)", key=key, code=name)
    if isinstance(exc, oci.exceptions.RequestException | oci.exceptions.ConnectTimeout):
        return errors.Transient(f"{op} failed: {name} (endpoint unreachable, timed out or connection dropped)",
                                key=key, code=name)
    return errors.Permanent(f"{op} failed: {name}", key=key, code=name)


def _is_sdk_error(exc: BaseException) -> bool:
    import oci

    return isinstance(exc, oci.exceptions.ServiceError | oci.exceptions.ClientError
                      | oci.exceptions.RequestException | oci.exceptions.ConnectTimeout)


def _outcome(exc: BaseException | None) -> str:
    if exc is None:
        return "ok"
    status = getattr(exc, "status", None)
    return str(status) if isinstance(status, int) else "connection-error"


def _retryable(err: errors.DestinationError, write: bool) -> bool:
    if isinstance(err, errors.Throttled):
        return True
    return not write and isinstance(err, errors.Transient) and err.code != "IncorrectState"


def call(op: str, key: str | None, fn: Callable[[], Any], *, write: bool = False) -> Any:
    """One API call under our retry policy, every attempt counted as (op, outcome)."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            result = fn()
        except Exception as exc:
            if not _is_sdk_error(exc):
                raise
            calls.record(KIND, op, _outcome(exc))
            err = translate(exc, op, key)
        else:
            calls.record(KIND, op, "ok")
            return result
        wait = err.retry_after
        if attempt == ATTEMPTS or not _retryable(err, write) or (wait is not None and wait > MAX_RETRY_AFTER):
            raise err
        if wait is None:
            wait = min(BACKOFF_CAP, BACKOFF * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
        pause(op, attempt + 1, wait, key)
    raise AssertionError("unreachable")


def pause(what: str, attempt: int, wait: float, key: str | None = None) -> None:
    """Wait before trying again: never past the run's deadline, and never silently."""
    deadline.pause(what, attempt, wait, sleep, destination=KIND, key=key)


def not_oci(op: str, key: str | None = None) -> errors.Permanent:
    """A 2xx whose body is not the service's answer: the SDK would read a proxy's page as
    a list of empty secrets (one per character) or an empty secret; neither is true."""
    return errors.Permanent(f"{op} failed: the endpoint answered with a body that is not an OCI Vault answer; "
                            "is the connection's endpoint right, or is a proxy in the way?", key=key)
