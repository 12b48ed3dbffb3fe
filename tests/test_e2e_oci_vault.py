"""End to end through the CLI against the OCI Vault emulator, as a user would drive it.

Authentication is real: the connection holds an API signing key (the private key by file
reference), the oci SDK signs every request and the emulator verifies each signature.
Listings page (three secrets a page), so every test also exercises paging.
"""

from __future__ import annotations

import base64
import json
import math
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from reconciler import calls
from tests.emulators.oci_vault import DEFAULT_COMPARTMENT, DEFAULT_KEY, DEFAULT_VAULT, OciVaultEmulator
from tests.fixtures_oci_vault import OCI_TEST_PAGE_SIZE, OciApiKey, oci_connection_doc
from tests.support.canary import CANARIES
from tests.support.cli import Workspace

C1, C2, C3 = CANARIES
KIND = "oci-vault"
WRITES = {"CreateSecret", "UpdateSecret", "ScheduleSecretDeletion", "CancelSecretDeletion"}
DEST = {"compartmentOcid": DEFAULT_COMPARTMENT, "vaultOcid": DEFAULT_VAULT, "keyOcid": DEFAULT_KEY}


class OciWorkspace(Workspace):
    def __init__(self, root: Path, emu: OciVaultEmulator, key: OciApiKey, **connection: Any) -> None:
        self.emu, self.key, self.connection = emu, key, connection
        super().__init__(root, "http://127.0.0.1:1")

    def write_connections(self) -> None:
        self.write_spec("connections.yaml", [
            {"kind": "Connection", "name": "local", "app": "file", "path": "../secrets.yaml"},
            oci_connection_doc(self.emu, self.key, **self.connection),
        ])

    def sync(self, name: str = "app", **overrides: object) -> dict[str, object]:
        doc = super().sync(name)
        doc.update({"destination": KIND, "connection": "oci", "destinationConfig": dict(DEST),
                    "syncOptions": {"initialSyncBehavior": "overwrite-destination", "keySchema": "app-{{secretKey}}"}})
        for k, v in overrides.items():
            if isinstance(v, dict) and isinstance(doc.get(k), dict):
                doc[k] = {**doc[k], **v}  # type: ignore[dict-item]
            else:
                doc[k] = v
        return doc


@pytest.fixture
def ws(tmp_path: Path, oci_dest: OciVaultEmulator, oci_api_key: OciApiKey) -> OciWorkspace:
    return OciWorkspace(tmp_path, oci_dest, oci_api_key)


def plan_json(ws: Workspace, *extra: str) -> dict[str, Any]:
    r = ws.run("plan", "--json", *extra)
    assert r.code in (0, 1, 2), str(r)
    return json.loads(r.out)  # type: ignore[no-any-return]


def steps(plan: dict[str, Any], sync: str = "app") -> list[tuple[str, str]]:
    s = next(s for s in plan["syncs"] if s["name"] == sync)
    return [(c["action"], c["key"]) for c in s["changes"]]


def issues(plan: dict[str, Any], sync: str = "app") -> list[dict[str, Any]]:
    s = next(s for s in plan["syncs"] if s["name"] == sync)
    return list(s.get("issues") or [])


def vault_calls() -> dict[str, int]:
    return calls.by_call(KIND)


def value(ws: OciWorkspace, name: str) -> str | None:
    raw = ws.emu.store.value(name)
    return raw.decode() if raw is not None else None


def sdk_update(clients: tuple[Any, Any], name: str, new: str) -> None:
    """An out-of-band new version, through the vendor's client."""
    import oci

    vc, _ = clients
    sid = next(s.id for s in vc.list_secrets(DEFAULT_COMPARTMENT, vault_id=DEFAULT_VAULT, name=name).data)
    content = oci.vault.models.Base64SecretContentDetails(content_type="BASE64",
                                                          content=base64.b64encode(new.encode()).decode())
    vc.update_secret(sid, oci.vault.models.UpdateSecretDetails(secret_content=content))


