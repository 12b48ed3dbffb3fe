"""A test-side handle on one destination session plus the shared naming module, driven by
the real descriptor: what the engine does for one sync, one step at a time."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from reconciler.changes import Change, ChangeResult
from reconciler.destinations import catalog, naming
from reconciler.destinations.catalog import Descriptor, SyncView
from reconciler.destinations.contract import ConnectionInfo
from reconciler.model import DesiredEntry, Fingerprinter, ObservedEntry, SecretValue, SourceSecret

FP = Fingerprinter(b"0123456789abcdef0123456789abcdef")


def view(sync: str = "payments", environment: str = "dev", *, config: Mapping[str, Any] | None = None,
         options: Mapping[str, Any] | None = None, connection: str = "conn",
         settings: Mapping[str, Any] | None = None) -> SyncView:
    return SyncView(sync=sync, environment=environment, destination_config=dict(config or {}),
                    sync_options=dict(options or {}), connection=connection,
                    connection_settings=dict(settings or {}))


class Dest:
    """A session opened through the catalog, with naming steps beside it."""

    def __init__(self, destination: str, v: SyncView, connection: ConnectionInfo) -> None:
        self.descriptor: Descriptor = catalog.default()[destination]
        self.view = v
        self.session: Any = self.descriptor.open(v, connection)
        self.rendered = naming.Rendered({})

    def scope(self) -> naming.Scope:
        return naming.scope(self.descriptor, self.view, wanted=self.rendered.entries)

    def desired(self, secrets: Sequence[SourceSecret]) -> tuple[list[DesiredEntry], list[str]]:
        self.rendered = naming.render(self.descriptor, self.view, secrets, FP)
        return list(self.rendered.entries.values()), [m for _, m in self.rendered.problems]

    def list_entries(self) -> list[ObservedEntry]:
        listed = self.session.list(self.scope())
        return list(naming.spell(self.descriptor, self.view, listed, self.rendered, self.scope()).values())

    def read_values(self, keys: Sequence[str]) -> dict[str, SecretValue]:
        out: dict[str, SecretValue] = self.session.read(keys)
        return out

    def importable(self, values: Mapping[str, SecretValue]) -> dict[str, SecretValue]:
        return naming.import_keys(self.descriptor, self.view, values, self.rendered)

    def apply(self, changes: Sequence[Change], on_result: Callable[[ChangeResult], None]) -> None:
        self.session.apply(changes, on_result)

    def close(self) -> None:
        self.session.close()

    def __getattr__(self, name: str) -> Any:  # the session's own test hooks (client, http)
        return getattr(self.session, name)
