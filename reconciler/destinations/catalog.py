"""The destination catalog: everything the rest of reconciler knows about a destination.

Each destination module (``reconciler/destinations/<name>/``) declares one :class:`Descriptor`
in its package ``__init__`` — SDK-free — and is named once in :data:`MODULES`. Specs, planner,
engine and daemon learn ids, labels, name rules, capabilities, target identity and defaults
from here, so adding a destination never touches them. The session that talks to the service
is named by a ``"module:callable"`` string and imported only when a sync opens it, so a
command loads only the SDKs of the destinations it uses.
"""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from reconciler.errors import ConfigError

if TYPE_CHECKING:
    from reconciler.destinations.contract import ConnectionInfo, Session

#: the destination packages, in the order people see them listed: the one registration
MODULES: Final = ("aws", "azure_key_vault", "oci_vault", "azure_devops", "windmill")


def _same(name: str) -> str:
    return name


@dataclass(frozen=True)
class NameRule:
    """What a destination's names may look like, and how rendered keys become names.

    ``rename`` runs on every rendered name (Key Vault writes '_' as '-'); a name that still
    breaks ``pattern`` or ``max_length`` is a plan error for its key. ``case_insensitive``
    names collide when they differ only in case (an error, never an overwrite). ``folders``:
    '/' separates folders, and a scope reaches into sub-folders only when the key schema
    itself contains '/'.
    """

    pattern: re.Pattern[str] | None = None
    max_length: int | None = None
    #: what the names may hold, for messages ("letters, digits and '-'")
    charset: str = ""
    rename: Callable[[str], str] = _same
    case_insensitive: bool = False
    folders: bool = False
    #: what one name is called in messages ("AWS secret name")
    noun: str = "name"

    def fold(self, name: str) -> str:
        """The form two names are compared in (they collide when equal)."""
        return name.lower() if self.case_insensitive else name

    def allows(self, text: str) -> bool:
        """Whether literal text (a key schema's) can appear in a name at all."""
        return self.pattern is None or all(self.pattern.fullmatch(c) for c in set(text))

    def problem(self, name: str) -> str | None:
        """Why the service would refuse ``name`` (None when it is fine); never the whole of a
        very long name."""
        shown = name if len(name) <= 80 else name[:77] + "..."
        if not name or (self.max_length is not None and len(name) > self.max_length):
            return f"{self.noun} {shown!r} must be 1-{self.max_length} characters long"
        if self.pattern is not None and not all(self.pattern.fullmatch(c) for c in name):
            return f"{self.noun} {shown!r} may only contain {self.charset}"
        return None


@dataclass(frozen=True)
class Capabilities:
    can_import: bool = True
    #: values can be read back (Azure DevOps secrets are write-only)
    values_readable: bool = True
    tags: bool = True
    allows_empty: bool = True
    max_value_bytes: int | None = None
    #: mappingBehavior many-to-one: one entry holding the JSON object of the folder's keys
    many_to_one: bool = False
    #: the destination writes a whole group at once (one write per apply)
    batched: bool = False


@dataclass(frozen=True)
class SyncView:
    """The part of a SecretSync (and its Connection's non-secret settings) a destination reads."""

    sync: str
    environment: str
    destination_config: Mapping[str, Any]
    sync_options: Mapping[str, Any]
    connection: str = ""
    connection_settings: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def key_schema(self) -> str | None:
        ks = self.sync_options.get("keySchema")
        return str(ks) if ks else None

    @property
    def many_to_one(self) -> bool:
        return self.destination_config.get("mappingBehavior") == "many-to-one"


@dataclass(frozen=True)
class Finding:
    """A destination-specific spec problem: the field (path in the sync document) and why."""

    path: tuple[str | int, ...]
    message: str
    severity: str = "error"


def _no_findings(_data: Mapping[str, Any]) -> list[Finding]:
    return []


def _no_properties(_view: SyncView, _metadata: Mapping[str, str]) -> dict[str, str]:
    return {}


def _no_problems(_properties: Mapping[str, str]) -> list[str]:
    return []


def _no_base(_view: SyncView) -> str:
    return ""


