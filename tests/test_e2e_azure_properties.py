"""Properties of the whole loop against the Key Vault emulator: whatever the source and the
vault looked like (out-of-band sets, soft deletes, purges, disables), after one apply the
next plan is empty and a further apply writes nothing; names outside the scope never change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.emulators.azure_keyvault import FakeIdentityProvider, KeyVaultEmulator
from tests.support.cli import apply_converges
from tests.test_e2e_azure import WRITES, AzureWorkspace

KEYS = st.sampled_from(["A", "B", "C", "D_1", "e-2"])
VALUES = st.sampled_from(["v1", "v2", "", "a much longer value with spaces", "ünïcödé"])
SOURCES = st.dictionaries(KEYS, VALUES, max_size=5)
OUTSIDE = {"other-A": "keep-1", "app2-A": "keep-2", "xapp-B": "keep-3"}


@st.composite
def edits(draw: st.DrawFn) -> list[tuple[str, str, str]]:
    ops = st.tuples(st.sampled_from(["set", "delete", "purge", "disable"]), KEYS, VALUES)
    return draw(st.lists(ops, max_size=4))


def _oob(kv: Any, op: str, key: str, value: str) -> None:
    from azure.core.exceptions import HttpResponseError

    name = "app-" + key.replace("_", "-")
    try:
        if op == "set":
            kv.set_secret(name, value)
        elif op == "disable":
            kv.update_secret_properties(name, enabled=False)
        else:
            kv.begin_delete_secret(name, _polling_interval=0.01).wait()
            if op == "purge":
                kv.purge_deleted_secret(name)
    except HttpResponseError:
        pass  # missing, soft-deleted: the edit did not apply, fine


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=SOURCES, second=SOURCES, noise=edits())
def test_apply_converges_and_never_touches_outside_scope(
    tmp_path_factory: Any, keyvault: KeyVaultEmulator, azure_idp_server: FakeIdentityProvider,
    azure_ca_file: Path, kv_client: Any, first: dict[str, str], second: dict[str, str],
    noise: list[tuple[str, str, str]],
) -> None:
    keyvault.reset()
    for name, value in OUTSIDE.items():
        kv_client.set_secret(name, value)
    ws = AzureWorkspace(Path(tmp_path_factory.mktemp("ws")), keyvault, azure_idp_server, azure_ca_file)
    ws.write_spec("app.yaml", [ws.sync(reconcile={"maxDeletes": "100%"})])

    disabled: set[str] = set()
    for source, edits_ in ((first, []), (second, noise)):
        keyvault.vault.advance(2)  # `updated` has one-second resolution: edits land in a later second
        for e in edits_:
            _oob(kv_client, *e)
            if e[0] == "disable":
                disabled.add("app-" + e[1].replace("_", "-"))
        keyvault.vault.advance(2)
        ws.set_secrets(dict(source))
        if not apply_converges(ws, "azure-key-vault", WRITES, source_empty=not source):
            continue
        live = {p.name: p for p in kv_client.list_properties_of_secrets()}
        want = {"app-" + k.replace("_", "-"): v for k, v in source.items()}
        for name, value in want.items():
            if name in disabled and name in live and not live[name].enabled:
                continue  # left alone, reported
            assert kv_client.get_secret(name).value == value
        for name, p in live.items():
            if name.startswith("app-") and p.enabled:
                assert name in want, f"{name} should have been deleted"
    for name, value in OUTSIDE.items():
        assert kv_client.get_secret(name).value == value
    assert ws.leaks() == []