def test_first_sync_plan_apply_then_noop(ws: OciWorkspace, oci_clients: tuple[Any, Any]) -> None:
    ws.emu.store.seed("other-thing", b"not ours")
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"DB_PASSWORD": C1, "API_KEY": {"value": C2, "comment": "for the api"}, "dotted.name": C3})

    r = ws.run("plan", "--detailed-exitcode")
    assert r.code == 2, str(r)
    assert "+ app-API_KEY" in r.out and "+ app-DB_PASSWORD" in r.out and "+ app-dotted.name" in r.out, r.out
    assert "other-thing" not in r.out
    assert ws.emu.store.names() == {"other-thing"}

    r = ws.run("apply")
    assert r.code == 0, str(r)
    assert value(ws, "app-DB_PASSWORD") == C1 and value(ws, "app-API_KEY") == C2 and value(ws, "app-dotted.name") == C3
    secret = ws.emu.store.secret("app-DB_PASSWORD")
    assert secret is not None and secret.key == DEFAULT_KEY and secret.compartment == DEFAULT_COMPARTMENT
    assert secret.freeform == {"managed-by": "reconciler", "reconciler-sync": "app"}
    assert value(ws, "other-thing") == "not ours"

    r = ws.run("plan", "--detailed-exitcode")
    assert r.code == 0, str(r)
    assert "No changes" in r.out
    assert ws.emu.count(authorized=False) == 0, "every request was signed with the connection's key"
    assert ws.leaks() == []


def test_noop_costs_list_pages_and_one_get_secret_per_key(ws: OciWorkspace) -> None:
    n, foreign = 7, 2
    for i in range(foreign):
        ws.emu.store.seed(f"zz-foreign-{i}", b"x")
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({f"K_{i:03d}": f"value-{i}" for i in range(n)})
    assert ws.run("apply").code == 0
    pages = math.ceil((n + foreign) / OCI_TEST_PAGE_SIZE)

    ws.emu.clear()
    calls.reset()
    r = ws.run("apply")
    assert r.code == 0, str(r)
    assert vault_calls() == {"ListSecrets": pages, "GetSecret": n}, calls.snapshot()
    assert ws.emu.value_reads() == 0 and ws.emu.writes() == 0
    assert ws.emu.count() == pages + n, "the emulator agrees"

    # losing state costs value reads, never correctness (and still writes nothing)
    shutil.rmtree(ws.state)
    calls.reset()
    assert ws.run("plan", "--detailed-exitcode").code == 0
    assert vault_calls() == {"ListSecrets": pages, "GetSecret": n, "GetSecretBundle": n}


def test_out_of_band_version_is_corrected_once(ws: OciWorkspace, oci_clients: tuple[Any, Any]) -> None:
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"DB_PASSWORD": C1, "OTHER": C2})
    assert ws.run("apply").code == 0
    sdk_update(oci_clients, "app-DB_PASSWORD", "edited-by-hand")
    calls.reset()
    plan = plan_json(ws, "--detailed-exitcode")
    assert steps(plan) == [("update", "app-DB_PASSWORD")]
    assert plan["syncs"][0]["changes"][0].get("drift") is True
    assert vault_calls().get("GetSecretBundle") == 1, "only the moved key is read"
    calls.reset()
    assert ws.run("apply").code == 0
    assert vault_calls().get("UpdateSecret") == 1
    assert value(ws, "app-DB_PASSWORD") == C1
    secret = ws.emu.store.secret("app-DB_PASSWORD")
    assert secret is not None and secret.current == 3
    calls.reset()
    assert ws.run("plan", "--detailed-exitcode").code == 0
    assert "GetSecretBundle" not in vault_calls(), "our own write's version was recorded"
    assert ws.leaks() == []


def test_source_change_updates_and_keeps_foreign_tags(ws: OciWorkspace) -> None:
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": C1})
    assert ws.run("apply").code == 0
    s = ws.emu.store.secret("app-A")
    assert s is not None
    s.freeform["cost-center"] = "42"
    ws.set_secrets({"A": C2})
    calls.reset()
    assert ws.run("apply").code == 0
    assert vault_calls().get("UpdateSecret") == 1 and "GetSecretBundle" not in vault_calls()
    assert value(ws, "app-A") == C2
    assert s.freeform == {"managed-by": "reconciler", "reconciler-sync": "app", "cost-center": "42"}
    assert ws.run("plan", "--detailed-exitcode").code == 0