@dataclass(frozen=True)
class Descriptor:
    """One destination, declared once.

    ``target`` says what makes two syncs write the same place (syncs on different targets
    can never collide, and share nothing); ``describe`` names that place for people.
    ``properties`` gives the destination-managed attributes a desired entry carries (tags as
    ``tag:<k>``), ``property_problems`` checks a full property set against the service's
    limits (planned, never found out at apply time), ``property_names`` names properties in
    plans. ``base`` is a literal every key starts with (a Windmill folder). ``rules`` are
    semantic spec checks on a sync document's raw data. ``session`` is ``"module:callable"``
    taking ``(SyncView, ConnectionInfo)``; None means the destination is not built yet.
    """

    id: str
    label: str
    apps: tuple[str, ...]
    schema: str
    names: NameRule
    capabilities: Capabilities
    target: Callable[[SyncView], tuple[str, ...]]
    describe: Callable[[SyncView], str]
    session: str | Callable[[SyncView, ConnectionInfo], Session] | None = None
    #: many-to-one: the bundle's name goes through the key schema (AWS) or is used as written
    bundle_name_in_schema: bool = False
    base: Callable[[SyncView], str] = _no_base
    properties: Callable[[SyncView, Mapping[str, str]], dict[str, str]] = _no_properties
    property_problems: Callable[[Mapping[str, str]], list[str]] = _no_problems
    property_names: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    rules: Callable[[Mapping[str, Any]], list[Finding]] = _no_findings
    #: values filled in when a spec leaves them out, per section (syncOptions, destinationConfig)
    defaults: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: MappingProxyType({}))
    #: credentials.method when a Connection of one of ``apps`` has none
    default_method: str | None = None
    #: why a value the destination never shows back is rewritten after an out-of-band change
    #: (plans say "values cannot be compared: <this>"); only for values_readable=False
    unreadable_drift: str = "changed outside reconciler"
    #: the property that carries the source secret's comment (Windmill: ``description``);
    #: None: comments are not synced
    comment_property: str | None = None

    def identity(self, view: SyncView) -> tuple[str, ...]:
        return (self.id, *self.target(view))

    def open(self, view: SyncView, connection: ConnectionInfo) -> Session:
        """Import the session module (and with it the SDK) and open a session."""
        if self.session is None:
            raise ConfigError(f"destination {self.id} is not implemented yet")
        factory = self.session
        if isinstance(factory, str):
            module, _, name = factory.partition(":")
            factory = getattr(importlib.import_module(module), name)
        session: Session = factory(view, connection)
        return session


class Catalog:
    """Descriptors by id. :func:`default` loads the built-in ones; tests build their own."""

    def __init__(self, descriptors: tuple[Descriptor, ...] = ()) -> None:
        self._by_id: dict[str, Descriptor] = {}
        for d in descriptors:
            self.register(d)

    def register(self, descriptor: Descriptor) -> None:
        if descriptor.id in self._by_id:
            raise ValueError(f"destination {descriptor.id!r} is registered twice")
        self._by_id[descriptor.id] = descriptor

    def get(self, destination_id: str) -> Descriptor | None:
        return self._by_id.get(destination_id)

    def __getitem__(self, destination_id: str) -> Descriptor:
        d = self._by_id.get(destination_id)
        if d is None:
            raise ConfigError(f"unknown destination {destination_id!r}")
        return d

    def ids(self) -> tuple[str, ...]:
        return tuple(self._by_id)

    def for_app(self, app: str) -> tuple[Descriptor, ...]:
        """The destinations a Connection of ``app`` can serve."""
        return tuple(d for d in self._by_id.values() if app in d.apps)

    def apps(self) -> frozenset[str]:
        return frozenset(a for d in self._by_id.values() for a in d.apps)


_default: Catalog | None = None
_lock = threading.Lock()


def default() -> Catalog:
    """The built-in destinations (descriptor modules only: no SDK is imported)."""
    global _default
    with _lock:
        if _default is None:
            cat = Catalog()
            for name in MODULES:
                module = importlib.import_module(f"reconciler.destinations.{name}")
                cat.register(module.DESCRIPTOR)
            _default = cat
        return _default


def label(destination_id: str) -> str:
    d = default().get(destination_id)
    return d.label if d else destination_id
