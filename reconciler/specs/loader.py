"""Load a spec directory into frozen models. Bad input never raises; it becomes diagnostics.

Every document stands alone: one broken file (or document) costs only the syncs defined
in it, plus the syncs that reference a broken Connection. Order: YAML with line marks ->
JSON Schema (all errors) -> semantic rules -> models -> overlap check across syncs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from reconciler.destinations import catalog
from reconciler.sources import catalog as sources
from reconciler.specs import credentials, notifiers, rules, schema, scopes, values, yamlload
from reconciler.specs.model import (
    Connection,
    CredentialRef,
    Diagnostic,
    Location,
    ReconcileOptions,
    SecretSync,
    SpecSet,
)
from reconciler.specs.yamlload import Document

#: settings that are file paths, resolved against the spec file's directory
PATH_SETTINGS = ("caBundle",)
#: settings that are secret references (resolved only when used, like credentials)
SECRET_SETTINGS = ("webhookSecret",)
_NOT_SETTINGS = frozenset({"kind", "name", "app", "description", "credentials"})


@dataclass
class _Entry:
    doc: Document
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def _str(self, key: str) -> str | None:
        data = self.doc.data
        value = data.get(key) if isinstance(data, dict) else None
        return value if isinstance(value, str) else None

    @property
    def kind(self) -> str | None:
        return self._str("kind")

    @property
    def name(self) -> str | None:
        return self._str("name")

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)


def load(directory: Path) -> SpecSet:
    """Every spec under ``directory``: valid syncs and connections, and all diagnostics."""
    root = Path(directory)
    docs, diagnostics = yamlload.load_dir(root)
    docs, diagnostics = _without_source_files(docs, diagnostics)
    if not docs and not diagnostics:
        diagnostics.append(Diagnostic(root, 0, "$", "no spec documents found (*.yaml, *.yml)", "warning"))
    entries = [_Entry(doc, schema.validate(doc)) for doc in docs]
    named = [e for e in entries if e.name is not None]
    conn_entries = [e for e in named if e.kind == "Connection"]
    sync_entries = [e for e in named if e.kind == "SecretSync"]
    dup_conns = _mark_duplicates(conn_entries, "Connection")
    dup_syncs = _mark_duplicates(sync_entries, "SecretSync")

    connections: dict[str, Connection] = {}
    for e in conn_entries:
        if e.ok and e.name not in dup_conns:
            conn, found = _connection(e.doc)
            e.diagnostics += found
            connections[conn.name] = conn
    index = {e.name: _ref(e, e.name in dup_conns) for e in conn_entries if e.name is not None}

    syncs: dict[str, SecretSync] = {}
    by_name: dict[str, _Entry] = {}
    for e in sync_entries:  # rules run on broken documents too: every problem in one pass
        found = rules.connection(e.doc, index)
        src_found, src = rules.source(e.doc, index)
        found += src_found
        if src is not None:
            found += rules.source_fit(e.doc, src)
        found += rules.sync_fields(e.doc)
        e.diagnostics += found
        if e.ok and src is not None and e.name not in dup_syncs:
            sync = _sync(e.doc, src.name)
            syncs[sync.name], by_name[sync.name] = sync, e

    for a, b in scopes.find_overlaps(syncs, connections):
        where = scopes.describe_target(syncs[a], connections.get(syncs[a].connection))
        by_name[a].diagnostics.append(_overlap(by_name[a], by_name[b], syncs[a], syncs[b], where))
        by_name[b].diagnostics.append(_overlap(by_name[b], by_name[a], syncs[b], syncs[a], where))
    for name, e in by_name.items():
        if not e.ok:
            del syncs[name]

    notifier_entries = [e for e in named if e.kind == "Notifier"]
    found_notifiers, notes = notifiers.load([e.doc for e in notifier_entries], [e.ok for e in notifier_entries],
                                            {e.name for e in sync_entries if e.name is not None})
    for e, found in zip(notifier_entries, notes, strict=True):
        e.diagnostics += found

    invalid: dict[str, list[Diagnostic]] = {}
    for e in sync_entries:
        if e.name is not None and e.name not in syncs:
            invalid.setdefault(e.name, []).extend(d for d in e.diagnostics if d.severity == "error")
    for e in entries:
        diagnostics.extend(e.diagnostics)
    diagnostics.sort(key=_order)
    return SpecSet(
        root=root,
        syncs=MappingProxyType(dict(sorted(syncs.items()))),
        connections=MappingProxyType(dict(sorted(connections.items()))),
        diagnostics=tuple(diagnostics),
        invalid_syncs=MappingProxyType({k: tuple(sorted(v, key=_order)) for k, v in sorted(invalid.items())}),
        notifiers=MappingProxyType(found_notifiers),
    )


def _order(d: Diagnostic) -> tuple[str, int, str, str]:
    return (str(d.file), d.line, d.path, d.message)


def _without_source_files(
    docs: list[Document], diagnostics: list[Diagnostic]
) -> tuple[list[Document], list[Diagnostic]]:
    """A file source's secrets file may live among the specs: it is data, not a spec."""
    secret_files: set[str] = set()
    for d in docs:
        data = d.data
        setting = _local_file(data.get("app")) if isinstance(data, dict) else None
        if (setting is not None and data.get("kind") == "Connection"
                and isinstance(data.get(setting), str) and "\0" not in data[setting]):
            secret_files.add(os.path.realpath(credentials.absolute(data[setting], d.file.parent)))
    has_spec = {os.path.realpath(d.file) for d in docs
                if isinstance(d.data, dict) and d.data.get("kind") in schema.KINDS}
    skip = secret_files - has_spec
    return (
        [d for d in docs if os.path.realpath(d.file) not in skip],
        [g for g in diagnostics if os.path.realpath(g.file) not in skip],
    )


