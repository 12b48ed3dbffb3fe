"""The Windmill transport against the emulator: retries and Retry-After on fake time, errors
as one clear line that never repeats a response body, TLS with a private CA."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler import calls
from reconciler.destinations import errors
from reconciler.destinations.windmill.client import WindmillHttp, api_base, retry_after
from tests.emulators.windmill import Fault, WindmillEmulator
from tests.fixtures_windmill import WM_TOKEN, WM_WORKSPACE

API = f"/api/w/{WM_WORKSPACE}/variables"


def _http(wm: WindmillEmulator, token: str = WM_TOKEN, **kw: object) -> WindmillHttp:
    return WindmillHttp(wm.url, WM_WORKSPACE, token, **kw)  # type: ignore[arg-type]


def test_list_and_read_through_the_transport(windmill: WindmillEmulator, windmill_sleeps: list[float]) -> None:
    windmill.store.put(WM_WORKSPACE, "f/app/K", "value-1")
    http = _http(windmill)
    rows = http.call("GET", "list", "list", params={"path_start": "f/app/", "page": 1, "per_page": 100}).body
    assert [r["path"] for r in rows] == ["f/app/K"] and rows[0]["value"] is None
    assert http.call("GET", "get_value", "get_value/f/app/K").body == "value-1"
    assert calls.by_call("windmill") == {"list": 1, "get_value": 1}
    http.close()


def test_retry_after_is_honoured_and_bounded(windmill: WindmillEmulator, windmill_sleeps: list[float]) -> None:
    windmill.inject(Fault("GET", rf"{API}/list", status=429, headers={"Retry-After": "7"}, times=2))
    http = _http(windmill)
    assert http.call("GET", "list", "list").body == []
    assert windmill_sleeps == [7.0, 7.0]
    windmill.inject(Fault("GET", rf"{API}/list", status=503, times=10))
    with pytest.raises(errors.Transient, match=r"^list failed: HTTP 503$"):
        http.call("GET", "list", "list")
    assert windmill.count("GET", rf"{API}/list") == 3 + 5, "five tries in all"
    assert all(w <= 8.0 for w in windmill_sleeps[2:]) and len(windmill_sleeps) == 2 + 4


def test_a_long_retry_after_is_raised_not_slept(windmill: WindmillEmulator, windmill_sleeps: list[float]) -> None:
    windmill.inject(Fault("GET", rf"{API}/list", status=429, headers={"Retry-After": "600"}))
    with pytest.raises(errors.Throttled) as e:
        _http(windmill).call("GET", "list", "list")
    assert e.value.retry_after == 600 and windmill_sleeps == []


def test_dropped_connections_are_retried(windmill: WindmillEmulator, windmill_sleeps: list[float]) -> None:
    windmill.inject(Fault("GET", rf"{API}/list", drop="before"))
    assert _http(windmill).call("GET", "list", "list").status == 200
    assert calls.snapshot()[("windmill", "list", "connection-error")] == 1 and len(windmill_sleeps) == 1


def test_a_wrong_token_is_one_clear_line(windmill: WindmillEmulator, windmill_sleeps: list[float]) -> None:
    with pytest.raises(errors.AuthError) as e:
        _http(windmill, token="wrong-token").call("GET", "list", "list")
    text = str(e.value)
    assert "\n" not in text and "401" in text and "token" in text and WM_WORKSPACE in text
    assert "wrong-token" not in text and "Not authorized" not in text, "our words, not the body"
    assert windmill_sleeps == [], "an auth error is not retried"


def test_bad_requests_are_classified_without_the_body(windmill: WindmillEmulator,
                                                      windmill_sleeps: list[float]) -> None:
    http = _http(windmill)
    body = {"path": "f/app/K", "value": "canary-value-xyz", "is_secret": True, "description": ""}
    assert http.call("POST", "create", "create", json=body, expect=(201,)).status == 201
    with pytest.raises(errors.Conflict, match="already exists"):
        http.call("POST", "create", "create", json=body, expect=(201,))
    with pytest.raises(errors.Permanent, match="not a valid Windmill path") as e:
        http.call("POST", "create", "create", json={**body, "path": "f/app/bad.name"}, expect=(201,))
    assert "bad.name" not in str(e.value)
    with pytest.raises(errors.NotFound):
        http.call("GET", "get_value", "get_value/f/app/missing", key="f/app/missing")


def test_config_errors() -> None:
    with pytest.raises(errors.ConfigError, match="token"):
        WindmillHttp("http://127.0.0.1:1", WM_WORKSPACE, None)
    with pytest.raises(errors.ConfigError, match="instanceUrl"):
        api_base("ftp://example")
    assert api_base(None) == "https://app.windmill.dev/api"
    assert api_base("http://127.0.0.1:8000/") == "http://127.0.0.1:8000/api"
    assert retry_after({"Retry-After": "2.5"}) == 2.5 and retry_after({}) is None
    assert retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0


def test_tls_needs_the_ca_bundle(tmp_path: Path, windmill_sleeps: list[float]) -> None:
    import trustme

    wm = WindmillEmulator(trustme.CA())
    wm.add_token(WM_TOKEN, WM_WORKSPACE)
    wm.start()
    try:
        with pytest.raises(errors.ConfigError, match="caBundle"):
            _http(wm).call("GET", "list", "list")
        ca = str(wm.write_ca(tmp_path / "ca.pem"))
        assert _http(wm, ca_bundle=ca).call("GET", "list", "list").body == []
        with pytest.raises(errors.ConfigError, match="caBundle"):
            _http(wm, ca_bundle=str(tmp_path / "missing.pem"))
    finally:
        wm.stop()


def test_a_200_that_is_not_windmill_speaking_is_an_error(windmill: WindmillEmulator,
                                                         windmill_sleeps: list[float]) -> None:
    http = _http(windmill)
    windmill.inject(Fault("GET", rf"{API}/list", status=200, body=b"<html>Sign in</html>",
                          headers={"Content-Type": "text/html"}))
    with pytest.raises(errors.Permanent, match=r"not a Windmill answer \(text/html\).*instanceUrl"):
        http.call("GET", "list", "list", answer=list)
    windmill.inject(Fault("GET", rf"{API}/list", status=200, body={"not": "a list"}))
    with pytest.raises(errors.Permanent, match="not a Windmill answer"):
        http.call("GET", "list", "list", answer=list)
    assert http.call("GET", "list", "list", answer=list).body == []


def test_retries_stop_at_the_run_deadline(windmill: WindmillEmulator, windmill_sleeps: list[float]) -> None:
    from reconciler import deadline
    from reconciler.errors import DeadlineExceeded

    windmill.inject(Fault("GET", rf"{API}/list", status=429, headers={"Retry-After": "30"}))
    with deadline.run(5.0), pytest.raises(DeadlineExceeded, match="list"):
        _http(windmill).call("GET", "list", "list")
    assert windmill_sleeps == [], "a wait past the deadline is not started"
