"""What a spec reload changes, and the last-known-good rule.

A sync whose document turns invalid keeps running as it last validated; so does every sync
of a file that no longer parses at all (its names are unknown, but it was not deleted). Only
a sync whose document is gone from a readable directory counts as removed (a spec root that
vanished, or a directory that cannot be listed, keeps its syncs).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from reconciler.specs.model import Connection, Diagnostic, Location, SecretSync, SpecSet

_NOWHERE = Location(Path(), 0)


@dataclass(frozen=True)
class Reload:
    """The effective spec set after a load, and how it differs from the one before."""

    specs: SpecSet
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    #: invalid now, still running their last valid version: name -> why
    kept: Mapping[str, tuple[Diagnostic, ...]] = field(default_factory=dict)
    #: invalid and never valid in this process: nothing to run
    rejected: Mapping[str, tuple[Diagnostic, ...]] = field(default_factory=dict)


def _identity(sync: SecretSync, connections: Mapping[str, Connection]) -> tuple[Any, ...]:
    """What a reconcile depends on, without line numbers (an edit elsewhere in the file
    moves them and is no reason to reconcile)."""
    conns = tuple(
        dataclasses.replace(c, location=_NOWHERE) if c is not None else None
        for c in (connections.get(sync.source), connections.get(sync.connection))
    )
    return (dataclasses.replace(sync, location=_NOWHERE), conns)


def _same_file(a: Path, b: Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def _within(file: Path, directory: Path) -> bool:
    """``file`` is below ``directory`` (by path: either may no longer exist)."""
    d = os.path.realpath(directory)
    return os.path.realpath(file).startswith(d.rstrip(os.sep) + os.sep)


def merge(current: SpecSet | None, loaded: SpecSet) -> Reload:
    """The set to run: ``loaded``'s valid syncs, plus the last valid version of syncs that
    are now invalid (with the connections they need, if those turned invalid too)."""
    syncs: dict[str, SecretSync] = dict(loaded.syncs)
    connections: dict[str, Connection] = dict(loaded.connections)
    kept: dict[str, tuple[Diagnostic, ...]] = {}
    removed: list[str] = []
    before = current.syncs if current is not None else {}
    for name, old in before.items():
        if name in syncs:
            continue
        why = loaded.invalid_syncs.get(name)
        if why is None:
            file_errors = tuple(d for d in loaded.diagnostics
                                if d.severity == "error" and _same_file(d.file, old.location.file))
            if file_errors and old.location.file.exists():
                why = file_errors
        if why is None:  # its directory (or the spec root) could not be read: not a deletion
            why = tuple(d for d in loaded.diagnostics
                        if d.severity == "error" and d.line == 0 and _within(old.location.file, d.file)) or None
        if why is None:
            removed.append(name)
            continue
        kept[name] = why
        syncs[name] = old
        assert current is not None
        for conn_name in (old.source, old.connection):
            if conn_name not in connections and conn_name in current.connections:
                connections[conn_name] = current.connections[conn_name]
    effective = SpecSet(
        root=loaded.root,
        syncs=MappingProxyType(dict(sorted(syncs.items()))),
        connections=MappingProxyType(dict(sorted(connections.items()))),
        diagnostics=loaded.diagnostics,
        invalid_syncs=loaded.invalid_syncs,
        notifiers=loaded.notifiers,
    )
    added = tuple(n for n in effective.syncs if n not in before)
    changed = tuple(
        n for n in effective.syncs
        if n in before and current is not None
        and _identity(effective.syncs[n], effective.connections) != _identity(before[n], current.connections)
    )
    rejected = {n: d for n, d in loaded.invalid_syncs.items() if n not in kept and n not in effective.syncs}
    return Reload(effective, added, changed, tuple(sorted(removed)), kept, rejected)
