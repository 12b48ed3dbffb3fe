"""Windmill fixtures: one emulator (plain HTTP, as a self-hosted instance) for the whole
session, reset per test, and the official ``wmill`` client pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.emulators.windmill import WindmillEmulator

WM_WORKSPACE = "team"
WM_OTHER_WORKSPACE = "elsewhere"
WM_USER = "admin"
WM_TOKEN = "wm-test-token-not-a-secret-7d2e"
WM_OTHER_TOKEN = "wm-test-token-other-workspace-51ac"
WM_TOKEN_ENV = "RECONCILER_TEST_WINDMILL_TOKEN"


@pytest.fixture(scope="session")
def windmill_server() -> Iterator[WindmillEmulator]:
    wm = WindmillEmulator(None)
    wm.add_token(WM_TOKEN, WM_WORKSPACE, user=WM_USER)
    wm.add_token(WM_OTHER_TOKEN, WM_OTHER_WORKSPACE, user="other")
    wm.start()
    try:
        yield wm
    finally:
        wm.stop()


@pytest.fixture
def windmill(windmill_server: WindmillEmulator, monkeypatch: pytest.MonkeyPatch) -> WindmillEmulator:
    """A clean emulator per test, counts reset, the test token in the environment."""
    from reconciler import calls

    windmill_server.reset()
    calls.reset()
    monkeypatch.setenv(WM_TOKEN_ENV, WM_TOKEN)
    return windmill_server


@pytest.fixture
def wm_client(windmill: WindmillEmulator) -> Iterator[Any]:
    """The official ``wmill`` client (it appends ``/api`` itself), for out-of-band edits and assertions."""
    import wmill

    client = wmill.Windmill(base_url=windmill.url, token=WM_TOKEN, workspace=WM_WORKSPACE)
    yield client
    client.client.close()


@pytest.fixture
def windmill_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Our retry waits, recorded instead of slept (fake time)."""
    from reconciler.destinations.windmill import client

    waits: list[float] = []
    monkeypatch.setattr(client, "sleep", waits.append)
    return waits
