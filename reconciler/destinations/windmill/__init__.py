"""Windmill variables: the descriptor (SDK-free). The session is not built yet."""

from __future__ import annotations

from reconciler.destinations.catalog import Capabilities, Descriptor, NameRule, SyncView

DEFAULT_URL = "https://app.windmill.dev"


def _target(view: SyncView) -> tuple[str, ...]:
    """The folder path is part of the key, not the target: a sync on f/a/ lists f/a/b/ too."""
    url = str(view.connection_settings.get("instanceUrl") or DEFAULT_URL).strip().rstrip("/").lower()
    return (url, str(view.destination_config.get("workspace", "")).strip().lower())


def _describe(view: SyncView) -> str:
    return f"Windmill workspace {view.destination_config.get('workspace')}"


def _base(view: SyncView) -> str:
    return str(view.destination_config.get("path", ""))


DESCRIPTOR = Descriptor(
    id="windmill",
    label="Windmill",
    apps=("windmill",),
    schema="destination-windmill.json",
    names=NameRule(folders=True, noun="Windmill variable path"),
    capabilities=Capabilities(tags=False),
    target=_target,
    describe=_describe,
    base=_base,
)
