"""The source catalog: everything the rest of reconciler knows about a kind of source.

Each source declares one :class:`SourceDescriptor` in an SDK-free module named once in
:data:`MODULES`. Specs ask it which apps are sources and what a sync on one needs; the engine
opens sources through it; the daemon learns from it how to notice a change — poll a folder's
token, accept a signed webhook, watch a local file — without knowing which source it is.
The source itself is named by a ``"module:callable"`` string and imported only when opened,
so loading specs never imports an HTTP client.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from reconciler.errors import WebhookError
from reconciler.model import ConnectionInfo, Folder, SecretValue

__all__ = ["Polling", "SourceCatalog", "SourceDescriptor", "WebhookError", "Webhooks",
           "default", "reads"]

if TYPE_CHECKING:
    from reconciler.sources.base import Source

#: the source descriptor modules (below reconciler.sources), in the order people see them
MODULES: Final = ("kms_descriptor", "file_descriptor")


@dataclass(frozen=True)
class Polling:
    """The source's ``change_token(folder)`` is cheap: the daemon polls each folder read."""

    default_seconds: float = 60.0
    #: the Connection setting that overrides the interval (seconds)
    setting: str = "pollInterval"

    def interval(self, settings: Mapping[str, Any]) -> float:
        raw = settings.get(self.setting, self.default_seconds)
        ok = isinstance(raw, int | float) and not isinstance(raw, bool) and raw > 0
        return float(raw) if ok else self.default_seconds


Opener = Callable[[ConnectionInfo], "Source"]
#: checks a webhook request (body, headers, shared secret) and returns the folder it names;
#: raises WebhookError when it is not validly and freshly signed
Verify = Callable[[bytes, Mapping[str, str], SecretValue], Folder]


@dataclass(frozen=True)
class Webhooks:
    """The source's server can announce changes: ``POST /webhooks/<route>/<connection>``."""

    route: str
    verify: Verify
    #: the Connection setting holding the signing secret (a credential reference); no secret,
    #: no webhooks
    signed_with: str = "webhookSecret"


@dataclass(frozen=True)
class SourceDescriptor:
    """One kind of source, declared once.

    ``open`` is a callable taking a :class:`ConnectionInfo`, or ``"module:callable"`` naming
    one (imported only when a source is opened). ``local_file`` names
    the setting that holds a local secrets file: the loader resolves it against the spec file
    (it is data, not a spec), and the daemon watches it. ``polling`` and ``webhooks`` are the
    other two ways the daemon learns that a folder changed; a source without any of the three
    is only read on each sync's interval.
    """

    app: str
    label: str
    open: str | Opener
    #: a sync can import into it (a Connection may still say ``writable: false``)
    can_import: bool = True
    #: syncs must name a projectId
    needs_project: bool = False
    #: syncs may read sub-folders (``recursive: true``)
    recursive: bool = False
    local_file: str | None = None
    polling: Polling | None = None
    webhooks: Webhooks | None = None

    def connect(self, connection: ConnectionInfo) -> Source:
        """Import the source module (and with it its client) and open the source."""
        factory = self.open
        if isinstance(factory, str):
            module, _, name = factory.partition(":")
            factory = getattr(importlib.import_module(module), name)
        source: Source = factory(connection)
        return source


def reads(reader: Folder, changed: Folder) -> bool:
    """Whether a sync reading ``reader`` reads the folder ``changed`` (itself, or below it
    when recursive)."""
    if (reader.project_id, reader.environment) != (changed.project_id, changed.environment):
        return False
    if reader.secret_path == changed.secret_path:
        return True
    return reader.recursive and changed.secret_path.startswith(reader.secret_path.rstrip("/") + "/")


class SourceCatalog:
    """Descriptors by app. :func:`default` holds the built-in ones; tests build their own."""

    def __init__(self, descriptors: tuple[SourceDescriptor, ...] = ()) -> None:
        self._by_app: dict[str, SourceDescriptor] = {}
        for d in descriptors:
            self.register(d)

    def register(self, descriptor: SourceDescriptor) -> None:
        if descriptor.app in self._by_app:
            raise ValueError(f"source {descriptor.app!r} is registered twice")
        routes = {d.webhooks.route for d in self._by_app.values() if d.webhooks is not None}
        if descriptor.webhooks is not None and descriptor.webhooks.route in routes:
            raise ValueError(f"webhook route {descriptor.webhooks.route!r} is registered twice")
        self._by_app[descriptor.app] = descriptor

    def get(self, app: str | None) -> SourceDescriptor | None:
        return self._by_app.get(app) if app is not None else None

    def apps(self) -> tuple[str, ...]:
        return tuple(self._by_app)

    def descriptors(self) -> tuple[SourceDescriptor, ...]:
        return tuple(self._by_app.values())

    def by_route(self, route: str) -> SourceDescriptor | None:
        """The source whose webhooks arrive under ``/webhooks/<route>/``."""
        return next((d for d in self._by_app.values() if d.webhooks is not None and d.webhooks.route == route),
                    None)

    def replace(self, descriptor: SourceDescriptor) -> SourceCatalog:
        """A copy with ``descriptor`` in place of the one of its app (tests inject fakes)."""
        others = tuple(d for d in self._by_app.values() if d.app != descriptor.app)
        return SourceCatalog((*others, descriptor))


_default: SourceCatalog | None = None
_lock = threading.Lock()


def default() -> SourceCatalog:
    """The built-in sources (descriptor modules only: no client is imported)."""
    global _default
    with _lock:
        if _default is None:
            cat = SourceCatalog()
            for name in MODULES:
                cat.register(importlib.import_module(f"reconciler.sources.{name}").DESCRIPTOR)
            _default = cat
        return _default