def test_deletes_are_scheduled_with_the_configured_window(ws: OciWorkspace) -> None:
    ws.write_spec("app.yaml", [ws.sync(syncOptions={"deletionWindowInDays": 7})])
    ws.set_secrets({"A": "1", "B": "2"})
    assert ws.run("apply").code == 0
    ws.set_secrets({"A": "1"})
    assert steps(plan_json(ws)) == [("delete", "app-B")]
    assert ws.run("apply").code == 0
    s = ws.emu.store.secret("app-B")
    assert s is not None and s.state == "PENDING_DELETION" and s.time_of_deletion is not None
    days = (s.time_of_deletion - datetime.now(UTC).timestamp()) / 86400
    assert 6.9 < days <= 7.01
    assert ws.run("plan", "--detailed-exitcode").code == 0, "pending deletion and not desired: nothing to do"


def test_disable_secret_deletion(ws: OciWorkspace) -> None:
    ws.write_spec("app.yaml", [ws.sync(syncOptions={"disableSecretDeletion": True})])
    ws.set_secrets({"A": "1", "B": "2"})
    assert ws.run("apply").code == 0
    ws.set_secrets({"A": "1"})
    assert ws.run("apply").code == 0
    assert ws.emu.store.names(states=frozenset({"ACTIVE"})) == {"app-A", "app-B"}


def test_a_foreign_transitional_secret_does_not_block(ws: OciWorkspace) -> None:
    ws.emu.store.seed("other-stuck", b"x")
    ws.emu.store.hold("other-stuck", "UPDATING")  # for ever
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": C1})
    r = ws.run("apply")
    assert r.code == 0, str(r)
    assert value(ws, "app-A") == C1


def test_an_own_transitional_secret_is_waited_for_then_fails_the_sync_retryably(
        ws: OciWorkspace, oci_sleeps: list[float]) -> None:
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": "1", "B": "2"})
    assert ws.run("apply").code == 0
    ws.emu.store.hold("app-A", "UPDATING", reads=3)  # settles while we wait
    ws.set_secrets({"A": "1", "B": "3"})
    assert ws.run("apply").code == 0
    assert value(ws, "app-B") == "3" and oci_sleeps, "waited on fake time"

    ws.emu.store.hold("app-A", "UPDATING")  # never settles
    ws.set_secrets({"A": "1", "B": "4"})
    r = ws.run("apply")
    assert r.code == 1, str(r)
    assert "app-A" in r.out + r.err and "UPDATING" in r.out + r.err
    assert value(ws, "app-B") == "3", "the sync failed as a whole, as the seed says, and retries"
    ws.emu.store.release("app-A")
    assert ws.run("apply").code == 0
    assert value(ws, "app-B") == "4"


def test_restore_that_has_to_wait(ws: OciWorkspace, oci_sleeps: list[float]) -> None:
    ws.write_spec("app.yaml", [ws.sync(reconcile={"maxDeletes": "100%"})])
    ws.set_secrets({"A": C1, "B": C2})
    assert ws.run("apply").code == 0
    ws.set_secrets({"B": C2})
    assert ws.run("apply").code == 0
    assert ws.emu.store.names(states=frozenset({"PENDING_DELETION"})) == {"app-A"}

    ws.set_secrets({"A": C1, "B": C2})
    assert steps(plan_json(ws)) == [("restore", "app-A"), ("update", "app-A")]
    ws.emu.store.transition_reads = 4  # CANCELLING_DELETION for four looks
    calls.reset()
    r = ws.run("apply")
    assert r.code == 0, str(r)
    c = vault_calls()
    assert c.get("CancelSecretDeletion") == 1 and "UpdateSecret" not in c, "same value: no new version"
    assert len(oci_sleeps) >= 3
    assert value(ws, "app-A") == C1
    ws.emu.store.transition_reads = 0
    assert ws.run("plan", "--detailed-exitcode").code == 0

    # a restore whose value moved while it was scheduled for deletion: one new version
    ws.set_secrets({"B": C2})
    assert ws.run("apply").code == 0
    ws.set_secrets({"A": C3, "B": C2})
    calls.reset()
    assert ws.run("apply").code == 0
    assert vault_calls().get("UpdateSecret") == 1
    assert value(ws, "app-A") == C3
    assert ws.leaks() == []


