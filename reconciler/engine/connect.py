"""Turn spec Connections into what sources and destination sessions are opened with
(credentials resolved here, and only here)."""

from __future__ import annotations

from reconciler.destinations.contract import ConnectionInfo
from reconciler.errors import ConfigError, CredentialError
from reconciler.model import SecretValue
from reconciler.sources import catalog as source_catalog
from reconciler.sources.base import Source
from reconciler.sources.catalog import SourceCatalog
from reconciler.sources.errors import SourceError
from reconciler.specs.credentials import resolve
from reconciler.specs.model import Connection, CredentialRef


def connection_info(conn: Connection) -> ConnectionInfo:
    """``conn`` with its credential references resolved (here, and only here)."""
    creds: dict[str, str | SecretValue] = {}
    for field, raw in conn.credentials.items():
        if isinstance(raw, CredentialRef):
            try:
                creds[field] = resolve(raw)
            except CredentialError as e:
                raise ConfigError(f"connection {conn.name}: credentials.{field}: {e}") from None
        else:
            creds[field] = raw
    ca = conn.settings.get("caBundle")
    if ca:
        _check_ca_bundle(conn.name, str(ca))
    return ConnectionInfo(name=conn.name, app=conn.app, settings=conn.settings, method=conn.method,
                          credentials=creds, path=conn.path)


def _check_ca_bundle(connection: str, path: str) -> None:
    """Once for every client: each met a missing or non-PEM bundle its own way (an internal
    OSError or SSLError, a retried "connection dropped", or not at all until TLS)."""
    import ssl

    from reconciler.oserror import os_reason

    try:
        ssl.create_default_context(cafile=path)
    except OSError as e:
        why = "holds no PEM certificates" if isinstance(e, ssl.SSLError) else os_reason(e)
        raise ConfigError(f"connection {connection}: caBundle {path} cannot be used: {why}") from None


def open_source(conn: Connection, sources: SourceCatalog | None = None) -> Source:
    """Open the source a Connection names, through the source catalog."""
    descriptor = (sources or source_catalog.default()).get(conn.app)
    if descriptor is None:
        raise SourceError(f"connection {conn.name}: app {conn.app!r} is not a source")
    return descriptor.connect(connection_info(conn))


def webhook_secret(conn: Connection, sources: SourceCatalog | None = None) -> SecretValue | None:
    """The shared secret that signs this connection's webhooks (None: webhooks are off)."""
    descriptor = (sources or source_catalog.default()).get(conn.app)
    if descriptor is None or descriptor.webhooks is None:
        return None
    setting = descriptor.webhooks.signed_with
    ref = conn.settings.get(setting)
    if ref is None:
        return None
    if not isinstance(ref, CredentialRef):
        raise ConfigError(f"connection {conn.name}: {setting} must be a reference")
    try:
        return resolve(ref)
    except CredentialError as e:
        raise ConfigError(f"connection {conn.name}: {setting}: {e}") from None
