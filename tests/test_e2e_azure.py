"""End to end through the CLI against the Key Vault emulator, as a user would drive it.

Authentication is real: azure-identity's ClientSecretCredential gets its token from the
fake identity provider (connection authorityHost + caBundle), the SDK answers the vault's
bearer challenge, and the vault accepts only the provider's tokens.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from reconciler import calls
from tests.emulators.azure_keyvault import FakeIdentityProvider, Fault, KeyVaultEmulator
from tests.fixtures_azure import azure_connection_doc
from tests.support.canary import CANARIES
from tests.support.cli import Workspace
from tests.support.cli import plan_json as _plan
from tests.support.cli import steps as _steps

C1, C2, C3 = CANARIES
KIND = "azure-key-vault"
WRITES = {"set", "update", "delete", "recover", "purge"}


class AzureWorkspace(Workspace):
    def __init__(self, root: Path, kv: KeyVaultEmulator, idp: FakeIdentityProvider, ca_file: Path) -> None:
        self.kv, self.idp, self.ca_file = kv, idp, ca_file
        super().__init__(root, "http://127.0.0.1:1")

    def write_connections(self) -> None:
        self.write_spec("connections.yaml", [
            {"kind": "Connection", "name": "local", "app": "file", "path": "../secrets.yaml"},
            azure_connection_doc(self.kv, self.idp, self.ca_file),
        ])

    def sync(self, name: str = "app", **overrides: object) -> dict[str, object]:
        base: dict[str, object] = {
            "destination": "azure-key-vault", "connection": "akv",
            "destinationConfig": {"vaultBaseUrl": self.kv.url},
            "syncOptions": {"initialSyncBehavior": "overwrite-destination", "keySchema": "app-{{secretKey}}"},
        }
        doc = super().sync(name)
        doc.update(base)
        for k, v in overrides.items():
            if isinstance(v, dict) and isinstance(doc.get(k), dict):
                doc[k] = {**doc[k], **v}  # type: ignore[dict-item]
            else:
                doc[k] = v
        return doc


@pytest.fixture
def ws(tmp_path: Path, keyvault: KeyVaultEmulator, azure_idp_server: FakeIdentityProvider,
       azure_ca_file: Path) -> AzureWorkspace:
    return AzureWorkspace(tmp_path, keyvault, azure_idp_server, azure_ca_file)




def _vault_calls() -> dict[str, int]:
    return {k: v for k, v in calls.by_call(KIND).items() if k != "auth-challenge"}


def test_first_sync_plan_apply_then_noop(ws: AzureWorkspace, kv_client: Any) -> None:
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"DB_PASSWORD": C1, "API_KEY": {"value": C2, "comment": "for the api"}})

    r = ws.run("plan", "--detailed-exitcode")
    assert r.code == 2, str(r)
    assert "+ app-API-KEY" in r.out and "+ app-DB-PASSWORD" in r.out, r.out
    assert ws.kv.vault.names() == set()

    r = ws.run("apply")
    assert r.code == 0, str(r)
    assert kv_client.get_secret("app-DB-PASSWORD").value == C1
    tags = kv_client.get_secret("app-API-KEY").properties.tags
    assert tags == {"managed-by": "reconciler", "reconciler-sync": "app"}

    r = ws.run("plan", "--detailed-exitcode")
    assert r.code == 0, str(r)
    assert "No changes" in r.out
    assert ws.leaks() == []


def test_noop_costs_only_list_pages_with_warm_state(ws: AzureWorkspace) -> None:
    n = 60
    ws.write_spec("app.yaml", [ws.sync(reconcile={"maxDeletes": "100%"})])
    ws.set_secrets({f"K_{i:03d}": f"value-{i}" for i in range(n)})
    assert ws.run("apply").code == 0
    ws.kv.clear()
    calls.reset()
    r = ws.run("apply")
    assert r.code == 0, str(r)
    pages = math.ceil(n / 25)
    assert _vault_calls() == {"list": pages}, calls.snapshot()
    # the emulator agrees: authorised requests were the list pages and nothing else
    assert ws.kv.count() == ws.kv.count("GET", "/secrets") == pages

    # losing state costs reads, never correctness (and still writes nothing)
    shutil.rmtree(ws.state)
    calls.reset()
    assert ws.run("plan", "--detailed-exitcode").code == 0
    assert _vault_calls() == {"list": pages, "get": n}


def test_value_drift_is_corrected(ws: AzureWorkspace, kv_client: Any) -> None:
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"DB_PASSWORD": C1, "OTHER": C2})
    assert ws.run("apply").code == 0
    ws.kv.vault.advance(5)  # Key Vault's `updated` has whole-second resolution
    kv_client.set_secret("app-DB-PASSWORD", "edited-by-hand", tags={"managed-by": "reconciler",
                                                                     "reconciler-sync": "app"})
    calls.reset()
    plan = _plan(ws, "--detailed-exitcode")
    assert _steps(plan) == [("update", "app-DB-PASSWORD")]
    assert plan["syncs"][0]["changes"][0].get("drift") is True
    assert _vault_calls() == {"list": 1, "get": 1}, "only the moved key is read"
    assert ws.run("apply").code == 0
    assert kv_client.get_secret("app-DB-PASSWORD").value == C1
    assert ws.run("plan", "--detailed-exitcode").code == 0
    assert ws.leaks() == []


def test_drift_report_only_reports(ws: AzureWorkspace, kv_client: Any) -> None:
    ws.write_spec("app.yaml", [ws.sync(reconcile={"drift": "report"})])
    ws.set_secrets({"A": C1})
    assert ws.run("apply").code == 0
    ws.kv.vault.advance(5)
    kv_client.set_secret("app-A", "edited-by-hand")
    plan = _plan(ws)
    assert _steps(plan) == []
    assert [d["key"] for d in plan["syncs"][0]["drift"]] == ["app-A"]
    assert ws.run("apply").code == 0
    assert kv_client.get_secret("app-A").value == "edited-by-hand"


def test_out_of_band_soft_delete_is_restored_without_a_new_version(ws: AzureWorkspace, kv_client: Any) -> None:
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": C1, "B": C2})
    assert ws.run("apply").code == 0
    kv_client.begin_delete_secret("app-B", _polling_interval=0.01).wait()
    assert "app-B" in ws.kv.vault.names(deleted=True)

    plan = _plan(ws)
    assert _steps(plan) == [("restore", "app-B")], "state vouches for the soft-deleted value: no update planned"
    ws.kv.clear()
    r = ws.run("apply")
    assert r.code == 0, str(r)
    assert kv_client.get_secret("app-B").value == C2
    assert ws.kv.vault.version_count("app-B") == 1, "the recovered value was compared, not rewritten"
    assert ws.kv.count("PUT") == 0 and ws.kv.count("POST", "/deletedsecrets/app-B/recover") == 1
    assert ws.run("plan", "--detailed-exitcode").code == 0


def test_out_of_band_purge_is_recreated(ws: AzureWorkspace, kv_client: Any) -> None:
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": C1})
    assert ws.run("apply").code == 0
    kv_client.begin_delete_secret("app-A", _polling_interval=0.01).wait()
    kv_client.purge_deleted_secret("app-A")
    plan = _plan(ws)
    assert _steps(plan) == [("create", "app-A")]
    assert ws.run("apply").code == 0
    assert kv_client.get_secret("app-A").value == C1


def test_soft_deleted_name_coming_back_is_an_explicit_restore(ws: AzureWorkspace, kv_client: Any) -> None:
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": C1, "B": C2})
    assert ws.run("apply").code == 0
    ws.set_secrets({"A": C1})
    assert _steps(_plan(ws)) == [("delete", "app-B")]
    assert ws.run("apply").code == 0
    assert "app-B" in ws.kv.vault.names(deleted=True), "Key Vault's soft delete, never a purge"

    ws.set_secrets({"A": C1, "B": C3})  # back, with a new value
    assert _steps(_plan(ws)) == [("restore", "app-B"), ("update", "app-B")]
    ws.kv.clear()
    r = ws.run("apply")
    assert r.code == 0, str(r)
    assert kv_client.get_secret("app-B").value == C3
    assert ws.kv.count("POST", "/deletedsecrets/app-B/recover") == 1
    assert ws.kv.count("PUT", "/secrets/app-B") == 1
    assert ws.run("plan", "--detailed-exitcode").code == 0
    assert ws.leaks() == []


def test_colliding_names_are_an_error_and_leave_the_secret_alone(ws: AzureWorkspace, kv_client: Any) -> None:
    ws.write_spec("app.yaml", [ws.sync(reconcile={"maxDeletes": "100%"})])
    ws.set_secrets({"DB_PASSWORD": C1, "OTHER": C3})
    assert ws.run("apply").code == 0
    ws.set_secrets({"DB_PASSWORD": C2, "db-password": C2, "OTHER": C3, "NEW": C1})

    r = ws.run("plan", "--json")
    assert r.code == 1, str(r)
    s = json.loads(r.out)["syncs"][0]
    errors = [i["message"] for i in s["issues"] if i["severity"] == "error"]
    assert any("DB_PASSWORD" in m and "db-password" in m for m in errors), errors
    assert [(c["action"], c["key"]) for c in s["changes"]] == [("create", "app-NEW")]

    r = ws.run("apply")
    assert r.code == 1, str(r)
    assert kv_client.get_secret("app-DB-PASSWORD").value == C1, "neither overwritten nor deleted"
    assert kv_client.get_secret("app-NEW").value == C1, "the rest of the sync still applies"
    assert ws.leaks() == []


def test_disabled_secret_is_left_alone_and_reported(ws: AzureWorkspace, kv_client: Any) -> None:
    ws.write_spec("app.yaml", [ws.sync(reconcile={"maxDeletes": "100%"})])
    ws.set_secrets({"A": C1, "B": C2})
    assert ws.run("apply").code == 0
    kv_client.update_secret_properties("app-B", enabled=False)

    ws.set_secrets({"A": C1, "B": C3})
    r = ws.run("plan", "--detailed-exitcode")
    assert r.code == 0, str(r)
    assert "app-B" in r.out and "disabled" in r.out
    ws.set_secrets({"A": C1})
    r = ws.run("apply")
    assert r.code == 0, str(r)
    assert "app-B" in ws.kv.vault.names() and ws.kv.vault.value("app-B") == C2


def test_schema_with_underscore_scopes_on_renamed_names(ws: AzureWorkspace, kv_client: Any) -> None:
    """Upstream matches the unrenamed schema APP_ against APP-... names and never prunes."""
    kv_client.set_secret("APP2-X", "keep-1")
    kv_client.set_secret("other-X", "keep-2")
    ws.write_spec("app.yaml", [ws.sync(syncOptions={"keySchema": "APP_{{secretKey}}"})])
    ws.set_secrets({"A": C1, "B_C": C2})
    assert _steps(_plan(ws)) == [("create", "APP-A"), ("create", "APP-B-C")]
    assert ws.run("apply").code == 0
    ws.set_secrets({"A": C1})
    assert _steps(_plan(ws)) == [("delete", "APP-B-C")]
    assert ws.run("apply").code == 0
    assert ws.kv.vault.names() == {"APP-A", "APP2-X", "other-X"}


def test_names_compare_case_insensitively(ws: AzureWorkspace, kv_client: Any) -> None:
    kv_client.set_secret("App-DB-PASSWORD", "old")
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"DB_PASSWORD": C1})
    plan = _plan(ws)
    assert _steps(plan) == [("update", "app-DB-PASSWORD")]
    assert plan["syncs"][0]["changes"][0].get("unowned") is True
    assert ws.run("apply").code == 0
    assert ws.kv.vault.names() == {"App-DB-PASSWORD"}
    assert kv_client.get_secret("app-db-password").value == C1
    assert ws.run("plan", "--detailed-exitcode").code == 0


def test_import_prioritize_source_on_first_sync(ws: AzureWorkspace, kv_client: Any) -> None:
    kv_client.set_secret("app-ONLY-AT-DEST", "from-vault")
    kv_client.set_secret("app-BOTH", "vault-value")
    kv_client.set_secret("app-dashed-key", "vault-dashed")
    ws.write_spec("app.yaml", [ws.sync(syncOptions={"initialSyncBehavior": "import-prioritize-source"})])
    ws.set_secrets({"BOTH": C1, "NEW": C2, "dashed-key": C3})
    r = ws.run("apply")
    assert r.code == 0, str(r)
    src = ws.secrets_file.read_text()
    assert 'ONLY_AT_DEST: "from-vault"' in src, "'-' is mapped back to '_' through the key schema"
    assert "dashed_key" not in src, "a name the source already renders to keeps its source key"
    assert kv_client.get_secret("app-BOTH").value == C1, "source wins"
    assert kv_client.get_secret("app-dashed-key").value == C3
    assert kv_client.get_secret("app-NEW").value == C2
    assert kv_client.get_secret("app-ONLY-AT-DEST").value == "from-vault"
    assert ws.run("plan", "--detailed-exitcode").code == 0


def test_import_prioritize_destination_on_first_sync(ws: AzureWorkspace, kv_client: Any) -> None:
    kv_client.set_secret("app-BOTH", "vault-value")
    ws.write_spec("app.yaml", [ws.sync(syncOptions={"initialSyncBehavior": "import-prioritize-destination"})])
    ws.set_secrets({"BOTH": C1})
    assert ws.run("apply").code == 0
    assert kv_client.get_secret("app-BOTH").value == "vault-value"
    assert "vault-value" in ws.secrets_file.read_text()
    assert ws.kv.vault.version_count("app-BOTH") == 1
    ws.set_secrets({"BOTH": C2})
    assert ws.run("apply").code == 0
    assert kv_client.get_secret("app-BOTH").value == C2


def test_import_and_remove_commands(ws: AzureWorkspace, kv_client: Any) -> None:
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": C1})
    assert ws.run("apply").code == 0
    kv_client.set_secret("app-EXTRA-KEY", "added-in-the-vault")
    r = ws.run("import", "app", "--priority", "destination")
    assert r.code == 0, str(r)
    assert 'EXTRA_KEY: "added-in-the-vault"' in ws.secrets_file.read_text()
    st = json.loads(ws.run("status", "--json").out)["syncs"][0]
    assert st["importStatus"] == "succeeded"

    r = ws.run("remove", "app", "--yes")
    assert r.code == 0, str(r)
    assert ws.kv.vault.names() == set()
    assert ws.kv.vault.names(deleted=True) == {"app-A", "app-EXTRA-KEY"}
    st = json.loads(ws.run("status", "--json").out)["syncs"][0]
    assert st["removeStatus"] == "succeeded"


def test_many_to_one(ws: AzureWorkspace, kv_client: Any) -> None:
    ws.write_spec("app.yaml", [ws.sync(destinationConfig={"mappingBehavior": "many-to-one",
                                                          "secretName": "app-bundle"})])
    ws.set_secrets({"A": C1, "B_C": C2})
    assert _steps(_plan(ws)) == [("create", "app-bundle")]
    assert ws.run("apply").code == 0
    assert json.loads(kv_client.get_secret("app-bundle").value) == {"A": C1, "B_C": C2}
    assert ws.run("plan", "--detailed-exitcode").code == 0
    ws.set_secrets({"A": C1})
    assert _steps(_plan(ws)) == [("update", "app-bundle")]
    assert ws.run("apply").code == 0
    assert json.loads(kv_client.get_secret("app-bundle").value) == {"A": C1}
    assert ws.leaks() == []


def test_foreign_tags_and_content_type_survive_a_value_update(ws: AzureWorkspace, kv_client: Any) -> None:
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": C1})
    assert ws.run("apply").code == 0
    kv_client.update_secret_properties("app-A", tags={"managed-by": "reconciler", "reconciler-sync": "app",
                                                      "owner": "ops"}, content_type="text/plain")
    assert ws.run("plan", "--detailed-exitcode").code == 0, "a foreign tag is not drift"
    ws.set_secrets({"A": C2})
    assert ws.run("apply").code == 0
    props = kv_client.get_secret("app-A").properties
    assert props.tags["owner"] == "ops" and props.content_type == "text/plain"


@pytest.mark.parametrize("fault", [
    Fault(method="PUT", status=429, headers={"Retry-After": "2"}, times=2),
    Fault(method="PUT", status=503),
    Fault(method="PUT", status=503, process=True),
    Fault(method="PUT", drop="before"),
    Fault(method="PUT", drop="after"),
    Fault(method="GET", path="/secrets", status=429, headers={"Retry-After": "1"}),
    Fault(method="GET", path="/secrets", drop="after"),
], ids=["429-retry-after", "503", "503-after-write", "drop-before", "drop-after-write", "list-429", "list-drop"])
def test_faults_converge_without_duplicate_writes(ws: AzureWorkspace, kv_client: Any, azure_sleeps: list[float],
                                                  fault: Fault) -> None:
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": C1, "B": C2, "C": C3})
    injected = ws.kv.inject(Fault(**{**fault.__dict__}))
    r = ws.run("apply")
    assert r.code == 0, str(r)
    assert injected.times == 0, "the fault fired"
    for name, value in (("app-A", C1), ("app-B", C2), ("app-C", C3)):
        assert kv_client.get_secret(name).value == value
        assert ws.kv.vault.version_count(name) == 1, f"{name}: a retried write made a second version"
    if fault.headers.get("Retry-After"):
        assert float(fault.headers["Retry-After"]) in azure_sleeps, "Retry-After is honoured"
    calls.reset()
    assert ws.run("apply").code == 0
    assert not WRITES & set(_vault_calls())
    assert ws.leaks() == []


def test_exhausted_retries_fail_the_sync_and_the_next_run_converges(ws: AzureWorkspace, kv_client: Any) -> None:
    ws.write_spec("connections.yaml", [
        {"kind": "Connection", "name": "local", "app": "file", "path": "../secrets.yaml"},
        azure_connection_doc(ws.kv, ws.idp, ws.ca_file, maxAttempts=2),
    ])
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": C1, "B": C2})
    ws.kv.inject(method="PUT", path="/secrets/app-B", status=503, times=5)
    r = ws.run("apply")
    assert r.code == 1, str(r)
    assert "app-B" in r.out + r.err and "503" in r.out + r.err
    assert kv_client.get_secret("app-A").value == C1
    ws.kv.clear()
    assert _steps(_plan(ws)) == [("create", "app-B")]
    assert ws.run("apply").code == 0
    assert ws.run("plan", "--detailed-exitcode").code == 0


def test_bad_client_secret_is_a_clear_error(ws: AzureWorkspace, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fixtures_azure import AZ_SECRET_ENV

    monkeypatch.setenv(AZ_SECRET_ENV, "CANARY-7f3a9c1e-do-not-leak")
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": C2})
    r = ws.run("apply")
    assert r.code == 1, str(r)
    assert "AADSTS7000215" in r.out + r.err
    assert ws.leaks() == []


def test_whole_session_leaks_nothing(ws: AzureWorkspace, kv_client: Any) -> None:
    ws.write_spec("app.yaml", [ws.sync(reconcile={"maxDeletes": "100%"})])
    ws.set_secrets({"A": C1, "B_X": C2, "C": C3})
    for args in (("plan",), ("plan", "--json"), ("apply", "--log-format", "json", "--log-level", "debug"),
                 ("status",), ("status", "--json")):
        ws.run(*args)
    ws.kv.vault.advance(5)
    kv_client.set_secret("app-A", C3)
    ws.set_secrets({"A": C2})
    ws.kv.inject(method="PUT", status=503, process=True)
    for args in (("plan",), ("apply", "--log-level", "debug"), ("status",), ("plan", "--json")):
        ws.run(*args)
    ws.set_secrets({"A": C2, "B_X": C1})
    for args in (("plan", "--json"), ("apply", "--log-format", "json", "--log-level", "debug"),
                 ("remove", "app", "--yes"), ("status", "--json")):
        ws.run(*args)
    assert ws.leaks() == []


def test_lost_answers_to_delete_and_recover_still_converge(ws: AzureWorkspace, kv_client: Any) -> None:
    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": C1, "B": C2})
    assert ws.run("apply").code == 0
    ws.set_secrets({"A": C1})
    dropped = ws.kv.inject(method="DELETE", path="/secrets/app-B", drop="after")
    assert ws.run("apply").code == 0, "a retried delete that already landed (404) meets its goal"
    assert dropped.times == 0 and "app-B" in ws.kv.vault.names(deleted=True)

    ws.set_secrets({"A": C1, "B": C2})
    dropped = ws.kv.inject(method="POST", path="/deletedsecrets/app-B/recover", drop="after")
    r = ws.run("apply")
    assert r.code == 0, str(r)
    assert dropped.times == 0 and kv_client.get_secret("app-B").value == C2
    assert ws.kv.vault.version_count("app-B") == 1
    assert ws.run("plan", "--detailed-exitcode").code == 0


def test_a_long_retry_after_on_one_write_reaches_the_outcome(ws: AzureWorkspace, kv_client: Any) -> None:
    """The daemon schedules its retry from Outcome.retry_after: a per-key 429 whose wait is
    too long to sleep through must still say how long, not only fail."""
    from reconciler.engine.reconcile import Reconciler
    from reconciler.specs.loader import load
    from reconciler.state.store import StateStore

    ws.write_spec("app.yaml", [ws.sync()])
    ws.set_secrets({"A": C1, "B": C2})
    ws.kv.inject(Fault(method="PUT", path="/secrets/app-B", status=429, headers={"Retry-After": "300"}, times=50))
    specs = load(ws.specs)
    out = Reconciler(specs, StateStore(ws.state)).apply_sync(specs.syncs["app"])
    assert out.failed and out.retry_after == 300.0
    assert kv_client.get_secret("app-A").value == C1, "the other key still landed"
    ws.kv.clear()
    assert ws.run("apply").code == 0
    assert kv_client.get_secret("app-B").value == C2
