"""Upstream ``$importSecrets``: pull destination values into the source before the first sync."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from reconciler.changes import Action, Change
from reconciler.model import SecretValue, SourceSecret

_PRIORITIES = {
    "source": "source",
    "destination": "destination",
    "import-prioritize-source": "source",
    "import-prioritize-destination": "destination",
}


def plan_import(
    source: Mapping[str, SourceSecret],
    importable: Mapping[str, SecretValue],
    fingerprint: Callable[[SecretValue], str],
    priority: str,
) -> tuple[tuple[Change, ...], dict[str, SourceSecret]]:
    """IMPORT changes and the source as it will read after they are written.

    ``importable`` holds destination values already mapped back to source keys. As upstream:
    a key missing from the source is always imported (even an empty value: it exists at
    the destination); a conflict is a non-empty destination value whose fingerprint differs
    from the source's, and only ``destination`` priority imports it. Imported keys keep an
    existing secret's comment and metadata. ``priority`` also accepts the spec's
    ``import-prioritize-*`` spellings; anything else is a programming error (ValueError).
    """
    winner = _PRIORITIES.get(priority)
    if winner is None:
        raise ValueError(f"unknown import priority {priority!r}")
    changes: list[Change] = []
    merged = dict(source)
    for key in sorted(importable):
        value = importable[key]
        existing = source.get(key)
        if existing is None:
            reason = "only at destination"
        elif (
            winner == "destination"
            and not value.is_empty()
            and fingerprint(value) != fingerprint(existing.value)
        ):
            reason = "destination wins"
        else:
            continue
        fp = fingerprint(value)
        changes.append(Change(Action.IMPORT, key, reason=reason, value=value, fingerprint=fp))
        if existing is None:
            merged[key] = SourceSecret(key, value)
        else:
            merged[key] = SourceSecret(key, value, comment=existing.comment, metadata=existing.metadata)
    return tuple(changes), merged
