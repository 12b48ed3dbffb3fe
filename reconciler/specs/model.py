"""Frozen, validated spec models. Only :mod:`reconciler.specs.loader` builds them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from reconciler.destinations.catalog import SyncView
from reconciler.model import Folder
from reconciler.printable import one_line

InitialSyncBehavior = Literal[
    "overwrite-destination", "import-prioritize-source", "import-prioritize-destination"
]


@dataclass(frozen=True)
class Location:
    """Where a value came from, for diagnostics."""

    file: Path
    line: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Diagnostic:
    """One validation finding: ``file:line: path: message``."""

    file: Path
    line: int  # 1-based; 0 when no line applies (the spec directory itself)
    path: str  # JSON path within its document, e.g. "$.syncOptions.keySchema"
    message: str
    severity: str = "error"  # error | warning

    def __str__(self) -> str:  # escaped: a file name from a pull request must not forge lines
        return one_line(f"{self.file}:{self.line}: {self.path}: {self.message}")


@dataclass(frozen=True)
class CredentialRef:
    """A reference to a secret credential; never the credential itself."""

    kind: Literal["env", "file", "credential"]
    name: str  # env var name, file path (absolute, resolved against the spec file), or credential name

    def __repr__(self) -> str:
        return f"CredentialRef({self.kind}:{self.name})"


@dataclass(frozen=True)
class ReconcileOptions:
    interval_seconds: float = 300.0
    retry_interval_seconds: float = 30.0
    suspend: bool = False
    drift: Literal["correct", "report"] = "correct"
    #: a run that is still retrying after this long gives up (the next run tries again)
    timeout_seconds: float = 120.0
    #: None = default guard (refuse to delete every in-scope key); else (number, is_percent)
    max_deletes: tuple[float, bool] | None = None


@dataclass(frozen=True)
class Connection:
    name: str
    app: str  # aws | azure-key-vault | azure-devops | oci | windmill | kms | file
    location: Location
    #: non-credential settings (endpoint, region, path, siteUrl, ...), as written
    settings: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    method: str | None = None
    #: credential fields: plain (non-secret) strings or CredentialRef
    credentials: Mapping[str, str | CredentialRef] = field(default_factory=lambda: MappingProxyType({}))
    #: for app: file, the absolute path of the secrets file
    path: Path | None = None
    description: str = ""


@dataclass(frozen=True)
class SecretSync:
    name: str
    location: Location
    destination: str
    connection: str
    source: str  # name of a Connection with app kms or file (resolved default filled in)
    environment: str
    secret_path: str  # normalised: leading "/", no trailing "/" except root
    destination_config: Mapping[str, Any]
    sync_options: Mapping[str, Any]
    description: str = ""
    project_id: str | None = None
    #: read sub-folders of secret_path too (kms sources)
    recursive: bool = False
    is_enabled: bool = True
    is_auto_sync_enabled: bool = True
    reconcile: ReconcileOptions = ReconcileOptions()

    @property
    def folder(self) -> Folder:
        """Where this sync reads its secrets from."""
        return Folder(self.environment, self.secret_path, self.project_id, self.recursive)

    @property
    def key_schema(self) -> str | None:
        ks = self.sync_options.get("keySchema")
        return str(ks) if ks else None

    def view(self, connection: Connection | None) -> SyncView:
        """What the destination sees of this sync (and its connection's plain settings)."""
        return SyncView(sync=self.name, environment=self.environment, destination_config=self.destination_config,
                        sync_options=self.sync_options, connection=self.connection,
                        connection_settings=connection.settings if connection else MappingProxyType({}))

    @property
    def initial_sync_behavior(self) -> InitialSyncBehavior:
        return self.sync_options.get("initialSyncBehavior", "overwrite-destination")  # type: ignore[no-any-return]

    @property
    def disable_secret_deletion(self) -> bool:
        return bool(self.sync_options.get("disableSecretDeletion", False))


#: what a Notifier can report, in the words specs use
NOTIFY_EVENTS = ("sync-failed", "sync-recovered", "drift-detected")
#: a Notifier's defaults: one message per sync and event an hour; a post gives up after 5 s
DEFAULT_MIN_INTERVAL, DEFAULT_TIMEOUT = 3600.0, 5.0


@dataclass(frozen=True)
class Notifier:
    """Where the daemon reports sync failures, recoveries and drift (``kind: Notifier``)."""

    name: str
    location: Location
    url: CredentialRef  # a webhook URL is a credential: only ever a reference
    events: tuple[str, ...] = NOTIFY_EVENTS
    #: only these syncs; None = every sync
    syncs: tuple[str, ...] | None = None
    min_interval_seconds: float = DEFAULT_MIN_INTERVAL
    timeout_seconds: float = DEFAULT_TIMEOUT
    description: str = ""

    def wants(self, event: str, sync: str) -> bool:
        return event in self.events and (self.syncs is None or sync in self.syncs)


@dataclass(frozen=True)
class SpecSet:
    """Everything loaded from a directory. Broken documents are left out, with diagnostics."""

    root: Path
    syncs: Mapping[str, SecretSync]
    connections: Mapping[str, Connection]
    diagnostics: tuple[Diagnostic, ...] = ()
    #: names of syncs whose documents failed validation (so callers can report them per sync)
    invalid_syncs: Mapping[str, tuple[Diagnostic, ...]] = field(default_factory=lambda: MappingProxyType({}))
    notifiers: Mapping[str, Notifier] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)
