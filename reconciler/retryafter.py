"""``Retry-After`` in seconds: the one reading every client uses.

The header is delta-seconds or an HTTP date (RFC 9110 §10.2.3); Microsoft services also send
``retry-after-ms`` / ``x-ms-retry-after-ms``. A value we cannot read is None (the caller
backs off on its own), never an error: a throttled answer must not become a crash.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

_MILLISECONDS = ("retry-after-ms", "x-ms-retry-after-ms")
#: a day: longer is a server's mistake (or "inf", which float() reads), and the daemon adds the
#: wait to now(), which overflows on 1e308
MAX_SECONDS = 86400.0


def _bounded(value: float) -> float | None:
    return min(MAX_SECONDS, max(0.0, value)) if not math.isnan(value) else None


def seconds(headers: Mapping[str, Any] | None, now: Callable[[], float] = time.time) -> float | None:
    """How long the answer asks us to wait, or None when it does not say (readably)."""
    if not headers:
        return None
    lower = {str(k).lower(): str(v).strip() for k, v in headers.items()}
    for name in _MILLISECONDS:
        raw = lower.get(name)
        if raw:
            try:
                return _bounded(float(raw) / 1000.0)
            except ValueError:
                pass
    raw = lower.get("retry-after")
    if not raw:
        return None
    try:
        return _bounded(float(raw))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime  # here: only a date needs it (it is not cheap)

    try:
        return _bounded(parsedate_to_datetime(raw).timestamp() - now())
    except (TypeError, ValueError, IndexError):
        return None
