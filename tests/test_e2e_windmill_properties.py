"""Properties of the whole loop against the Windmill emulator: whatever the source and the
folder looked like (out-of-band sets, deletes, description edits, foreign variables), after
one apply the next plan is empty and a further apply writes nothing; variables outside the
scope (a sub-folder, a sibling folder ``path_start``'s LIKE also matches, other owners)
never change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.emulators.windmill import WindmillEmulator
from tests.fixtures_windmill import WM_WORKSPACE
from tests.support.cli import apply_converges
from tests.test_e2e_windmill import FOLDER, OUTSIDE, WRITES, WindmillWorkspace

KEYS = st.sampled_from(["A", "B", "C", "D_1", "e-2"])
VALUES = st.sampled_from(["v1", "v2", "", "a much longer value with spaces", "ünïcödé"])
COMMENTS = st.sampled_from(["", "a comment", "another"])
SOURCES = st.dictionaries(KEYS, st.tuples(VALUES, COMMENTS), max_size=5)


@st.composite
def edits(draw: st.DrawFn) -> list[tuple[str, str, str]]:
    ops = st.tuples(st.sampled_from(["set", "delete", "describe", "foreign", "plain"]), KEYS, VALUES)
    return draw(st.lists(ops, max_size=4))


def _oob(client: Any, op: str, key: str, value: str) -> None:
    path = FOLDER + key
    if op == "set":
        client.set_variable(path, value, is_secret=True)
    elif op == "delete":
        client.client.delete(f"/w/{WM_WORKSPACE}/variables/delete/{path}")
    elif op == "plain":  # replaced by a plain (non-secret) variable
        client.client.delete(f"/w/{WM_WORKSPACE}/variables/delete/{path}")
        client.set_variable(path, value, is_secret=False)
    elif op == "describe":
        client.post(f"/w/{WM_WORKSPACE}/variables/update/{path}", json={"description": "edited"},
                    raise_for_status=False)
    else:  # someone else's variable appears in the folder
        client.set_variable(FOLDER + "FOREIGN_" + key.replace("-", "_"), value, is_secret=False)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=SOURCES, second=SOURCES, noise=edits())
def test_apply_converges_and_never_touches_outside_scope(
    tmp_path_factory: Any, windmill: WindmillEmulator, wm_client: Any, windmill_sleeps: list[float],
    first: dict[str, tuple[str, str]], second: dict[str, tuple[str, str]], noise: list[tuple[str, str, str]],
) -> None:
    windmill.reset()
    for path, value in OUTSIDE.items():
        windmill.store.put(WM_WORKSPACE, path, value)
    stamps = {p: windmill.store.variable(WM_WORKSPACE, p).edited_at for p in OUTSIDE}  # type: ignore[union-attr]
    ws = WindmillWorkspace(Path(tmp_path_factory.mktemp("ws")), windmill)
    ws.write_spec("app.yaml", [ws.sync(reconcile={"maxDeletes": "100%"})])

    for source, edits_ in ((first, []), (second, noise)):
        for e in edits_:
            _oob(wm_client, *e)
        ws.set_secrets({k: {"value": v, "comment": c} if c else v for k, (v, c) in source.items()})
        if not apply_converges(ws, "windmill", WRITES, source_empty=not source):
            continue
        want = {FOLDER + k: (v, c) for k, (v, c) in source.items()}
        for path, (value, comment) in want.items():
            var = windmill.store.variable(WM_WORKSPACE, path)
            assert var is not None and (var.value, var.description, var.is_secret) == (value, comment, True)
        in_folder = {p for p in windmill.store.paths(WM_WORKSPACE)
                     if p.startswith(FOLDER) and "/" not in p[len(FOLDER):]}
        assert in_folder == set(want), "everything else in the folder is deleted (no key schema: all is scope)"
    for path, value in OUTSIDE.items():
        var = windmill.store.variable(WM_WORKSPACE, path)
        assert var is not None and var.value == value and var.edited_at == stamps[path]
    assert ws.leaks() == []