def test_oversize_and_empty_values(ws: OciWorkspace) -> None:
    from reconciler.destinations.oci_vault.rules import MAX_VALUE_BYTES

    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"BIG": "x" * (MAX_VALUE_BYTES + 1), "EMPTY": "", "EDGE": "y" * MAX_VALUE_BYTES, "OK": "fine"})
    plan = plan_json(ws)
    assert steps(plan) == [("create", "app-EDGE"), ("create", "app-OK")]
    found = {i["key"]: i for i in issues(plan)}
    assert found["app-BIG"]["severity"] == "error" and "bytes" in found["app-BIG"]["message"]
    assert found["app-EMPTY"]["severity"] == "warning" and "empty" in found["app-EMPTY"]["message"]
    r = ws.run("apply")
    assert r.code == 1, str(r)  # the oversize key is an error; the others still synced
    assert ws.emu.store.names() == {"app-EDGE", "app-OK"}
    assert ws.emu.count("POST", "/20180608/secrets") == 2, "the oversize value was never sent"


def test_import_prioritize_source_on_first_sync(ws: OciWorkspace) -> None:
    ws.emu.store.seed("app-ONLY_AT_DEST", b"from-vault")
    ws.emu.store.seed("app-BOTH", b"vault-value")
    ws.write_spec("app.yaml", [ws.sync(syncOptions={"initialSyncBehavior": "import-prioritize-source"})])
    ws.set_secrets({"BOTH": C1, "NEW": C2})
    r = ws.run("apply")
    assert r.code == 0, str(r)
    assert 'ONLY_AT_DEST: "from-vault"' in ws.secrets_file.read_text()
    assert value(ws, "app-BOTH") == C1, "source wins"
    assert value(ws, "app-NEW") == C2 and value(ws, "app-ONLY_AT_DEST") == "from-vault"
    assert ws.run("plan", "--detailed-exitcode").code == 0


def test_import_prioritize_destination_on_first_sync(ws: OciWorkspace) -> None:
    ws.emu.store.seed("app-BOTH", b"vault-value")
    ws.write_spec("app.yaml", [ws.sync(syncOptions={"initialSyncBehavior": "import-prioritize-destination"})])
    ws.set_secrets({"BOTH": C1})
    assert ws.run("apply").code == 0
    assert value(ws, "app-BOTH") == "vault-value"
    assert "vault-value" in ws.secrets_file.read_text()
    s = ws.emu.store.secret("app-BOTH")
    assert s is not None and s.current == 1, "no write: the vault already held the winner"
    ws.set_secrets({"BOTH": C2})
    assert ws.run("apply").code == 0
    assert value(ws, "app-BOTH") == C2


def test_import_and_remove_commands(ws: OciWorkspace) -> None:
    ws.emu.store.seed("unrelated", b"stays")
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": C1})
    assert ws.run("apply").code == 0
    ws.emu.store.seed("app-EXTRA_KEY", b"added-in-the-vault")
    r = ws.run("import", "app", "--priority", "destination")
    assert r.code == 0, str(r)
    assert 'EXTRA_KEY: "added-in-the-vault"' in ws.secrets_file.read_text()

    r = ws.run("remove", "app", "--yes")
    assert r.code == 0, str(r)
    pending = ws.emu.store.names(states=frozenset({"PENDING_DELETION"}))
    assert pending == {"app-A", "app-EXTRA_KEY"}, "exactly what the sync manages, scheduled for deletion"
    assert ws.emu.store.names(states=frozenset({"ACTIVE"})) == {"unrelated"}
    st = json.loads(ws.run("status", "--json").out)["syncs"][0]
    assert st["removeStatus"] == "succeeded"
    assert ws.leaks() == []


def test_throttling_honours_retry_after_and_hands_long_waits_to_the_daemon(
        ws: OciWorkspace, oci_sleeps: list[float]) -> None:
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": "1"})
    ws.emu.inject(method="GET", path="/20180608/secrets", status=429, headers={"Retry-After": "3"})
    assert ws.run("apply").code == 0
    assert oci_sleeps == [3.0]
    ws.set_secrets({"A": "2"})
    ws.emu.inject(method="PUT", path="/20180608/secrets/.*", status=429, headers={"Retry-After": "120"})
    r = ws.run("apply")
    assert r.code == 1, str(r)
    assert "TooManyRequests" in r.out + r.err
    assert value(ws, "app-A") == "1"
    assert ws.run("apply").code == 0 and value(ws, "app-A") == "2"


