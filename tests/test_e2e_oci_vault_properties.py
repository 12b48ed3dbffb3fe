"""Properties of the whole loop against the OCI Vault emulator: whatever the source and the
vault looked like (out-of-band versions, scheduled deletions, secrets created by hand), after
one apply the next plan is empty and a further apply writes nothing; names outside the
scope never change. Out-of-band edits go through Oracle's own client."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.emulators.oci_vault import DEFAULT_COMPARTMENT, DEFAULT_KEY, DEFAULT_VAULT, OciVaultEmulator
from tests.fixtures_oci_vault import OCI_TEST_PAGE_SIZE, OciApiKey
from tests.support.cli import apply_converges
from tests.test_e2e_oci_vault import WRITES, OciWorkspace

KEYS = st.sampled_from(["A", "B", "C", "D_1", "e.2"])
VALUES = st.sampled_from(["v1", "v2", "", "a much longer value with spaces", "ünïcödé"])
SOURCES = st.dictionaries(KEYS, VALUES, max_size=5)
OUTSIDE = {"other-A": "keep-1", "app2-A": "keep-2", "xapp-B": "keep-3"}


@st.composite
def edits(draw: st.DrawFn) -> list[tuple[str, str, str]]:
    ops = st.tuples(st.sampled_from(["update", "schedule", "create"]), KEYS, VALUES.filter(bool))
    return draw(st.lists(ops, max_size=4))


def _oob(clients: tuple[Any, Any], op: str, key: str, value: str) -> None:
    import oci

    vc, _ = clients
    name = f"app-{key}"
    content = oci.vault.models.Base64SecretContentDetails(content_type="BASE64",
                                                          content=base64.b64encode(value.encode()).decode())
    found = [s for s in vc.list_secrets(DEFAULT_COMPARTMENT, vault_id=DEFAULT_VAULT, name=name).data
             if s.lifecycle_state != "DELETED"]
    try:
        if op == "create":
            vc.create_secret(oci.vault.models.CreateSecretDetails(
                compartment_id=DEFAULT_COMPARTMENT, vault_id=DEFAULT_VAULT, key_id=DEFAULT_KEY, secret_name=name,
                secret_content=content))
        elif found and op == "update":
            vc.update_secret(found[0].id, oci.vault.models.UpdateSecretDetails(secret_content=content))
        elif found:
            vc.schedule_secret_deletion(found[0].id, oci.vault.models.ScheduleSecretDeletionDetails())
    except oci.exceptions.ServiceError:
        pass  # exists, or not ACTIVE: the edit did not apply, fine, it is noise


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=SOURCES, second=SOURCES, noise=edits())
def test_apply_converges_and_never_touches_outside_scope(
    tmp_path_factory: Any, oci_dest: OciVaultEmulator, oci_api_key: OciApiKey, oci_clients: tuple[Any, Any],
    first: dict[str, str], second: dict[str, str], noise: list[tuple[str, str, str]],
) -> None:
    emu = oci_dest
    emu.reset()
    emu.store.default_page_size = emu.store.max_page_size = OCI_TEST_PAGE_SIZE
    for name, value in OUTSIDE.items():
        emu.store.seed(name, value.encode())
    ws = OciWorkspace(Path(tmp_path_factory.mktemp("ws")), emu, oci_api_key)
    ws.write_spec("app.yaml", [ws.sync(reconcile={"maxDeletes": "100%"})])

    for source, edits_ in ((first, []), (second, noise)):
        for e in edits_:
            _oob(oci_clients, *e)
        ws.set_secrets(dict(source))
        if not apply_converges(ws, "oci-vault", WRITES, source_empty=not source):
            continue
        want = {f"app-{k}": v for k, v in source.items() if v}  # OCI cannot hold "": treated as absent
        active = emu.store.names(states=frozenset({"ACTIVE"}))
        for name, value in want.items():
            assert name in active and emu.store.value(name) == value.encode()
        for name in active:
            if name.startswith("app-"):
                assert name in want, f"{name} should have been scheduled for deletion"
    for name, value in OUTSIDE.items():
        assert emu.store.value(name) == value.encode()
        assert emu.store.names(states=frozenset({"ACTIVE"})) >= set(OUTSIDE)
    assert ws.leaks() == []
