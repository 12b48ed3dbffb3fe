"""Small value parsers shared by the loader and rules: durations, delete caps, folder paths."""

from __future__ import annotations

import re
from typing import Final

_DURATION: Final = re.compile(r"(?=\d)(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_PERCENT: Final = re.compile(r"(\d{1,3}(?:\.\d+)?)%")


def parse_duration(text: str) -> float:
    """``1h30m`` -> 5400.0 seconds. Units d, h, m, s, in that order, each at most once."""
    m = _DURATION.fullmatch(text.strip()) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 5m, 1h30m)")
    d, h, mi, s = (int(g) if g else 0 for g in m.groups())
    return float(((d * 24 + h) * 60 + mi) * 60 + s)


def parse_max_deletes(value: int | float | str) -> tuple[float, bool]:
    """``25%`` -> (25.0, True); ``10`` -> (10.0, False)."""
    if isinstance(value, bool):
        raise ValueError("maxDeletes must be a count or a percentage")
    if isinstance(value, int | float):
        if value < 0 or value != int(value):
            raise ValueError("maxDeletes must be a non-negative integer")
        return float(value), False
    m = _PERCENT.fullmatch(value.strip())
    if m is None or float(m.group(1)) > 100:
        raise ValueError("maxDeletes percentage must be between 0% and 100%")
    return float(m.group(1)), True


def normalise_secret_path(path: str) -> str:
    """Leading '/', no trailing '/' except the root (as upstream: ``/a/`` is ``/a``)."""
    return "/" + path.strip().strip("/")
