"""What only the PostgreSQL backend has to get right: the URL takes no literal password, the
schema migrates itself (once, even from replicas starting together), the shared key is
checked (never stored), read-only use is read-only on the server, and errors say where."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import StateError
from reconciler.model import InventoryEntry, SecretValue
from reconciler.state.location import StateLocation
from reconciler.state.pg import schema
from reconciler.state.pg.url import parse
from tests.fixtures_postgres import PgState
from tests.support.postgres import APP_PASSWORD, APP_USER, free_port


@pytest.mark.parametrize("url", [
    f"postgresql://{APP_USER}:{APP_PASSWORD}@127.0.0.1/db",
    f"postgresql://127.0.0.1/db?user={APP_USER}&password={APP_PASSWORD}",
])
def test_a_literal_password_in_the_url_is_refused_without_repeating_it(url: str) -> None:
    with pytest.raises(StateError) as e:
        parse(url)
    assert "literal password" in str(e.value) and "password_file" in str(e.value)
    assert APP_PASSWORD not in str(e.value)


def test_a_client_key_passphrase_in_the_url_is_refused_without_repeating_it() -> None:
    with pytest.raises(StateError) as e:
        parse(f"postgresql://127.0.0.1/db?sslkey=/k&sslpassword={APP_PASSWORD}")
    assert "sslpassword" in str(e.value) and APP_PASSWORD not in str(e.value)


def test_other_urls_are_refused_clearly() -> None:
    with pytest.raises(StateError, match="must start with postgresql://"):
        parse("mysql://db/x")
    with pytest.raises(StateError, match="more than one password reference"):
        parse("postgresql://h/d?password_file=/a&password_credential=b")


def test_password_by_reference(tmp_path: Path) -> None:
    f = tmp_path / "pw"
    f.write_text(APP_PASSWORD + "\n")
    got = parse(f"postgresql://{APP_USER}@127.0.0.1:5433/app?password_file={f}&sslmode=disable")
    assert got.password == APP_PASSWORD and APP_PASSWORD not in got.conninfo and APP_PASSWORD not in repr(got)
    assert "password_file" not in got.conninfo and "sslmode=disable" in got.conninfo
    assert got.where == "127.0.0.1:5433/app"
    (tmp_path / "pg").write_text("x")
    cred = parse("postgresql://h/d?password_credential=pg", {"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert cred.password == "x"
    with pytest.raises(StateError, match=r"CREDENTIALS_DIRECTORY is not set"):
        parse("postgresql://h/d?password_credential=pg", {})
    with pytest.raises(StateError, match="cannot read the state database password"):
        parse(f"postgresql://h/d?password_file={tmp_path / 'missing'}")


def test_the_password_file_is_what_logs_in(pg_state: PgState, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("nope")
    bad = StateLocation(tmp_path, pg_state.cluster.app_url(pg_state.db, wrong), pg_state.key_file)
    with pytest.raises(StateError, match=r"PostgreSQL state at 127\.0\.0\.1:\d+/t_\w+ failed: .*password"):
        bad.open()
    StateLocation(tmp_path, pg_state.url, pg_state.key_file).open().close()


def test_the_key_file_is_required_and_checked(pg_state: PgState, tmp_path: Path) -> None:
    with pytest.raises(StateError, match="--state-key-file"):
        StateLocation(tmp_path, pg_state.url, None).open()
    short = tmp_path / "short.key"
    short.write_bytes(b"x" * 8)
    with pytest.raises(StateError, match="at least 16"):
        StateLocation(tmp_path, pg_state.url, short).open()
    first = StateLocation(tmp_path, pg_state.url, pg_state.key_file).open()
    first.put_inventory("s", {"k": InventoryEntry("k", first.fingerprinter(SecretValue("v")), "1")})
    other = tmp_path / "other.key"
    other.write_bytes(os.urandom(32))
    for readonly in (False, True):
        with pytest.raises(StateError, match=r"not the key the state database .* was made with: every replica "
                                             r"must use the same key file"):
            StateLocation(tmp_path, pg_state.url, other).open(readonly=readonly)
    first.close()
    rows = pg_state.cluster.sql("SELECT name, value FROM reconciler_meta", pg_state.db)
    key = pg_state.key_file.read_bytes()
    assert all(key.hex() not in str(v) and key.decode("latin-1") not in str(v) for _, v in rows)


def _migrate(url: str, key_file: str, barrier: Any, out: Any) -> None:
    barrier.wait()
    try:
        st = StateLocation(Path("/nonexistent"), url, Path(key_file)).open()
        st.update_status(f"s{os.getpid()}", syncStatus="succeeded")
        st.close()
        out.put("ok")
    except Exception as e:
        out.put(f"error: {e!r}")


def test_replicas_starting_together_migrate_once(pg_state: PgState) -> None:
    ctx = multiprocessing.get_context("fork")
    barrier, out = ctx.Barrier(6), ctx.Queue()
    procs = [ctx.Process(target=_migrate, args=(pg_state.url, str(pg_state.key_file), barrier, out))
             for _ in range(6)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(60)
    assert results == ["ok"] * 6
    versions = pg_state.cluster.sql("SELECT version FROM reconciler_schema ORDER BY version", pg_state.db)
    assert [v for (v,) in versions] == list(range(1, schema.LATEST + 1))
    assert pg_state.cluster.sql("SELECT count(*) FROM reconciler_status", pg_state.db) == [(6,)]


def test_a_newer_schema_is_refused(pg_state: PgState, tmp_path: Path) -> None:
    StateLocation(tmp_path, pg_state.url, pg_state.key_file).open().close()
    newer = schema.LATEST + 1
    pg_state.cluster.sql(f"INSERT INTO reconciler_schema (version) VALUES ({newer})", pg_state.db)  # noqa: S608
    for readonly in (False, True):
        with pytest.raises(StateError, match="newer than this reconciler knows"):
            StateLocation(tmp_path, pg_state.url, pg_state.key_file).open(readonly=readonly)


def test_read_only_use_is_read_only_on_the_server(pg_state: PgState, tmp_path: Path) -> None:
    loc = StateLocation(tmp_path, pg_state.url, pg_state.key_file)
    loc.open().close()
    ro: Any = loc.open(readonly=True)
    with ro.db.connection() as conn:
        assert conn.execute("SHOW default_transaction_read_only").fetchone()[0] == "on"
        # a replica cut off by the network: the server ends its sessions, and so frees its locks
        assert conn.execute("SHOW tcp_keepalives_idle").fetchone()[0] == "10"
        with pytest.raises(Exception, match="read-only transaction"):
            conn.execute("DELETE FROM reconciler_status")
    ro.close()


def test_an_unreachable_database_is_a_clear_error(tmp_path: Path, pg_state: PgState) -> None:
    url = f"postgresql://{APP_USER}@127.0.0.1:{free_port()}/x"
    with pytest.raises(StateError, match=r"PostgreSQL state at 127\.0\.0\.1:\d+/x failed: .*refused"):
        StateLocation(tmp_path, url, pg_state.key_file).open()


def test_the_lock_names_the_replica_that_holds_it(pg_state: PgState, tmp_path: Path) -> None:
    loc = StateLocation(tmp_path, pg_state.url, pg_state.key_file)
    a, b = loc.open(), loc.open()
    held = rf"sync app is being reconciled by reconciler@.*:{os.getpid()}"
    with a.hold("app"), pytest.raises(StateError, match=held):
        b.hold("app", wait=0.3).__enter__()
    a.close()
    b.close()


def test_after_the_first_start_a_role_with_only_dml_grants_is_enough(pg_state: PgState, tmp_path: Path) -> None:
    """What docs/high-availability.md promises a DBA: CREATE for the first start only, then
    SELECT, INSERT, UPDATE, DELETE on the tables and USAGE on the requests' sequence."""
    from reconciler.state.pg import members, requests

    StateLocation(tmp_path, pg_state.url, pg_state.key_file).open().close()  # the first start creates
    role = f"dml_{pg_state.db}"
    c, db = pg_state.cluster, pg_state.db
    c.sql(f"CREATE ROLE {role} LOGIN PASSWORD '{APP_PASSWORD}'")
    for grant in (f"REVOKE CREATE ON SCHEMA public FROM PUBLIC, {role}", f"GRANT USAGE ON SCHEMA public TO {role}",
                  f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
                  f"GRANT USAGE ON SEQUENCE reconciler_requests_id_seq TO {role}"):
        c.sql(grant, db)
    url = pg_state.url.replace(f"//{APP_USER}@", f"//{role}@")
    st: Any = StateLocation(tmp_path, url, pg_state.key_file).open()
    st.put_inventory("s", {"k": InventoryEntry("k", st.fingerprinter(SecretValue("v")), "1")})
    st.update_status("s", syncStatus="succeeded")
    with st.hold("s"):
        pass
    assert members.heartbeat(st.db, "r1", 30.0, 0, starting=True) == ["r1"]
    assert requests.ask(st.db, "s", "trigger", "r1", waited=True) > 0
    st.close()
    ro: Any = StateLocation(tmp_path, url, pg_state.key_file).open(readonly=True)
    assert set(ro.inventory("s")) == {"k"}
    ro.close()
    fresh = f"{db}_fresh"
    c.sql(f"CREATE DATABASE {fresh}")
    c.sql(f"REVOKE CREATE ON SCHEMA public FROM PUBLIC, {role}", fresh)
    with pytest.raises(StateError, match=r"may not create tables there: grant it CREATE on the schema"):
        StateLocation(tmp_path, url.replace(f"/{db}?", f"/{fresh}?"), pg_state.key_file).open()
