"""The contract every destination module implements, and the plain data it is built from.

The engine decides *which* values to read and *what* to write; a destination only lists,
reads the values it is asked for, and executes changes. Modeled on ESO's provider contract.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from reconciler.destinations.errors import DestinationError
from reconciler.model import Change, ChangeResult, ObservedEntry, SecretValue, SourceSecret


@dataclass(frozen=True)
class ConnectionInfo:
    """A Connection with its credential references resolved (secret fields as SecretValue)."""

    name: str
    app: str
    settings: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    method: str | None = None
    credentials: Mapping[str, str | SecretValue] = field(default_factory=lambda: MappingProxyType({}))

    def secret(self, name: str) -> str | None:
        v = self.credentials.get(name)
        if v is None:
            return None
        return v.reveal() if isinstance(v, SecretValue) else v


@dataclass(frozen=True)
class Target:
    """The part of a SecretSync a destination needs."""

    sync: str
    environment: str
    destination_config: Mapping[str, Any]
    sync_options: Mapping[str, Any]

    @property
    def key_schema(self) -> str | None:
        ks = self.sync_options.get("keySchema")
        return str(ks) if ks else None


@dataclass(frozen=True)
class Scope:
    """Which destination keys a sync owns.

    ``key_schema`` is the schema after the destination's name rules (matching works on
    destination names). ``exact`` limits scope to exactly these keys (many-to-one).
    ``list_prefix`` is a literal prefix a server-side filter may use; None = list everything.
    """

    key_schema: str | None
    environment: str
    exact: frozenset[str] | None = None
    list_prefix: str | None = None


@dataclass(frozen=True)
class Capabilities:
    can_import: bool = True
    values_readable: bool = True
    tags: bool = True
    allows_empty: bool = True
    max_value_bytes: int | None = None
    #: destination names compare case-insensitively (collisions are errors)
    case_insensitive: bool = False


@dataclass(frozen=True)
class DesiredSpec:
    """A destination entry to hold, before fingerprinting (the engine adds the fingerprint)."""

    key: str
    value: SecretValue
    properties: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    source_keys: tuple[str, ...] = ()


class Destination(Protocol):
    """A destination module. Construct with (Target, ConnectionInfo); SDKs are imported lazily."""

    kind: str  # destination id, e.g. "aws-secrets-manager"
    capabilities: Capabilities

    def scope(self) -> Scope: ...

    def desired(self, secrets: Sequence[SourceSecret]) -> tuple[list[DesiredSpec], list[str]]:
        """Render source secrets into destination entries. Returns (entries, errors)."""
        ...

    def list_entries(self) -> list[ObservedEntry]:
        """Every entry that may be in scope, with version, lifecycle, owner and properties."""
        ...

    def read_values(self, keys: Sequence[str]) -> dict[str, SecretValue]:
        """Current values of these keys (only those asked for; missing ones are left out)."""
        ...

    def importable(self, values: Mapping[str, SecretValue]) -> dict[str, SecretValue]:
        """Map in-scope destination values back to source keys, for import."""
        ...

    def apply(self, changes: Sequence[Change], on_result: Callable[[ChangeResult], None]) -> None:
        """Execute changes in order, reporting each result as it lands (so an interrupted
        apply still records what was written)."""
        ...

    def close(self) -> None: ...


def apply_by_key(
    changes: Sequence[Change],
    apply_one: Callable[[Change], ChangeResult],
    on_result: Callable[[ChangeResult], None],
    *,
    workers: int = 1,
) -> None:
    """Run changes with bounded concurrency across keys, in plan order within one key
    (a RESTORE lands before its UPDATE). A DestinationError from ``apply_one`` fails that
    change only (with the destination's Retry-After kept); the others still run.
    ``on_result`` is always called on the calling thread, so the engine's state writes
    never race."""

    def attempt(change: Change) -> ChangeResult:
        try:
            return apply_one(change)
        except DestinationError as exc:
            return ChangeResult(change, False, error=str(exc), retry_after=getattr(exc, "retry_after", None))

    groups: dict[str, list[Change]] = {}
    for change in changes:
        groups.setdefault(change.key, []).append(change)

    def run(group: list[Change]) -> list[ChangeResult]:
        results = []
        for change in group:
            result = attempt(change)
            results.append(result)
            if not result.ok:  # a failed RESTORE makes the UPDATE behind it pointless
                results.extend(ChangeResult(c, False, error="skipped: an earlier step for this key failed")
                               for c in group[len(results):])
                break
        return results

    if workers <= 1 or len(groups) <= 1:
        for group in groups.values():
            for result in run(group):
                on_result(result)
        return
    from concurrent.futures import ThreadPoolExecutor, as_completed

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="apply") as pool:
        futures = [pool.submit(run, group) for group in groups.values()]
        for future in as_completed(futures):
            for result in future.result():
                on_result(result)