def _local_file(app: object) -> str | None:
    """The setting naming the local secrets file a source of ``app`` reads (None: no file)."""
    kind = sources.default().get(app) if isinstance(app, str) else None
    return kind.local_file if kind is not None else None


def _mark_duplicates(entries: Sequence[_Entry], kind: str) -> set[str]:
    """Names defined more than once; neither definition is used (which one was meant?)."""
    dups: set[str] = set()
    for e, found in zip(entries, rules.unique_names([e.doc for e in entries], kind), strict=True):
        e.diagnostics += found
        if found and e.name is not None:
            dups.add(e.name)
    return dups


def _ref(e: _Entry, duplicate: bool) -> rules.ConnectionRef:
    app = e.doc.data.get("app")
    writable = e.doc.data.get("writable")
    return rules.ConnectionRef(
        name=str(e.name),
        app=app if isinstance(app, str) else None,
        ok=e.ok and not duplicate,
        where=f"{e.doc.file}:{e.doc.line(('name',))}",
        duplicate=duplicate,
        writable=writable if isinstance(writable, bool) else None,
    )


def _connection(doc: Document) -> tuple[Connection, list[Diagnostic]]:
    data: Mapping[str, Any] = doc.data
    base = doc.file.parent
    app = data["app"]
    found: list[Diagnostic] = []
    settings = {k: v for k, v in data.items() if k not in _NOT_SETTINGS}
    for key in PATH_SETTINGS:
        if isinstance(settings.get(key), str):
            settings[key] = credentials.absolute(settings[key], base)
    for key in SECRET_SETTINGS:
        if credentials.is_ref(settings.get(key)):
            settings[key] = credentials.parse_ref(settings[key], base)
    raw = data.get("credentials") or {}
    creds: dict[str, str | CredentialRef] = {}
    for key, value in raw.items():
        if key == "method":
            continue
        if credentials.is_ref(value):
            creds[key] = credentials.parse_ref(value, base)
        elif key == "file":  # the OCI config file: a path, not a secret
            creds[key] = credentials.absolute(str(value), base)
        else:
            creds[key] = str(value)
    path: Path | None = None
    setting = _local_file(app)
    if setting is not None:
        path = Path(credentials.absolute(data[setting], base))
        if not path.is_file():
            what = ("is not a regular file" if path.exists() else
                    "is a broken or looping symbolic link" if path.is_symlink() else "does not exist")
            found.append(doc.diagnostic((setting,), f"secrets file {path} {what}", "warning"))
    conn = Connection(
        name=data["name"],
        app=app,
        location=Location(doc.file, doc.line(("name",))),
        settings=_freeze(settings),
        method=raw.get("method") or _default_method(app),
        credentials=MappingProxyType(creds),
        path=path,
        description=data.get("description", ""),
    )
    return conn, found