def test_a_key_the_vault_does_not_know_is_a_clean_error(ws: OciWorkspace, tmp_path: Path) -> None:
    from tests.fixtures_oci_vault import make_api_key

    (tmp_path / "key").mkdir()
    (tmp_path / "bad").mkdir()
    other = make_api_key(tmp_path / "key")
    bad = OciWorkspace(tmp_path / "bad", ws.emu, other)
    bad.write_spec("app.yaml", [bad.sync()])
    bad.set_secrets({"A": C1})
    r = bad.run("apply")
    assert r.code == 1, str(r)
    assert "401 NotAuthenticated" in r.out + r.err
    assert ws.emu.store.names() == set()
    assert bad.leaks() == []


def test_config_file_credentials(tmp_path: Path, oci_dest: OciVaultEmulator, oci_api_key: OciApiKey) -> None:
    w = OciWorkspace(tmp_path, oci_dest, oci_api_key, connectTimeout=5, readTimeout=30, maxConcurrency=4,
                     credentials={"method": "config-file", "file": str(oci_api_key.config_file)})
    w.write_spec("app.yaml", [w.sync()])
    w.set_secrets({"A": C1})
    r = w.run("apply")
    assert r.code == 0, str(r)
    assert value(w, "app-A") == C1


def test_an_out_of_band_deletion_is_restored_without_a_read_or_a_new_version(
        ws: OciWorkspace, oci_clients: tuple[Any, Any]) -> None:
    import oci

    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": C1, "B": C2})
    assert ws.run("apply").code == 0
    vc, _ = oci_clients
    sid = next(s.id for s in vc.list_secrets(DEFAULT_COMPARTMENT, vault_id=DEFAULT_VAULT, name="app-A").data)
    vc.schedule_secret_deletion(sid, oci.vault.models.ScheduleSecretDeletionDetails())
    plan = plan_json(ws)
    assert steps(plan) == [("restore", "app-A")], "its version is the one state recorded: value vouched for"
    calls.reset()
    assert ws.run("apply").code == 0
    c = vault_calls()
    assert c.get("CancelSecretDeletion") == 1 and "UpdateSecret" not in c and "GetSecretBundle" not in c, c
    s = ws.emu.store.secret("app-A")
    assert s is not None and s.state == "ACTIVE" and s.current == 1 and value(ws, "app-A") == C1
    assert ws.run("plan", "--detailed-exitcode").code == 0


def test_two_syncs_on_one_vault_share_one_listing(ws: OciWorkspace) -> None:
    ws.emu.store.seed("zz-foreign-stuck", b"x")
    ws.emu.store.hold("zz-foreign-stuck", "UPDATING")
    ws.write_spec("app.yaml", [ws.sync(), ws.sync("web", secretPath="/web",
                                                  syncOptions={"keySchema": "web-{{secretKey}}"})])
    ws.set_secrets({"A": C1, "B": C2})
    ws.set_secrets({"A": C3}, path="/web")
    r = ws.run("apply")
    assert r.code == 0, str(r)
    assert value(ws, "app-A") == C1 and value(ws, "app-B") == C2 and value(ws, "web-A") == C3
    ws.emu.clear()
    calls.reset()
    r = ws.run("apply")
    assert r.code == 0, str(r)
    pages = math.ceil(4 / OCI_TEST_PAGE_SIZE)
    assert vault_calls() == {"ListSecrets": pages, "GetSecret": 3}, "one listing for both syncs; no value read"
    assert ws.run("plan", "--detailed-exitcode").code == 0

    # the second sync never lists: its writes and reads find their secrets by name
    ws.set_secrets({"B": C2, "C": C1}, path="/web")
    assert ws.run("apply").code == 0
    assert value(ws, "web-A") == C3 and value(ws, "web-B") == C2 and value(ws, "web-C") == C1
    ws.set_secrets({"B": C1}, path="/web")
    r = ws.run("apply")
    assert r.code == 0, str(r)
    assert value(ws, "web-B") == C1
    assert ws.emu.store.names(states=frozenset({"PENDING_DELETION"})) == {"web-A", "web-C"}
    ws.set_secrets({"A": C3, "B": C1}, path="/web")
    assert ws.run("apply").code == 0, "a restore for the sync that did not list"
    assert ws.emu.store.names(states=frozenset({"PENDING_DELETION"})) == {"web-C"}
    assert value(ws, "web-A") == C3
    shutil.rmtree(ws.state)
    assert ws.run("plan", "--detailed-exitcode").code == 0, "cold state: values read for both syncs"
    assert ws.leaks() == []
