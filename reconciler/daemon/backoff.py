"""Retry delays after a failed reconcile: exponential from ``retryInterval``, jittered, never
sooner than a destination's ``Retry-After``, never later than the sync's regular interval.

Pure (the random source is passed in), so tests check the policy without waiting for it.
"""

from __future__ import annotations

import random
from collections.abc import Callable

#: each failure doubles the wait
FACTOR = 2.0
#: +/- this share of the delay, so syncs that failed together do not retry together
JITTER = 0.2


def retry_delay(
    attempt: int,
    retry_interval: float,
    interval: float,
    retry_after: float | None = None,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before attempt ``attempt + 1`` (``attempt`` >= 1 failures so far).

    The cap is the sync's regular interval (a failing sync is retried at least as often as a
    healthy one is checked), and at least ``retry_interval``.
    """
    cap = max(retry_interval, interval)
    base = min(cap, retry_interval * FACTOR ** max(0, attempt - 1))
    delay = base * (1.0 + JITTER * (2.0 * rand() - 1.0))
    delay = min(delay, cap)
    if retry_after is not None and retry_after > delay:
        delay = retry_after  # the destination said when: earlier would only be refused again
    return max(delay, 0.0)