def _default_method(app: str) -> str | None:
    """The credentials method of a Connection without one (the SDK's default chain)."""
    return next((d.default_method for d in catalog.default().for_app(app) if d.default_method), None)


def _sync(doc: Document, source: str) -> SecretSync:
    data: Mapping[str, Any] = doc.data
    dest = data["destination"]
    opts = dict(data.get("syncOptions") or {})
    opts.setdefault("initialSyncBehavior", "overwrite-destination")
    opts.setdefault("disableSecretDeletion", False)
    cfg = dict(data["destinationConfig"])
    defaults = catalog.default()[dest].defaults
    for k, v in defaults.get("syncOptions", {}).items():
        opts.setdefault(k, v)
    for k, v in defaults.get("destinationConfig", {}).items():
        cfg.setdefault(k, v)
    return SecretSync(
        name=data["name"],
        location=Location(doc.file, doc.line(("name",))),
        destination=dest,
        connection=data["connection"],
        source=source,
        environment=data["environment"],
        secret_path=values.normalise_secret_path(data["secretPath"]),
        destination_config=_freeze(cfg),
        sync_options=_freeze(opts),
        description=data.get("description", ""),
        project_id=data.get("projectId"),
        recursive=data.get("recursive", False),
        is_enabled=data.get("isEnabled", True),
        is_auto_sync_enabled=data.get("isAutoSyncEnabled", True),
        reconcile=reconcile_options(data.get("reconcile") or {}),
    )


def reconcile_options(rec: Mapping[str, Any]) -> ReconcileOptions:
    """The ``reconcile`` block, durations in seconds (input already schema-valid)."""
    default = ReconcileOptions()
    interval, retry, timeout = rec.get("interval"), rec.get("retryInterval"), rec.get("timeout")
    return ReconcileOptions(
        interval_seconds=values.parse_duration(interval) if interval else default.interval_seconds,
        retry_interval_seconds=values.parse_duration(retry) if retry else default.retry_interval_seconds,
        timeout_seconds=values.parse_duration(timeout) if timeout else default.timeout_seconds,
        suspend=rec.get("suspend", default.suspend),
        drift=rec.get("drift", default.drift),
        max_deletes=values.parse_max_deletes(rec["maxDeletes"]) if "maxDeletes" in rec else None,
    )


def _overlap(e: _Entry, other: _Entry, sync: SecretSync, other_sync: SecretSync, describe: str) -> Diagnostic:
    opts, cfg = e.doc.data.get("syncOptions") or {}, e.doc.data["destinationConfig"]
    if "keySchema" in opts:
        path: tuple[str, ...] = ("syncOptions", "keySchema")
        why = ""
    elif "secretName" in cfg:
        path, why = ("destinationConfig", "secretName"), ""
    else:
        path, why = ("destinationConfig",), " (this sync has no keySchema, so it owns every key there)"
    where = f"{other.doc.file}:{other.doc.line(('name',))}"
    return e.doc.diagnostic(
        path,
        f"key scope overlaps sync '{other_sync.name}' ({where}) on {describe}{why}: "
        "both would claim the same keys and delete each other's secrets; "
        "give them non-overlapping keySchemas",
    )


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value
