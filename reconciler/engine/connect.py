"""Turn spec Connections into what sources and destination sessions are opened with
(credentials resolved here, and only here)."""

from __future__ import annotations

from reconciler.destinations.contract import ConnectionInfo
from reconciler.errors import ConfigError, CredentialError
from reconciler.model import SecretValue
from reconciler.sources.base import Source
from reconciler.sources.errors import SourceError
from reconciler.specs.credentials import resolve
from reconciler.specs.model import Connection, CredentialRef

#: a connection cannot be used (missing credential, unknown app, bad settings)
ConnectError = ConfigError


def connection_info(conn: Connection) -> ConnectionInfo:
    creds: dict[str, str | SecretValue] = {}
    for field, raw in conn.credentials.items():
        if isinstance(raw, CredentialRef):
            try:
                creds[field] = resolve(raw)
            except CredentialError as e:
                raise ConfigError(f"connection {conn.name}: credentials.{field}: {e}") from None
        else:
            creds[field] = raw
    return ConnectionInfo(name=conn.name, app=conn.app, settings=conn.settings, method=conn.method,
                          credentials=creds)


def open_source(conn: Connection) -> Source:
    if conn.app == "file":
        from reconciler.sources.file import FileSource

        if conn.path is None:
            raise SourceError(f"connection {conn.name}: no path")
        return FileSource(conn.path)
    if conn.app == "kms":
        return _open_kms(conn)
    raise SourceError(f"connection {conn.name}: app {conn.app!r} is not a source")


def _open_kms(conn: Connection) -> Source:
    from reconciler.sources.kms import open_kms

    creds = connection_info(conn).credentials
    client_id, client_secret = creds.get("clientId"), creds.get("clientSecret")
    if conn.method != "universal-auth" or not isinstance(client_secret, SecretValue) or client_id is None:
        raise ConnectError(f"connection {conn.name}: kms needs credentials.method universal-auth "
                           "with clientId and clientSecret")
    client_id = client_id.reveal() if isinstance(client_id, SecretValue) else client_id
    return open_kms(conn.name, conn.settings, client_id, client_secret)


def webhook_secret(conn: Connection) -> SecretValue | None:
    """The shared secret that signs this kms connection's webhooks (None: webhooks are off)."""
    ref = conn.settings.get("webhookSecret")
    if ref is None:
        return None
    if not isinstance(ref, CredentialRef):
        raise ConnectError(f"connection {conn.name}: webhookSecret must be a reference")
    try:
        return resolve(ref)
    except CredentialError as e:
        raise ConnectError(f"connection {conn.name}: webhookSecret: {e}") from None
