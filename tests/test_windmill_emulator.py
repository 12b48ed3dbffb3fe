"""The Windmill emulator, proven with Windmill's own client: every behaviour the destination
relies on is driven here only through the official ``wmill`` SDK (its high-level
``get_variable`` / ``set_variable`` and, for the operations it has no method for, its own
authenticated ``get`` / ``post`` / httpx session), and must match the OpenAPI spec and
protocols.md §1. ``windmill-api`` (the generated client) is not used: it pins httpx<0.25.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.emulators.windmill import VERSION, Fault, Store, WindmillEmulator, like, seal
from tests.fixtures_windmill import WM_OTHER_TOKEN, WM_TOKEN, WM_USER, WM_WORKSPACE

V = f"/w/{WM_WORKSPACE}/variables"
API = f"/api{V}"
LISTABLE_REQUIRED = {"workspace_id", "path", "is_secret", "extra_perms"}


def _client(wm: WindmillEmulator, token: str = WM_TOKEN, workspace: str = WM_WORKSPACE) -> Any:
    import wmill

    return wmill.Windmill(base_url=wm.url, token=token, workspace=workspace)


def _create(c: Any, path: str, value: str = "v", *, is_secret: bool = True, description: str = "") -> httpx.Response:
    return c.post(f"{V}/create", raise_for_status=False,
                  json={"path": path, "value": value, "is_secret": is_secret, "description": description})


def _list(c: Any, **params: Any) -> list[dict[str, Any]]:
    resp = c.get(f"{V}/list", params=params)
    rows: list[dict[str, Any]] = resp.json()
    return rows


def test_set_variable_creates_then_updates(wm_client: Any, windmill: WindmillEmulator) -> None:
    wm_client.set_variable("u/admin/db_password", "s3cr3t", is_secret=True)
    assert [(r.method, r.path, r.status) for r in windmill.log] == [
        ("GET", f"{API}/get/u/admin/db_password", 404), ("POST", f"{API}/create", 201)]
    v = windmill.store.variable(WM_WORKSPACE, "u/admin/db_password")
    assert v is not None and v.is_secret and v.description == "" and v.edited_by == WM_USER
    wm_client.set_variable("u/admin/db_password", "rotated")
    assert windmill.count("POST", f"{API}/update/u/admin/db_password") == 1, "paths are sent unencoded"
    assert wm_client.get_variable("u/admin/db_password") == "rotated"
    assert windmill.store.variable(WM_WORKSPACE, "u/admin/db_password").is_secret, "update keeps is_secret"


def test_create_answers_201_text_and_duplicates_400(wm_client: Any) -> None:
    resp = _create(wm_client, "f/team/app/DB_URL", "postgres://x", description="the database")
    assert resp.status_code == 201 and resp.text == "variable f/team/app/DB_URL created"
    assert resp.headers["content-type"].startswith("text/plain")
    again = _create(wm_client, "f/team/app/DB_URL", "other")
    assert again.status_code == 400 and again.text == "Bad request: Variable f/team/app/DB_URL already exists"
    assert wm_client.get_variable("f/team/app/DB_URL") == "postgres://x"


def test_get_row_shape_and_decryption(wm_client: Any) -> None:
    _create(wm_client, "f/team/app/TOKEN", "plain-text-value", description="why")
    row = wm_client.get(f"{V}/get/f/team/app/TOKEN").json()
    assert LISTABLE_REQUIRED | {"is_draft"} <= set(row)
    assert row["value"] == "plain-text-value" and row["is_draft"] is False and row["description"] == "why"
    assert row["workspace_id"] == WM_WORKSPACE and row["extra_perms"] == {}
    assert wm_client.get(f"{V}/get/f/team/app/TOKEN", params={"decrypt_secret": "false"}).json()["value"] is None
    sealed = wm_client.get(f"{V}/get/f/team/app/TOKEN",
                           params={"decrypt_secret": "false", "include_encrypted": "true"}).json()["value"]
    assert sealed == seal("plain-text-value") and "plain-text-value" not in sealed
    assert wm_client.get_variable("f/team/app/TOKEN") == "plain-text-value"


def test_list_hides_secret_values_and_carries_edited_at(wm_client: Any, windmill: WindmillEmulator) -> None:
    _create(wm_client, "f/team/app/B_SECRET", "hidden-value")
    _create(wm_client, "f/team/app/A_PLAIN", "shown", is_secret=False)
    rows = _list(wm_client)
    assert [r["path"] for r in rows] == ["f/team/app/A_PLAIN", "f/team/app/B_SECRET"], "ordered by path"
    assert all(set(r) >= LISTABLE_REQUIRED for r in rows)
    assert rows[0]["value"] == "shown" and rows[1]["value"] is None
    assert "hidden-value" not in wm_client.get(f"{V}/list").text
    stamps = [datetime.fromisoformat(r["edited_at"]) for r in rows]
    assert stamps[0] > stamps[1], "created later, edited later"
    assert all(r["edited_by"] == WM_USER for r in rows)
    windmill.store.list_edited_at = False
    assert all("edited_at" not in r for r in _list(wm_client)), "an older server's rows"


def test_list_pages_with_page_and_per_page(wm_client: Any, windmill: WindmillEmulator) -> None:
    for i in range(250):
        windmill.store.put(WM_WORKSPACE, f"f/team/app/K{i:03d}", "v")
    pages = [_list(wm_client, path_start="f/team/app/", page=p, per_page=100) for p in (1, 2, 3, 4)]
    assert [len(p) for p in pages] == [100, 100, 50, 0]
    assert [r["path"] for p in pages for r in p] == [f"f/team/app/K{i:03d}" for i in range(250)]
    assert len(_list(wm_client)) == 250, "the server's default page is 1000"
    windmill.store.default_per_page = 30
    assert len(_list(wm_client, limit=100)) == 30, "limit is not a parameter: ignored (upstream's bug)"
    assert len(_list(wm_client, per_page=100000)) == 250, "per_page is clamped, not refused"
    assert windmill.count("GET", f"{API}/list") == 7


def test_path_start_is_a_like_prefix(wm_client: Any, windmill: WindmillEmulator) -> None:
    for path in ("f/team_a/X", "f/teamXa/Y", "f/team_a/sub/Z", "f/team_b/W", "u/admin/team_a"):
        windmill.store.put(WM_WORKSPACE, path, "v")
    paths = lambda **q: [r["path"] for r in _list(wm_client, **q)]  # noqa: E731
    assert paths(path_start="f/team_a/") == ["f/teamXa/Y", "f/team_a/X", "f/team_a/sub/Z"], "_ is a wildcard"
    assert paths(path_start="f/team\\_a/") == ["f/team_a/X", "f/team_a/sub/Z"], "unless escaped"
    assert paths(path_start="f/%/") == ["f/teamXa/Y", "f/team_a/X", "f/team_a/sub/Z", "f/team_b/W"]
    assert paths(path="f/team_a/X") == ["f/team_a/X"]
    assert like("a_c%").fullmatch("abcdef") and not like("a\\_c%").fullmatch("abc")


def test_exists(wm_client: Any) -> None:
    _create(wm_client, "u/admin/here")
    assert wm_client.get(f"{V}/exists/u/admin/here").json() is True
    assert wm_client.get(f"{V}/exists/u/admin/nowhere").json() is False


def test_update_is_partial_and_moves_edited_at(wm_client: Any, windmill: WindmillEmulator) -> None:
    _create(wm_client, "f/team/app/K", "v1", description="first")
    before = windmill.store.variable(WM_WORKSPACE, "f/team/app/K").edited_at
    resp = wm_client.post(f"{V}/update/f/team/app/K", json={"description": "second"})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    v = windmill.store.variable(WM_WORKSPACE, "f/team/app/K")
    assert (v.value, v.description, v.is_secret) == ("v1", "second", True) and v.edited_at > before
    wm_client.post(f"{V}/update/f/team/app/K", json={"value": "v2", "is_secret": True, "description": "third"})
    assert wm_client.get_variable("f/team/app/K") == "v2"
    flip = wm_client.post(f"{V}/update/f/team/app/K", json={"is_secret": False}, raise_for_status=False)
    assert flip.status_code == 400 and flip.text == "Bad request: cannot change is_secret without updating value too"
    missing = wm_client.post(f"{V}/update/f/team/app/NOPE", json={"value": "x"}, raise_for_status=False)
    assert missing.status_code == 404 and missing.text == "Not found: Variable not found at name f/team/app/NOPE"
    wm_client.post(f"{V}/update/f/team/app/K", json={"path": "f/team/app/RENAMED"})
    assert windmill.store.paths(WM_WORKSPACE) == {"f/team/app/RENAMED"}


def test_edited_at_strictly_increases_when_the_clock_stands_still() -> None:
    wm = WindmillEmulator(None, store=Store(clock=lambda: 1_800_000_000.0))
    wm.add_token(WM_TOKEN, WM_WORKSPACE)
    wm.start()
    try:
        c = _client(wm)
        _create(c, "u/admin/k")
        seen = [_list(c)[0]["edited_at"]]
        for i in range(5):
            c.post(f"{V}/update/u/admin/k", json={"value": f"v{i}"})
            seen.append(_list(c)[0]["edited_at"])
        assert seen == sorted(set(seen)) and len(seen) == 6
        assert seen[0] == "2027-01-15T08:00:00.000000Z" and seen[-1] == "2027-01-15T08:00:00.000005Z"
    finally:
        wm.stop()


def test_delete_is_200_even_when_missing_and_bulk_delete(wm_client: Any, windmill: WindmillEmulator) -> None:
    _create(wm_client, "u/admin/a")
    _create(wm_client, "u/admin/b")
    _create(wm_client, "u/admin/c")
    resp = wm_client.client.delete(f"{V}/delete/u/admin/a")
    assert resp.status_code == 200 and resp.text == "variable u/admin/a deleted"
    assert wm_client.client.delete(f"{V}/delete/u/admin/a").status_code == 200, "no existence check"
    bulk = wm_client.client.request("DELETE", f"{V}/delete_bulk", json={"paths": ["u/admin/b", "u/admin/zz"]})
    assert bulk.json() == ["u/admin/b"]
    assert windmill.store.paths(WM_WORKSPACE) == {"u/admin/c"}


@pytest.mark.parametrize(("body", "status", "text"), [
    ({"path": "f/team/bad.name", "value": "v", "is_secret": True, "description": ""}, 400,
     'SqlErr: error returned from database: new row for relation "variable" violates check constraint "proper_id"'),
    ({"path": "f/onlyfolder", "value": "v", "is_secret": True, "description": ""}, 400, "proper_id"),
    ({"path": "x/team/k", "value": "v", "is_secret": True, "description": ""}, 400, "proper_id"),
    ({"path": "f/team/" + "k" * 250, "value": "v", "is_secret": True, "description": ""}, 400,
     "character varying(255)"),
    ({"path": "f/team/k", "value": "x" * 11300, "is_secret": True, "description": ""}, 400,
     "character varying(15000)"),
    ({"path": "f/team/k", "value": "v", "is_secret": True, "description": "d" * 10001}, 400,
     "character varying(10000)"),
    ({"path": "f/team/k", "value": "v", "is_secret": True}, 422, "missing field `description`"),
])
def test_create_validation(wm_client: Any, windmill: WindmillEmulator, body: dict[str, Any], status: int,
                           text: str) -> None:
    resp = wm_client.post(f"{V}/create", json=body, raise_for_status=False)
    assert resp.status_code == status and text in resp.text
    assert windmill.store.paths(WM_WORKSPACE) == set()


def test_eleven_kilobytes_of_secret_fit(wm_client: Any) -> None:
    assert _create(wm_client, "f/team/big", "x" * 11000).status_code == 201
    assert _create(wm_client, "f/team/big_plain", "x" * 15000, is_secret=False).status_code == 201


def test_not_found_errors_are_text(wm_client: Any) -> None:
    resp = wm_client.get(f"{V}/get/u/admin/missing", raise_for_status=False)
    assert resp.status_code == 404 and resp.text == "Not found: Variable u/admin/missing not found"
    with pytest.raises(Exception, match="404, Not found: Variable u/admin/missing not found"):
        wm_client.get_variable("u/admin/missing")
    assert wm_client.get(f"{V}/nonsense", raise_for_status=False).status_code == 404


def test_bad_token_and_foreign_workspace_are_401(windmill: WindmillEmulator) -> None:
    with pytest.raises(Exception, match="401, Not authorized"):
        _client(windmill, token="wrong").get_variable("u/admin/x")
    other = _client(windmill, token=WM_OTHER_TOKEN)
    resp = other.get(f"{V}/list", raise_for_status=False)
    assert resp.status_code == 401 and resp.text == f"Not authorized: you are not a member of workspace {WM_WORKSPACE}"
    assert windmill.count(authorized=False) == 2 and windmill.count(authorized=True) == 0
    assert _client(windmill).version == VERSION, "the version needs no token"


def test_token_cookie_also_authenticates(windmill: WindmillEmulator) -> None:
    with httpx.Client(base_url=f"{windmill.url}/api", cookies={"token": WM_TOKEN}) as c:
        assert c.get(f"{V}/list").json() == []


def test_injected_throttling_and_gateway_errors(wm_client: Any, windmill: WindmillEmulator) -> None:
    windmill.inject(Fault("GET", rf"{API}/list", status=429, headers={"Retry-After": "3"}))
    resp = wm_client.get(f"{V}/list", raise_for_status=False)
    assert resp.status_code == 429 and resp.headers["retry-after"] == "3" and resp.text == "Too Many Requests"
    windmill.inject(Fault("POST", rf"{API}/create", status=503))
    resp = _create(wm_client, "u/admin/k")
    assert resp.status_code == 503 and resp.headers["content-type"] == "text/html"
    assert windmill.store.paths(WM_WORKSPACE) == set(), "an injected status does not run the operation"
    windmill.inject(Fault("POST", rf"{API}/create", status=502, process=True))
    assert _create(wm_client, "u/admin/k").status_code == 502
    assert windmill.store.paths(WM_WORKSPACE) == {"u/admin/k"}, "unless asked to: the answer is lost"
    assert _list(wm_client)[0]["path"] == "u/admin/k", "faults are used up"


def test_dropped_connections(wm_client: Any, windmill: WindmillEmulator) -> None:
    windmill.inject(Fault("POST", rf"{API}/create", drop="after"))
    with pytest.raises(httpx.TransportError):
        _create(wm_client, "u/admin/landed")
    assert windmill.store.paths(WM_WORKSPACE) == {"u/admin/landed"}, "it landed; the client cannot tell"
    windmill.inject(Fault("POST", rf"{API}/update/u/admin/landed", drop="before"))
    with pytest.raises(httpx.TransportError):
        wm_client.post(f"{V}/update/u/admin/landed", json={"value": "new"})
    assert wm_client.get_variable("u/admin/landed") == "v"
    windmill.inject(Fault("GET", rf"{API}/list", delay=0.3))
    started = time.monotonic()
    _list(wm_client)
    assert time.monotonic() - started >= 0.3


def test_request_log_counts(wm_client: Any, windmill: WindmillEmulator) -> None:
    for i in range(3):
        _create(wm_client, f"u/admin/k{i}")
    for i in range(3):
        wm_client.get_variable(f"u/admin/k{i}")
    assert windmill.count("POST", rf"{API}/create") == 3
    assert windmill.count("GET", rf"{API}/get_value/.*") == 3
    assert windmill.count() == 6
    windmill.reset()
    assert windmill.count() == 0 and windmill.store.paths(WM_WORKSPACE) == set()


def test_encrypt_and_contextual(wm_client: Any) -> None:
    assert wm_client.post(f"{V}/encrypt", json="abc").text == seal("abc")
    assert wm_client.get(f"{V}/list_contextual").json()[0]["name"] == "WM_WORKSPACE"


def test_https_with_a_ca_bundle(tmp_path: Path) -> None:
    import trustme
    import wmill

    ca = trustme.CA()
    wm = WindmillEmulator(ca)
    wm.add_token(WM_TOKEN, WM_WORKSPACE)
    wm.start()
    try:
        client = wmill.Windmill(base_url=wm.url, token=WM_TOKEN, workspace=WM_WORKSPACE,
                                verify=ssl.create_default_context(cafile=str(wm.write_ca(tmp_path / "ca.pem"))))
        client.set_variable("u/admin/tls", "over-tls", is_secret=True)
        assert wm.url.startswith("https://") and client.get_variable("u/admin/tls") == "over-tls"
    finally:
        wm.stop()


@pytest.fixture
def free_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    yield port


def test_runs_as_a_module_for_the_demo(tmp_path: Path, free_port: int) -> None:
    import wmill

    seed = tmp_path / "seed.yaml"
    seed.write_text("demo:\n  f/demo/app/EXISTING: {value: old, description: seeded}\n  u/admin/plain: hello\n")
    env = {**os.environ, "WM_DEMO_TOKEN": WM_TOKEN}
    proc = subprocess.Popen([sys.executable, "-m", "tests.emulators.windmill", "--port", str(free_port),
                             "--seed", str(seed), "--token-env", "WM_DEMO_TOKEN"],
                            env=env, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"windmill on http://127.0.0.1:{free_port}" in line and "demo" in line
        client = wmill.Windmill(base_url=f"http://127.0.0.1:{free_port}", token=WM_TOKEN, workspace="demo")
        assert client.get_variable("f/demo/app/EXISTING") == "old"
        rows = client.get("/w/demo/variables/list").json()
        assert [(r["path"], r["description"]) for r in rows] == [("f/demo/app/EXISTING", "seeded"),
                                                                ("u/admin/plain", "")]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
