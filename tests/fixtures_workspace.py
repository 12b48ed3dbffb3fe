"""The workspace most tests use (specs, a secrets file and a state directory, AWS at moto)
and the daemons started in it. A test module that needs another kind defines its own `ws`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.cli import Workspace
from tests.support.daemon import DaemonHarness, harnesses


@pytest.fixture
def ws(tmp_path: Path, aws_endpoint: str) -> Workspace:
    return Workspace(tmp_path, aws_endpoint)


@pytest.fixture
def daemon(ws: Workspace) -> Iterator[Callable[..., DaemonHarness]]:
    """``daemon(**config)`` starts a daemon on ``ws`` (stopped at the end of the test)."""
    with harnesses(ws) as make:
        yield make
