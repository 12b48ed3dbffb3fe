"""``kind: Notifier`` documents: the rules the schema cannot say, and the frozen models.

A ``syncs`` entry naming no SecretSync is a warning, not an error: an error would drop the
whole Notifier, and a typo in one name must not silence the alerts about every other sync.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Final

from reconciler.specs import credentials, rules, values
from reconciler.specs.model import (
    DEFAULT_MIN_INTERVAL,
    DEFAULT_TIMEOUT,
    NOTIFY_EVENTS,
    Diagnostic,
    Location,
    Notifier,
)
from reconciler.specs.yamlload import Document

#: a post that takes longer than this is not a notification, it is a hang
MAX_TIMEOUT: Final = 60.0


def load(docs: Sequence[Document], schema_ok: Sequence[bool],
         sync_names: Collection[str]) -> tuple[dict[str, Notifier], list[list[Diagnostic]]]:
    """The valid Notifiers among ``docs``, and per document the findings of the rules
    (parallel to ``docs``). ``schema_ok``: whether each passed the schema; ``sync_names``:
    every SecretSync defined, valid or not."""
    found = rules.unique_names(docs, "Notifier")
    out: dict[str, Notifier] = {}
    for doc, ok, diags in zip(docs, schema_ok, found, strict=True):
        diags += _rules(doc, sync_names)
        if ok and not any(d.severity == "error" for d in diags):
            out[doc.data["name"]] = _model(doc)
    return dict(sorted(out.items())), found


def _rules(doc: Document, sync_names: Collection[str]) -> list[Diagnostic]:
    data: Any = doc.data
    found: list[Diagnostic] = []
    for i, name in enumerate(data.get("syncs") or ()):
        if isinstance(name, str) and name not in sync_names:
            known = ", ".join(sorted(sync_names)) or "none"
            found.append(doc.diagnostic(("syncs", i), f"no SecretSync named '{name}' (syncs: {known}); "
                                        "this notifier will never report on it", "warning"))
    timeout = data.get("timeout")
    if isinstance(timeout, str):
        try:
            seconds = values.parse_duration(timeout)
        except ValueError:
            seconds = None  # the schema already said so
        if seconds is not None and not 1 <= seconds <= MAX_TIMEOUT:
            found.append(doc.diagnostic(("timeout",), f"must be between 1s and {MAX_TIMEOUT:g}s"))
    return found


def _model(doc: Document) -> Notifier:
    data: Any = doc.data
    syncs = data.get("syncs")
    return Notifier(
        name=data["name"],
        location=Location(doc.file, doc.line(("name",))),
        url=credentials.parse_ref(data["url"], doc.file.parent),
        events=tuple(e for e in NOTIFY_EVENTS if e in (data.get("events") or NOTIFY_EVENTS)),
        syncs=tuple(syncs) if syncs else None,
        min_interval_seconds=(values.parse_duration(data["minInterval"]) if "minInterval" in data
                              else DEFAULT_MIN_INTERVAL),
        timeout_seconds=values.parse_duration(data["timeout"]) if "timeout" in data else DEFAULT_TIMEOUT,
        description=data.get("description", ""),
    )
