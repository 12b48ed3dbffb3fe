"""Semantic rules JSON Schema cannot express: references, uniqueness, rendered names.

Each rule returns Diagnostics pointing at the field to fix. Rules also run on documents
that failed the schema, so one pass shows every problem; a field of the wrong shape is
skipped here (the schema already reported it). Pure: no files, network or credentials.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from reconciler import keyschema
from reconciler.destinations import catalog
from reconciler.sources import catalog as sources
from reconciler.specs import values
from reconciler.specs.model import Diagnostic
from reconciler.specs.yamlload import Document

MIN_INTERVAL: Final = 1.0
#: a year: ample for any schedule, and far from what datetime arithmetic overflows on
MAX_INTERVAL: Final = 365 * 86400.0
IMPORTS: Final = ("import-prioritize-source", "import-prioritize-destination")


def _map(data: Any, key: str) -> Mapping[str, Any]:
    value = data.get(key) if isinstance(data, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def _str(data: Any, key: str) -> str | None:
    value = data.get(key) if isinstance(data, Mapping) else None
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class ConnectionRef:
    """What rules need to know about a Connection document, valid or not."""

    name: str
    app: str | None
    ok: bool
    where: str  # file:line, for messages
    duplicate: bool = False
    writable: bool | None = None


def unique_names(docs: Sequence[Document], kind: str) -> list[list[Diagnostic]]:
    """A name defined twice is an error at every definition. Result is parallel to ``docs``."""
    seen: dict[str, list[Document]] = {}
    for doc in docs:
        seen.setdefault(doc.data["name"], []).append(doc)
    out: list[list[Diagnostic]] = []
    for doc in docs:
        name = doc.data["name"]
        others = [o for o in seen[name] if o is not doc]
        where = ", ".join(f"{o.file}:{o.line(('name',))}" for o in others)
        out.append([doc.diagnostic(("name",), f"duplicate {kind} name '{name}' (also defined at {where})")]
                   if others else [])
    return out


def _names(refs: Sequence[ConnectionRef]) -> str:
    return ", ".join(sorted({r.name for r in refs})) or "none"


def connection(doc: Document, index: Mapping[str, ConnectionRef]) -> list[Diagnostic]:
    """``connection`` names a valid Connection whose app serves the destination."""
    name, dest = _str(doc.data, "connection"), _str(doc.data, "destination")
    if name is None:
        return []
    desc = catalog.default().get(dest or "")
    need = desc.apps if desc else None
    wanted = " or ".join(f"'{a}'" for a in need or ())
    ref = index.get(name)
    if ref is None:
        fitting = [r for r in index.values() if need is None or r.app in need]
        which = f"with app {wanted}" if need else "defined"
        return [doc.diagnostic(("connection",), f"connection '{name}' is not defined "
                               f"(connections {which}: {_names(fitting)})")]
    if ref.duplicate:
        return [doc.diagnostic(("connection",), f"connection '{name}' is defined more than once")]
    if need is not None and ref.app is not None and ref.app not in need:
        return [doc.diagnostic(("connection",), f"connection '{name}' has app '{ref.app}', but destination "
                               f"'{dest}' needs a connection with app {wanted}")]
    if not ref.ok:
        return [doc.diagnostic(("connection",), f"connection '{name}' is invalid (see {ref.where})")]
    return []


def source(
    doc: Document, index: Mapping[str, ConnectionRef]
) -> tuple[list[Diagnostic], ConnectionRef | None]:
    """The sync's source Connection: named, or the only kms/file Connection when not named."""
    data = doc.data
    if "source" in data:
        name = _str(data, "source")
        if name is None:
            return [], None
        ref = index.get(name)
        if ref is None:
            candidates = [r for r in index.values() if r.app in sources.default().apps()]
            return [doc.diagnostic(("source",), f"source '{name}' is not defined "
                                   f"(source connections: {_names(candidates)})")], None
        if ref.duplicate:
            return [doc.diagnostic(("source",), f"source '{name}' is defined more than once")], None
        if ref.app is not None and ref.app not in sources.default().apps():
            return [doc.diagnostic(("source",), f"source '{name}' has app '{ref.app}'; a source must be a "
                                   f"Connection with app {' or '.join(sources.default().apps())}")], None
        if not ref.ok:
            return [doc.diagnostic(("source",), f"source '{name}' is invalid (see {ref.where})")], None
        return [], ref
    candidates = [r for r in index.values() if r.app in sources.default().apps()]
    if not candidates:
        return [doc.diagnostic(("source",), "no source: define a Connection with app "
                               f"{' or '.join(sources.default().apps())}")], None
    if len(candidates) > 1:
        return [doc.diagnostic(("source",), "source is required when several source connections exist "
                               f"(candidates: {_names(candidates)})")], None
    only = candidates[0]
    if not only.ok or only.duplicate:
        return [doc.diagnostic(("source",), f"the only source connection '{only.name}' is invalid "
                               f"(see {only.where})")], None
    return [], only


