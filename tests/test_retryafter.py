"""Retry-After as a hostile or broken server may send it: never a crash, never a wait that
cannot be scheduled. float() reads "inf", "nan" and "1e308"; the daemon then added the wait to
now() (OverflowError) and a CLI run was told to "wait infs"."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from reconciler import retryafter
from reconciler.daemon.backoff import retry_delay


@pytest.mark.parametrize("raw", ["inf", "-inf", "nan", "1e308", "Infinity"])
def test_a_wait_no_clock_can_reach_is_capped_or_unread(raw: str) -> None:
    for name in ("retry-after", "retry-after-ms", "x-ms-retry-after-ms"):
        wait = retryafter.seconds({name: raw})
        assert wait is None or (math.isfinite(wait) and 0 <= wait <= retryafter.MAX_SECONDS), (name, raw, wait)
        delay = retry_delay(1, 30.0, 300.0, wait)
        assert datetime.now(UTC) + timedelta(seconds=delay)  # the daemon schedules it


def test_ordinary_values_are_read_as_sent() -> None:
    assert retryafter.seconds({"Retry-After": "120"}) == 120.0
    assert retryafter.seconds({"retry-after-ms": "1500"}) == 1.5
    assert retryafter.seconds({"Retry-After": "-5"}) == 0.0
    assert retryafter.seconds({"Retry-After": "soon"}) is None
