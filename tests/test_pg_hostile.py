"""The PostgreSQL state used as a stranger would, and abused: what goes wrong names what is
wrong (never "internal error", never a password), and nothing runs twice or half-applies."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import pytest

from reconciler.daemon.execute import execute, init_state
from reconciler.sources import catalog
from reconciler.specs.loader import load
from reconciler.state.location import Opener, StateLocation
from tests.fixtures_postgres import PgState
from tests.support.cli import Workspace


def test_a_run_whose_state_database_is_gone_fails_naming_it(tmp_path: Path, aws_endpoint: str,
                                                            pg_state: PgState) -> None:
    """The database dropped (or down) under a running daemon: the run fails with the state's
    own error, not "internal error (StateError)", which reads as a bug in reconciler."""
    ws = Workspace(tmp_path, aws_endpoint)
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": "1"})
    specs = load(ws.specs)
    opener = Opener(StateLocation(ws.state, pg_state.url, pg_state.key_file), name="r1")
    init_state(opener)
    pg_state.cluster.sql(f"DROP DATABASE {pg_state.db} WITH (FORCE)")
    try:
        result = execute(specs, specs.syncs["app"], opener, "run1", "trigger", destinations=None,
                         sources=catalog.default())
    finally:
        opener.close()
    error = result.outcome.error or ""
    assert "internal error" not in error and "PostgreSQL state at" in error, error


def test_a_url_with_its_host_in_the_query_connects_and_says_where(pg_state: PgState, tmp_path: Path) -> None:
    """libpq's ``postgresql:///DB?host=…&port=…`` (the usual form for a Unix socket
    directory) must reach libpq as written, and messages must name that host, not localhost."""
    from reconciler.state.pg.url import parse

    c = pg_state.cluster
    url = (f"postgresql:///{pg_state.db}?host=127.0.0.1&port={c.port}&user=reconciler"
           f"&password_file={pg_state.password_file}")
    assert parse(url).where == f"127.0.0.1:{c.port}/{pg_state.db}"
    assert parse("postgresql:///app?host=/run/postgresql").where == "/run/postgresql:5432/app"
    assert parse("postgresql://h/?dbname=app").where == "h:5432/app"
    StateLocation(tmp_path, url, pg_state.key_file).open().close()


@pytest.mark.parametrize("lease", ["0", "-5", "0.5", "nan", "inf", "1e9"])
def test_a_lease_that_cannot_work_is_refused_at_start(tmp_path: Path, aws_endpoint: str, lease: str) -> None:
    """nan and inf used to start a replica whose every heartbeat failed ("interval out of
    range"): it held nothing, for ever; a lease of years is never renewed in time for the
    others, who drop its row while it runs."""
    from reconciler.cli import main

    ws = Workspace(tmp_path, aws_endpoint)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["run", str(ws.specs), "--listen", "off", "--state-dir", str(ws.state),
                     f"--lease-seconds={lease}"])
    # nan and inf are no number of seconds to the command line itself; the others to the daemon's checks
    expected = "not a finite number of seconds" if lease in ("nan", "inf") else "--lease-seconds must be"
    assert code == 1 and expected in err.getvalue(), err.getvalue()


def test_a_live_replica_with_a_longer_lease_is_not_forgotten_by_the_others(pg_state: PgState,
                                                                          tmp_path: Path) -> None:
    """Each row is judged by its own lease (as liveness is): a replica beating every 400 s
    (lease 1200) must not be deleted by one whose lease is 30 (20 x 30 = 600 s)."""
    from reconciler.state.pg import members

    st: Any = StateLocation(tmp_path, pg_state.url, pg_state.key_file).open()
    members.heartbeat(st.db, "slow", 1200.0, 0, starting=True)
    pg_state.cluster.sql("UPDATE reconciler_replicas SET heartbeat_at = now() - interval '700 seconds'", pg_state.db)
    assert members.heartbeat(st.db, "fast", 30.0, 0, starting=True) == ["fast", "slow"]
    st.close()


def test_after_the_servers_sessions_end_a_replica_is_back_at_its_next_heartbeat(pg_state: PgState,
                                                                               tmp_path: Path) -> None:
    """A server restart, a failover or pg_terminate_backend ends every pooled session; each
    heartbeat then drew one dead connection from the pool, so a replica with ten held no sync
    for ten heartbeats (100 s at the default lease) while the database was fine."""
    import time

    from reconciler.errors import StateError
    from reconciler.state.pg import members

    db: Any = StateLocation(tmp_path, pg_state.url, pg_state.key_file).database(pool_size=8)
    try:
        conns = [db.pool.getconn() for _ in range(8)]  # a busy daemon's pool: every connection made
        for conn in conns:
            db.pool.putconn(conn)
        pg_state.cluster.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "  # noqa: S608
                             f"WHERE datname = '{pg_state.db}' AND pid <> pg_backend_pid()")
        time.sleep(0.2)
        failed = 0
        for _ in range(3):
            try:
                members.heartbeat(db, "r1", 30.0, 0)
            except StateError:
                failed += 1
                time.sleep(0.5)  # a heartbeat's interval, shortened
        assert failed <= 1, f"{failed} heartbeats failed after the sessions ended"
        assert members.heartbeat(db, "r1", 30.0, 0) == ["r1"]
    finally:
        db.close()


def test_a_listing_shared_by_a_group_is_not_used_for_a_sync_another_replica_wrote_since(
        tmp_path: Path, aws_endpoint: str, pg_state: PgState, sm_client: Any) -> None:
    """Replicas starting together (or a takeover, or an `apply` from a laptop) both run a
    sync: the second must plan against the first's writes. A group's shared listing was
    taken before this sync's lock, while another replica held it and wrote: planned against
    that listing, the second run recreated every key, "deleted outside reconciler"."""
    from reconciler.engine.reconcile import Reconciler

    ws = Workspace(tmp_path, aws_endpoint)
    ws.write_spec("syncs.yaml", [ws.sync(n, secretPath=f"/{n}", syncOptions={"keySchema": f"{n}/{{{{secretKey}}}}"})
                                 for n in ("s1", "s2")])
    for n in ("s1", "s2"):
        ws.set_secrets({"A": f"{n}-1"}, path=f"/{n}")
    specs = load(ws.specs)
    loc = StateLocation(ws.state, pg_state.url, pg_state.key_file)
    here, there = loc.open(), loc.open()
    s1, s2 = specs.syncs["s1"], specs.syncs["s2"]
    try:
        mine = Reconciler(specs, here)
        with mine.sharing([s1, s2]):
            assert not mine.apply_sync(s1).failed  # lists the target once, for s2 too
            theirs = Reconciler(specs, there).apply_sync(s2)  # another replica runs s2 meanwhile
            assert [r.change.key for r in theirs.results] == ["s2/A"]
            again = mine.apply_sync(s2)
    finally:
        here.close()
        there.close()
    assert not again.failed and again.results == [], [(r.change.key, r.change.reason) for r in again.results]
    versions = sm_client.list_secret_version_ids(SecretId="s2/A", IncludeDeprecated=True)["Versions"]
    assert len(versions) == 1, versions


def test_every_replica_series_the_docs_name_is_exported_from_the_start() -> None:
    """An alert on rate(reconciler_lease_takeovers_total[…]) needs the series before the first
    takeover; a labelled counter never incremented is not exported at all."""
    from prometheus_client import CollectorRegistry, generate_latest

    from reconciler.daemon.fleet import Fleet

    registry = CollectorRegistry()
    Fleet(lambda: None, "r1", 30.0, lambda: [], lambda _n, _r: True, registry)
    text = generate_latest(registry).decode()
    for series in ('reconciler_replica_held_syncs{replica="r1"}', 'reconciler_lease_takeovers_total{replica="r1"}',
                   "reconciler_replicas_live"):
        assert series in text, text


def test_two_live_replicas_with_one_name_are_told_so(pg_state: PgState, tmp_path: Path) -> None:
    """Two processes given the same --replica-name share one row: each believes it owns the
    same syncs (the lock keeps them from running one at once, not from running it twice),
    and nothing said so. A heartbeat that finds its row last written by another process logs it."""
    import json

    from reconciler.logging import configure
    from reconciler.state.pg import members

    st: Any = StateLocation(tmp_path, pg_state.url, pg_state.key_file).open()
    logs = io.StringIO()
    configure("json", "info", stream=logs)
    try:
        members.heartbeat(st.db, "r1", 30.0, 0, starting=True)
        members.heartbeat(st.db, "r1", 30.0, 0)
        assert "replica_name_taken" not in logs.getvalue()
        # the other process's beat
        pg_state.cluster.sql("UPDATE reconciler_replicas SET host = 'other-host', pid = 4242", pg_state.db)
        members.heartbeat(st.db, "r1", 30.0, 0)
    finally:
        st.close()
    events = [json.loads(line) for line in logs.getvalue().splitlines()]
    taken = [e for e in events if e["event"] == "fleet.replica_name_taken"]
    assert taken and "other-host:4242" in taken[0]["message"] and "--replica-name" in taken[0]["message"], events


def test_a_password_rotated_in_its_file_is_used_by_the_next_connection(pg_state: PgState, tmp_path: Path) -> None:
    """?password_file= is a reference (a Kubernetes Secret mounted as a file is updated in
    place): a rotated password must be read when connecting, as libpq reads a passfile. It
    was read once at start, so after a rotation every new connection (a restart of the
    server, the pool's hourly renewal) failed until the replica was restarted."""
    import time

    from reconciler.errors import StateError
    from reconciler.state.pg import members

    StateLocation(tmp_path, pg_state.url, pg_state.key_file).open().close()
    role, c, db_name = f"rot_{pg_state.db}", pg_state.cluster, pg_state.db
    c.sql(f"CREATE ROLE {role} LOGIN PASSWORD 'first-password'")
    c.sql(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}", db_name)
    c.sql(f"GRANT USAGE ON SEQUENCE reconciler_requests_id_seq TO {role}", db_name)
    pw = tmp_path / "rotating"
    pw.write_text("first-password\n")
    url = f"postgresql://{role}@127.0.0.1:{c.port}/{db_name}?password_file={pw}"
    db: Any = StateLocation(tmp_path, url, pg_state.key_file).database(pool_size=2)
    try:
        assert members.heartbeat(db, "r1", 30.0, 0, starting=True) == ["r1"]
        c.sql(f"ALTER ROLE {role} PASSWORD 'second-password'")
        pw.write_text("second-password\n")
        c.sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'")  # noqa: S608
        ok = False
        for _ in range(6):
            try:
                ok = members.heartbeat(db, "r1", 30.0, 0) == ["r1"]
                break
            except StateError as e:
                assert "password" not in str(e).replace("password authentication", ""), e
                time.sleep(0.5)
        assert ok, "the rotated password was never used"
    finally:
        db.close()


@pytest.mark.parametrize("flag", ["--replica-name=" + "r" * 254, "--replica-name=réplica", "--replica-name=a\nb",
                                  "--replica-name= lead", "--shutdown-timeout=nan"])
def test_a_replica_name_postgresql_would_alter_is_refused(tmp_path: Path, aws_endpoint: str, flag: str) -> None:
    """The name is also the sessions' application_name, whose non-ASCII characters
    PostgreSQL shows as '?' (a newline would also split a log line for a human reader)."""
    from reconciler.cli import main

    ws = Workspace(tmp_path, aws_endpoint)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["run", str(ws.specs), "--listen", "off", "--state-dir", str(ws.state), flag])
    expected = "not a finite number of seconds" if "nan" in flag else "must"
    assert code == 1 and expected in err.getvalue(), err.getvalue()


def test_a_background_task_that_fails_on_the_state_says_why(tmp_path: Path, aws_endpoint: str,
                                                            pg_state: PgState) -> None:
    """A spec removed (SIGHUP) while the database is gone: the task that records the removal
    fails. The log said only `error_type: StateError`; the state's own message names the
    database and never a value, so it is logged."""
    from tests.support.daemon import DaemonHarness, wait_until

    ws = Workspace(tmp_path, aws_endpoint)
    for n in ("a", "b"):
        schema = {"keySchema": f"{n}/{{{{secretKey}}}}"}
        ws.write_spec(f"{n}.yaml", [ws.sync(n, secretPath=f"/{n}", syncOptions=schema)])
        ws.set_secrets({"A": "1"}, path=f"/{n}")
    loc = StateLocation(ws.state, pg_state.url, pg_state.key_file)
    h = DaemonHarness(ws, state=loc, replica="r1", lease_seconds=3.0, state_dir=tmp_path / "local").start()
    try:
        h.wait_idle()
        pg_state.cluster.sql(f"DROP DATABASE {pg_state.db} WITH (FORCE)")
        (ws.specs / "b.yaml").unlink()
        h.daemon.request_reload()
        wait_until(lambda: h.events("daemon.task_failed", task="record-removed"), 30, "the task to fail")
        event = h.events("daemon.task_failed", task="record-removed")[0]
        assert "PostgreSQL state at" in event.get("error", ""), event
    finally:
        assert h.stop() == 0


@pytest.mark.slow
def test_after_a_long_outage_the_state_is_usable_as_soon_as_the_database_is_back(tmp_path: Path,
                                                                               pg_cluster: Any) -> None:
    """psycopg_pool retries a failed connection with a doubling delay for five minutes: after a
    75 s outage, three replicas stayed 'holding no sync' 50-60 s after the database was back.
    Its own cluster (stopped and started here)."""
    import os
    import time

    from reconciler.errors import StateError
    from reconciler.state.pg import members
    from tests.support.postgres import APP_PASSWORD, Cluster

    own = Cluster(pg_cluster.bin)
    own.start()
    try:
        own.create_app_role()
        db_name = own.new_database()
        pw, key = tmp_path / "pw", tmp_path / "key"
        pw.write_text(APP_PASSWORD)
        key.write_bytes(os.urandom(32))
        db: Any = StateLocation(tmp_path, own.app_url(db_name, pw), key).database(pool_size=4)
        members.heartbeat(db, "r1", 30.0, 0, starting=True)
        own.stop()  # fast, not immediate: the test cluster runs without synchronous commits
        down = time.monotonic()
        while time.monotonic() - down < 40:  # heartbeats while it is away
            with contextlib.suppress(StateError):
                members.heartbeat(db, "r1", 30.0, 0)
            time.sleep(1)
        own.start()
        back = time.monotonic()
        while True:
            try:
                members.heartbeat(db, "r1", 30.0, 0)
                break
            except StateError:
                assert time.monotonic() - back < 20, "the database is back, the state is not"
        assert time.monotonic() - back < 12, f"usable {time.monotonic() - back:.1f}s after the database was back"
        db.close()
    finally:
        own.destroy()


def test_a_pool_that_cannot_connect_says_why(pg_state: PgState, tmp_path: Path) -> None:
    """'cannot be reached (no connection within 10s)' hid the server's own answer (the
    database was dropped, the password rotated): /readyz and a trigger said nothing useful."""
    from reconciler.errors import StateError
    from reconciler.state.pg import members

    db: Any = StateLocation(tmp_path, pg_state.url, pg_state.key_file).database(pool_size=2)
    try:
        pg_state.cluster.sql(f"DROP DATABASE {pg_state.db} WITH (FORCE)")
        errors = []
        for _ in range(2):  # the first may fail on the connection the server just ended
            with pytest.raises(StateError) as e:
                members.heartbeat(db, "r1", 30.0, 0)
            errors.append(str(e.value))
        assert f'database "{pg_state.db}" does not exist' in errors[-1], errors
    finally:
        db.close()


def test_a_running_replica_whose_key_is_no_longer_the_databases_holds_nothing(pg_state: PgState,
                                                                              tmp_path: Path) -> None:
    """The key was checked at start only: after a key reset ('A lost key') or another key's
    check written meanwhile, a replica still running would record fingerprints under a key
    the others do not share, and each side would rewrite the other's secrets. Its heartbeat
    now checks the key too, and fails (the replica then holds no sync) saying why."""
    from reconciler.errors import StateError
    from reconciler.state.pg import members

    db: Any = StateLocation(tmp_path, pg_state.url, pg_state.key_file).database(pool_size=2)
    try:
        assert members.heartbeat(db, "r1", 30.0, 0, starting=True) == ["r1"]
        pg_state.cluster.sql("UPDATE reconciler_meta SET value = 'another' WHERE name = 'fingerprint-key-check'",
                             pg_state.db)
        with pytest.raises(StateError, match="not the key the state database"):
            members.heartbeat(db, "r1", 30.0, 0)
        pg_state.cluster.sql("DELETE FROM reconciler_meta WHERE name = 'fingerprint-key-check'", pg_state.db)
        with pytest.raises(StateError, match=r"key check .* was removed"):
            members.heartbeat(db, "r1", 30.0, 0)
    finally:
        db.close()
