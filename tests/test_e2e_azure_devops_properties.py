"""Properties of the whole loop against the Azure DevOps emulator: whatever the source and the
group looked like (someone else setting, removing, un-hiding or adding variables), after one
apply the next plan is empty and a further apply writes nothing; every wanted variable holds
its value as a secret, and variables outside the scope -- and other groups -- never change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.emulators.azure_devops import AzureDevOpsEmulator
from tests.fixtures_azure_devops import ADO_PROJECT_ID, AzureDevOpsWorkspace, ado_add, ado_edit
from tests.support.cli import apply_converges

WRITES = {"add-group", "update-group", "delete-group"}
KEYS = st.sampled_from(["A", "B", "C", "D_1", "e.2"])
VALUES = st.sampled_from(["v1", "v2", "", "a much longer value with spaces", "ünïcödé"])
SOURCES = st.dictionaries(KEYS, VALUES, max_size=5)
FOREIGN = {"OTHER_A": "keep-1", "APPX_B": "keep-2"}  # secrets in the group, outside APP_{{secretKey}}
PLAIN = {"LOG_LEVEL": "info"}


@st.composite
def edits(draw: st.DrawFn) -> list[tuple[str, str, str]]:
    ops = st.tuples(st.sampled_from(["set", "remove", "plain", "stray"]), KEYS, VALUES)
    return draw(st.lists(ops, max_size=4))


def _oob(emu: AzureDevOpsEmulator, op: str, key: str, value: str) -> None:
    """One edit as a colleague would make it in the web UI (skipped when the group is gone)."""
    if emu.org.group_named(ADO_PROJECT_ID, "dev") is None:
        return
    name = f"APP_{key}"
    if op == "set":
        ado_edit(emu, "dev", set_secret={name: value or "x"})
    elif op == "remove":
        group = emu.org.group_named(ADO_PROJECT_ID, "dev")
        if group is not None and len(group.variables) > 1 and name in group.variables:
            ado_edit(emu, "dev", remove=(name,))
    elif op == "plain":
        ado_edit(emu, "dev", set_plain={name: value})
    else:
        ado_edit(emu, "dev", set_secret={f"APP_STRAY_{key}": "stray"})


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=SOURCES, second=SOURCES, noise=edits(), foreign=st.booleans())
def test_apply_converges_and_never_touches_outside_scope(
    tmp_path_factory: Any, azure_devops: AzureDevOpsEmulator, first: dict[str, str], second: dict[str, str],
    noise: list[tuple[str, str, str]], foreign: bool,
) -> None:
    emu = azure_devops
    emu.org.groups.clear()
    if foreign:
        ado_add(emu, "dev", FOREIGN, PLAIN)
    other = ado_add(emu, "shared", {"APP_A": "not-ours"})
    other_version = emu.org.groups[other.id].modified_on
    ws = AzureDevOpsWorkspace(Path(tmp_path_factory.mktemp("ws")), emu)
    ws.write_spec("app.yaml", [ws.sync(reconcile={"maxDeletes": "100%"})])

    for source, edits_ in ((first, []), (second, noise)):
        for e in edits_:
            _oob(emu, *e)
        ws.set_secrets(dict(source))
        if not apply_converges(ws, "azure-devops", WRITES, source_empty=not source):
            continue
        want = {f"APP_{k}": v for k, v in source.items() if v != ""}  # "" cannot be stored: absent
        group = emu.org.group_named(ADO_PROJECT_ID, "dev")
        ours = {k: v for k, v in (group.variables if group else {}).items() if k.startswith("APP_")
                and not k.startswith("APPX_")}
        if not want and not foreign:
            continue  # emptied or never created; strays may stay when deletes were refused
        assert group is not None
        for name, value in want.items():
            assert ours[name].is_secret and ours[name].value == value, name
        assert set(ours) == set(want), "strays and removed keys are gone"
    if foreign:
        group = emu.org.group_named(ADO_PROJECT_ID, "dev")
        assert group is not None
        for name, value in {**FOREIGN, **PLAIN}.items():
            assert group.variables[name].value == value
        assert not group.variables["LOG_LEVEL"].is_secret
    shared = emu.org.group_named(ADO_PROJECT_ID, "shared")
    assert shared is not None and shared.modified_on == other_version
    assert emu.org.secret_value(other.id, "APP_A") == "not-ours"
    assert ws.leaks() == []
