"""The Windmill session against the emulator, opened through the catalog with the shared
naming steps beside it (tests/support/dest.py): listing, reads, every action, the version
reported after writes, and the descriptor's rules. Only our own sleep runs on fake time."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler import calls
from reconciler.changes import Action, Change, ChangeResult
from reconciler.destinations import catalog, errors
from reconciler.destinations.contract import ConnectionInfo
from reconciler.destinations.windmill import rules
from reconciler.model import SecretValue, SourceSecret, frozen_map
from tests.emulators.windmill import Fault, WindmillEmulator
from tests.fixtures_windmill import WM_TOKEN, WM_WORKSPACE
from tests.support.canary import CANARIES, find_leaks
from tests.support.dest import Dest, view

C1, C2, C3 = CANARIES
KIND = "windmill"
FOLDER = "f/team/app/"
API = f"/api/w/{WM_WORKSPACE}/variables"


def _connection(wm: WindmillEmulator, token: str = WM_TOKEN) -> ConnectionInfo:
    return ConnectionInfo(name="wm", app="windmill", settings={"instanceUrl": wm.url}, method="token",
                          credentials={"token": SecretValue(token)})


@pytest.fixture
def make(windmill: WindmillEmulator, windmill_sleeps: list[float]) -> Any:
    made: list[Dest] = []

    def _make(schema: str | None = None, folder: str = FOLDER, token: str = WM_TOKEN) -> Dest:
        opts = {"keySchema": schema} if schema else {}
        d = Dest(KIND, view(config={"workspace": WM_WORKSPACE, "path": folder}, options=opts, connection="wm",
                            settings={"instanceUrl": windmill.url}), _connection(windmill, token))
        made.append(d)
        return d

    yield _make
    for d in made:
        d.close()


def _results(d: Dest, changes: list[Change]) -> list[ChangeResult]:
    out: list[ChangeResult] = []
    d.apply(changes, out.append)
    return out


def _create(d: Dest, key: str, value: str, description: str = "") -> Change:
    return Change(Action.CREATE, key, value=SecretValue(value), fingerprint="fp",
                  set_properties=frozen_map({"description": description}))


def test_descriptor_rules() -> None:
    d = catalog.default()["windmill"]
    assert d.session == "reconciler.destinations.windmill.session:WindmillVariables"
    assert d.names.problem("f/team/app/DB_PASSWORD") is None
    assert "letters, digits" in (d.names.problem("f/team/app/user.email") or "")
    assert d.names.problem("f/team/" + "k" * 250) is not None, "255 characters at most"
    assert d.capabilities.tags is False and d.capabilities.max_value_bytes == rules.MAX_VALUE_BYTES
    assert rules.property_problems({"description": "x" * 10_001}) and not rules.property_problems({})
    v = view(config={"workspace": " Team ", "path": "f/a/"}, settings={"instanceUrl": "HTTP://Wm.local:8000/"})
    assert d.identity(v) == ("windmill", "http://wm.local:8000", "team")
    assert d.identity(view(config={"workspace": "team", "path": "f/b/"}))[1] == "https://app.windmill.dev"


def test_render_takes_the_comment_as_description(make: Any) -> None:
    d = make("{{secretKey}}")
    entries, problems = d.desired([SourceSecret("A", SecretValue(C1), comment="why"),
                                   SourceSecret("B", SecretValue(C2))])
    assert problems == []
    assert {e.key: dict(e.properties) for e in entries} == {
        FOLDER + "A": {"description": "why", "is_secret": "true"},
        FOLDER + "B": {"description": "", "is_secret": "true"}}


def test_list_pages_filters_like_siblings_and_sub_folders(make: Any, windmill: WindmillEmulator) -> None:
    for i in range(230):
        windmill.store.put(WM_WORKSPACE, f"{FOLDER}K{i:03d}", "v", description=f"d{i}")
    for path in ("f/team/app/sub/NESTED", "f/team/appX/SIBLING", "f/teamXapp/K", "u/admin/K"):
        windmill.store.put(WM_WORKSPACE, path, "v")
    d = make()
    listed = d.list_entries()
    assert sorted(e.key for e in listed) == [f"{FOLDER}K{i:03d}" for i in range(230)]
    assert all(e.version and e.version.endswith("Z") and e.owner is None for e in listed)
    assert dict(listed[0].properties) == {"description": "d0", "is_secret": "true"}
    assert calls.by_call(KIND) == {"list": 3}
    queries = [r.query for r in windmill.log]
    assert all("per_page=100" in q and "path_start=f%2Fteam%2Fapp%2F" in q for q in queries)
    assert ["page=1" in queries[0], "page=2" in queries[1], "page=3" in queries[2]] == [True] * 3


def test_like_wildcards_in_the_folder_are_filtered_on_our_side(make: Any, windmill: WindmillEmulator) -> None:
    windmill.store.put(WM_WORKSPACE, "f/team/my_app/A", "mine")
    windmill.store.put(WM_WORKSPACE, "f/team/myXapp/B", "a LIKE match, not mine")
    d = make(folder="f/team/my_app/")
    assert [e.key for e in d.list_entries()] == ["f/team/my_app/A"]


def test_a_key_schema_with_a_slash_reaches_into_sub_folders(make: Any, windmill: WindmillEmulator) -> None:
    windmill.store.put(WM_WORKSPACE, FOLDER + "prod/A", "v")
    windmill.store.put(WM_WORKSPACE, FOLDER + "B", "v")
    windmill.store.put(WM_WORKSPACE, FOLDER + "other/C", "v")
    d = make("prod/{{secretKey}}")
    assert [e.key for e in d.list_entries()] == [FOLDER + "prod/A"]
    assert "path_start=f%2Fteam%2Fapp%2Fprod%2F" in windmill.log[0].query, "the schema's literal narrows the list"


def test_read_is_get_value_per_key_missing_left_out(make: Any, windmill: WindmillEmulator) -> None:
    for k, v in (("A", C1), ("B", C2), ("C", C3)):
        windmill.store.put(WM_WORKSPACE, FOLDER + k, v)
    d = make()
    got = d.read_values([FOLDER + "A", FOLDER + "C", FOLDER + "GONE", FOLDER + "A"])
    assert {k: v.reveal() for k, v in got.items()} == {FOLDER + "A": C1, FOLDER + "C": C3}
    assert calls.by_call(KIND) == {"get_value": 3}


def test_apply_reports_the_new_edited_at_after_one_listing(make: Any, windmill: WindmillEmulator) -> None:
    d = make()
    d.list_entries()
    results = _results(d, [_create(d, FOLDER + "A", C1, "why"), _create(d, FOLDER + "B", C2)])
    assert all(r.ok for r in results)
    for r in results:
        var = windmill.store.variable(WM_WORKSPACE, r.change.key)
        assert var is not None and var.is_secret and r.version == next(
            e.version for e in d.list_entries() if e.key == r.change.key)
    assert windmill.store.variable(WM_WORKSPACE, FOLDER + "A").description == "why"  # type: ignore[union-attr]
    assert windmill.count("GET", f"{API}/list") == 1 + 1 + 2, "one listing after the writes (and two checks here)"
    assert find_leaks([repr(r) for r in results]) == []


def test_a_failed_listing_after_writes_reports_them_without_a_version(make: Any, windmill: WindmillEmulator) -> None:
    d = make()
    d.list_entries()
    windmill.inject(Fault("GET", rf"{API}/list", status=500, times=5))
    results = _results(d, [_create(d, FOLDER + "A", C1)])
    assert [(r.ok, r.version) for r in results] == [(True, None)]
    assert windmill.store.value(WM_WORKSPACE, FOLDER + "A") == C1


def test_update_sends_only_what_changed(make: Any, windmill: WindmillEmulator) -> None:
    windmill.store.put(WM_WORKSPACE, FOLDER + "A", C1, description="old")
    d = make()
    d.list_entries()
    windmill.clear()
    only_description = Change(Action.UPDATE, FOLDER + "A", value=SecretValue(C1), fingerprint="fp",
                              value_changed=False, set_properties=frozen_map({"description": "new"}))
    assert all(r.ok for r in _results(d, [only_description]))
    var = windmill.store.variable(WM_WORKSPACE, FOLDER + "A")
    assert var is not None and (var.value, var.description) == (C1, "new")
    value_only = Change(Action.UPDATE, FOLDER + "A", value=SecretValue(C2), fingerprint="fp")
    assert all(r.ok for r in _results(d, [value_only]))
    var = windmill.store.variable(WM_WORKSPACE, FOLDER + "A")
    assert var is not None and (var.value, var.description, var.is_secret) == (C2, "new", True)
    assert windmill.count("POST", f"{API}/update/{FOLDER}A") == 2


def test_a_plain_variable_becomes_secret_when_its_value_is_written(make: Any, windmill: WindmillEmulator) -> None:
    windmill.store.put(WM_WORKSPACE, FOLDER + "A", "plain", is_secret=False)
    d = make()
    _results(d, [Change(Action.UPDATE, FOLDER + "A", value=SecretValue(C1), fingerprint="fp")])
    var = windmill.store.variable(WM_WORKSPACE, FOLDER + "A")
    assert var is not None and var.is_secret and var.value == C1


def test_create_of_a_taken_path_updates_it(make: Any, windmill: WindmillEmulator) -> None:
    windmill.store.put(WM_WORKSPACE, FOLDER + "A", "someone-else", description="theirs", is_secret=False)
    d = make()
    results = _results(d, [_create(d, FOLDER + "A", C1, "ours")])
    assert results[0].ok
    var = windmill.store.variable(WM_WORKSPACE, FOLDER + "A")
    assert var is not None and (var.value, var.description, var.is_secret) == (C1, "ours", True)


def test_delete_is_idempotent(make: Any, windmill: WindmillEmulator) -> None:
    windmill.store.put(WM_WORKSPACE, FOLDER + "A", "v")
    d = make()
    changes = [Change(Action.DELETE, FOLDER + "A"), Change(Action.DELETE, FOLDER + "NEVER")]
    assert [r.ok for r in _results(d, changes)] == [True, True]
    assert windmill.store.paths(WM_WORKSPACE) == set()
    assert windmill.count("GET", f"{API}/list") == 0, "nothing written that needs a version"


def test_a_refused_write_fails_that_change_only(make: Any, windmill: WindmillEmulator) -> None:
    d = make()
    too_big = _create(d, FOLDER + "BIG", "x" * 12_000)
    results = _results(d, [too_big, _create(d, FOLDER + "OK", C1)])
    by_key = {r.change.key: r for r in results}
    assert not by_key[FOLDER + "BIG"].ok and "value too large" in (by_key[FOLDER + "BIG"].error or "")
    assert by_key[FOLDER + "OK"].ok and by_key[FOLDER + "OK"].version is not None


def test_a_wrong_token_is_an_auth_error(make: Any) -> None:
    d = make(token="not-the-token")
    with pytest.raises(errors.AuthError, match="refused the token"):
        d.list_entries()


def test_missing_token_or_bad_url_are_config_errors(windmill: WindmillEmulator) -> None:
    desc = catalog.default()["windmill"]
    v = view(config={"workspace": WM_WORKSPACE, "path": FOLDER}, settings={"instanceUrl": windmill.url})
    with pytest.raises(errors.ConfigError, match="token"):
        desc.open(v, ConnectionInfo(name="wm", app="windmill", settings={"instanceUrl": windmill.url}))
    bad = ConnectionInfo(name="wm", app="windmill", settings={"instanceUrl": "ftp://x"},
                         credentials={"token": SecretValue(WM_TOKEN)})
    with pytest.raises(errors.ConfigError, match="instanceUrl"):
        desc.open(v, bad)


def test_a_server_that_ignores_page_is_not_listed_forever(make: Any, windmill: WindmillEmulator) -> None:
    for i in range(100):
        windmill.store.put(WM_WORKSPACE, f"{FOLDER}K{i:03d}", "v")
    rows = [{"workspace_id": WM_WORKSPACE, "path": f"{FOLDER}K{i:03d}", "is_secret": True, "extra_perms": {},
             "value": None, "description": "", "edited_at": "2026-01-01T00:00:00.000000Z"} for i in range(100)]
    windmill.inject(Fault("GET", rf"{API}/list", status=200, body=rows, times=5))
    with pytest.raises(errors.Permanent, match="same page twice"):
        make().list_entries()
    assert windmill.count("GET", f"{API}/list") == 2


def test_the_secret_flag_is_set_with_the_value_riding_along(make: Any, windmill: WindmillEmulator) -> None:
    windmill.store.put(WM_WORKSPACE, FOLDER + "A", C1, is_secret=False)
    d = make()
    assert dict(d.list_entries()[0].properties)["is_secret"] == "false"
    flag_only = Change(Action.UPDATE, FOLDER + "A", value=SecretValue(C1), fingerprint="fp", value_changed=False,
                       set_properties=frozen_map({"is_secret": "true"}))
    assert all(r.ok for r in _results(d, [flag_only]))
    var = windmill.store.variable(WM_WORKSPACE, FOLDER + "A")
    assert var is not None and var.is_secret and var.value == C1
    no_value = Change(Action.UPDATE, FOLDER + "A", value_changed=False,
                      set_properties=frozen_map({"is_secret": "true"}))
    assert [r.ok for r in _results(d, [no_value])] == [False]


def test_pending_only_has_nothing_to_find(make: Any, windmill: WindmillEmulator) -> None:
    from reconciler.destinations.naming import Scope

    windmill.store.put(WM_WORKSPACE, FOLDER + "A", "v")
    d = make()
    assert d.session.list(Scope(exact=frozenset({FOLDER + "A"}), wanted=frozenset({FOLDER + "A"}),
                                pending_only=True)) == []
    assert windmill.count() == 0, "Windmill has no soft delete: no call"