def source_fit(doc: Document, src: ConnectionRef) -> list[Diagnostic]:
    """What the source's descriptor asks of a sync: a projectId, recursion, writes for imports."""
    data = doc.data
    out: list[Diagnostic] = []
    kind = sources.default().get(src.app)
    if kind is not None and kind.needs_project and not data.get("projectId"):
        out.append(doc.diagnostic(("projectId",), f"projectId is required for a {src.app} source ('{src.name}')"))
    if kind is not None and not kind.needs_project and "projectId" in data:
        out.append(doc.diagnostic(("projectId",), f"projectId is ignored for a {src.app} source ('{src.name}')",
                                  "warning"))
    behaviour = _map(data, "syncOptions").get("initialSyncBehavior")
    if data.get("recursive") is True and kind is not None and not kind.recursive:
        able = " or ".join(d.app for d in sources.default().descriptors() if d.recursive)
        out.append(doc.diagnostic(("recursive",), f"recursive reads need a {able} source; "
                                  f"'{src.name}' is a {src.app}"))
    if data.get("recursive") is True and behaviour in IMPORTS:
        out.append(doc.diagnostic(("recursive",), f"recursive cannot be combined with {behaviour}: an import "
                                  "writes into one folder (as upstream, recursive needs overwrite-destination)"))
    if behaviour in IMPORTS and kind is not None and not kind.can_import:
        out.append(doc.diagnostic(("syncOptions", "initialSyncBehavior"),
                                  f"{behaviour} writes into the source, but a {src.app} source cannot be written"))
    elif behaviour in IMPORTS and src.writable is False:
        out.append(doc.diagnostic(("syncOptions", "initialSyncBehavior"),
                                  f"{behaviour} writes into the source, "
                                  f"but source '{src.name}' has writable: false"))
    return out


def sync_fields(doc: Document) -> list[Diagnostic]:
    """Field rules for one SecretSync: keySchema, the destination's own rules, reconcile."""
    out: list[Diagnostic] = []
    desc = catalog.default().get(_str(doc.data, "destination") or "")
    ks = _str(_map(doc.data, "syncOptions"), "keySchema")
    if ks is not None:
        out += [doc.diagnostic(("syncOptions", "keySchema"), m) for m in keyschema.validate(ks)]
        out += _key_schema_for(doc, ks, desc)
    if desc is not None:
        out += [doc.diagnostic(f.path, f.message, f.severity) for f in desc.rules(doc.data)]
    out += _reconcile(doc)
    return out


def _key_schema_for(doc: Document, ks: str, desc: catalog.Descriptor | None) -> list[Diagnostic]:
    """Literal parts the destination's names cannot hold (after its renaming)."""
    if desc is None:
        return []
    literal = desc.names.rename(keyschema.render(ks, "", ""))
    if "/" in literal and not desc.names.allows("/"):
        return [doc.diagnostic(("syncOptions", "keySchema"),
                               f"{desc.label} secret names cannot contain '/': they may only hold "
                               f"{desc.names.charset}")]
    return []


def _reconcile(doc: Document) -> list[Diagnostic]:
    rec = _map(doc.data, "reconcile")
    out: list[Diagnostic] = []
    for field in ("interval", "retryInterval", "timeout"):
        try:
            seconds = values.parse_duration(rec[field])
        except (KeyError, ValueError):
            continue  # absent, or malformed (the schema says so)
        if seconds < MIN_INTERVAL:
            out.append(doc.diagnostic(("reconcile", field), f"{field} must be at least 1s"))
        elif seconds > MAX_INTERVAL:
            out.append(doc.diagnostic(("reconcile", field), f"{field} must be at most 365d"))
    return out
