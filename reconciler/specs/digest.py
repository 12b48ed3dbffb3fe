"""A digest of the specs a plan was made from, so a saved plan can tell the specs changed.

Taken over the loaded models, not the file bytes: a comment or a reordering is not a change,
and a file source's values (which may sit in the spec directory) never enter it. Paths
under the spec directory are taken relative to it, so a checkout elsewhere (the merge job
of a CI pipeline) digests the same.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from reconciler.specs.model import Connection, CredentialRef, SecretSync, SpecSet


def _plain(value: Any, root: Path) -> Any:
    if isinstance(value, Path):
        try:
            return value.resolve().relative_to(root).as_posix()
        except ValueError:
            return str(value)
    if isinstance(value, CredentialRef):
        return {value.kind: _plain(Path(value.name), root) if value.kind == "file" else value.name}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name), root) for f in dataclasses.fields(value)
                if f.name != "location"}
    if isinstance(value, Mapping):
        return {str(k): _plain(v, root) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_plain(v, root) for v in value]
        return sorted(items, key=json.dumps) if isinstance(value, set | frozenset) else items
    return value


def spec_digest(specs: SpecSet, names: Iterable[str] | None = None) -> str:
    """SHA-256 over the named syncs (all of them, valid or not, when ``names`` is None) and
    every connection they use. An invalid sync counts by its diagnostics."""
    root = specs.root.resolve()
    chosen = sorted(set(names) if names is not None else {*specs.syncs, *specs.invalid_syncs})
    syncs: dict[str, Any] = {}
    used: set[str] = set()
    for name in chosen:
        sync: SecretSync | None = specs.syncs.get(name)
        if sync is not None:
            syncs[name] = _plain(sync, root)
            used |= {sync.connection, sync.source}
        else:
            syncs[name] = {"invalid": [d.message for d in specs.invalid_syncs.get(name, ())]}
    conns: dict[str, Any] = {}
    for name in sorted(used):
        conn: Connection | None = specs.connections.get(name)
        conns[name] = _plain(conn, root) if conn is not None else None
    text = json.dumps({"syncs": syncs, "connections": conns}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
