"""Durations, delete caps and secret paths."""

from __future__ import annotations

import pytest

from reconciler.specs.loader import reconcile_options
from reconciler.specs.model import ReconcileOptions
from reconciler.specs.values import normalise_secret_path, parse_duration, parse_max_deletes


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30.0), ("5m", 300.0), ("1h", 3600.0), ("1h30m", 5400.0), ("2d", 172800.0),
    ("1d2h3m4s", 93784.0), ("0s", 0.0), ("90m", 5400.0),
])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "5 minutes", "1m1h", "1.5h", "-5s", "5ms", "h"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(("value", "parsed"), [
    (0, (0.0, False)), (10, (10.0, False)), ("25%", (25.0, True)), ("100%", (100.0, True)),
    ("0%", (0.0, True)), ("12.5%", (12.5, True)),
])
def test_parse_max_deletes(value: int | str, parsed: tuple[float, bool]) -> None:
    assert parse_max_deletes(value) == parsed


@pytest.mark.parametrize("value", [-1, 1.5, "150%", "25", "abc", True])
def test_parse_max_deletes_rejects(value: int | float | str) -> None:
    with pytest.raises(ValueError):
        parse_max_deletes(value)


@pytest.mark.parametrize(("path", "normal"), [
    ("/", "/"), ("/my-secrets", "/my-secrets"), ("/my-secrets/", "/my-secrets"), ("/a/b//", "/a/b"),
])
def test_normalise_secret_path(path: str, normal: str) -> None:
    assert normalise_secret_path(path) == normal


def test_reconcile_defaults() -> None:
    assert reconcile_options({}) == ReconcileOptions()
    assert reconcile_options({"maxDeletes": "100%"}).max_deletes == (100.0, True)
