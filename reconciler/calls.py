"""Destination API-call counter: one count per (destination, call, outcome).

Destination modules record every request they send; tests, benchmarks and the daemon's
metrics read the same numbers, so "a no-op costs N calls" is measured, not assumed.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

_lock = threading.Lock()
_counts: Counter[tuple[str, str, str]] = Counter()
_listeners: list[Callable[[str, str, str], None]] = []


def record(destination: str, call: str, outcome: str = "ok") -> None:
    with _lock:
        _counts[(destination, call, outcome)] += 1
        listeners = list(_listeners)
    for listener in listeners:
        listener(destination, call, outcome)


def snapshot() -> dict[tuple[str, str, str], int]:
    with _lock:
        return dict(_counts)


def total(destination: str | None = None, call: str | None = None) -> int:
    with _lock:
        return sum(
            n
            for (d, c, _), n in _counts.items()
            if (destination is None or d == destination) and (call is None or c == call)
        )


def by_call(destination: str) -> dict[str, int]:
    out: Counter[str] = Counter()
    with _lock:
        for (d, c, _), n in _counts.items():
            if d == destination:
                out[c] += n
    return dict(out)


def reset() -> None:
    with _lock:
        _counts.clear()


def add_listener(fn: Callable[[str, str, str], None]) -> None:
    with _lock:
        _listeners.append(fn)


def remove_listener(fn: Callable[[str, str, str], None]) -> None:
    """Undo :func:`add_listener` (a stopped daemon stops counting)."""
    with _lock:
        if fn in _listeners:
            _listeners.remove(fn)
