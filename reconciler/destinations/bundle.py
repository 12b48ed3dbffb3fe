"""Many-to-one mapping shared by destinations: one destination entry whose value is the JSON
object of a folder's keys, written in one canonical form and read back for import."""

from __future__ import annotations

import json
from collections.abc import Mapping


def canonical_json(obj: Mapping[str, object]) -> str:
    """The one serialisation we write for many-to-one, so re-reads compare byte for byte."""
    return json.dumps(dict(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonicalize(value: str) -> str:
    """A JSON object re-dumped canonically; anything else unchanged."""
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    return canonical_json(parsed) if isinstance(parsed, dict) else value


def scalars(value: str) -> dict[str, str]:
    """Top-level scalar members of a JSON object as text (strings as is, numbers/bools as
    JSON); nested values and null are ignored, as upstream's many-to-one import does."""
    try:
        parsed = json.loads(value)
    except ValueError:
        return {}
    if not isinstance(parsed, dict):
        return {}
    out: dict[str, str] = {}
    for k, v in parsed.items():
        if isinstance(v, str):
            out[k] = v
        elif isinstance(v, bool | int | float):
            out[k] = json.dumps(v)
    return out
