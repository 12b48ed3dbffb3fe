"""PostgreSQL fixtures: one throwaway cluster per test session, a fresh database per test.

Skipped, saying why, only when the server binaries are absent (``.ci/run`` installs Debian's
``postgresql`` package, so CI always has them) or psycopg is not installed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.postgres import APP_PASSWORD, Cluster, bindir

# libpq reads PG* variables: none from the developer's shell may reach a test
for _var in [v for v in os.environ if v.startswith("PG")]:
    del os.environ[_var]


@dataclass(frozen=True)
class PgState:
    """A fresh database and what a replica needs to use it: the URL (password by reference)
    and the shared key file."""

    cluster: Cluster
    db: str
    url: str
    key_file: Path
    password_file: Path


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install -e '.[postgres]')")
    found = bindir()
    if found is None:
        pytest.skip("the PostgreSQL server binaries (initdb, pg_ctl) are not installed: "
                    "apt-get install postgresql (.ci/run does)")
    cluster = Cluster(found)
    try:
        cluster.start()
        cluster.create_app_role()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def pg_state(pg_cluster: Cluster, tmp_path: Path) -> PgState:
    db = pg_cluster.new_database()
    password = tmp_path / "pg-password"
    password.write_text(APP_PASSWORD + "\n")
    password.chmod(0o600)
    key = tmp_path / "state.key"
    key.write_bytes(os.urandom(32))
    key.chmod(0o600)
    return PgState(pg_cluster, db, pg_cluster.app_url(db, password), key, password)


@pytest.fixture
def pg_db(pg_state: PgState, tmp_path: Path) -> Iterator[Any]:
    """The state database of ``pg_state``, opened as a replica opens it (a small pool)."""
    from reconciler.state.location import StateLocation

    d = StateLocation(tmp_path, pg_state.url, pg_state.key_file).database(pool_size=4)
    yield d
    d.close()
