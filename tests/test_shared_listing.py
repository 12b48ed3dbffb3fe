"""Issue 14 item 2: syncs of one run on one destination target share one listing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from reconciler import calls
from tests.support.cli import Workspace


def _many(ws: Workspace, syncs: int, keys: int) -> None:
    docs = [ws.sync(f"team-{i:03d}", secretPath=f"/team{i}",
                    syncOptions={"keySchema": f"team{i}/{{{{secretKey}}}}"}) for i in range(syncs)]
    ws.write_spec("syncs.yaml", docs)
    data = {"dev": {f"/team{i}": {f"K{j}": f"v{i}-{j}" for j in range(keys)} for i in range(syncs)}}
    ws.secrets_file.write_text(yaml.safe_dump(data))


def test_a_noop_cycle_of_many_syncs_on_one_account_lists_it_once(ws: Workspace, sm_client: Any) -> None:
    _many(ws, 50, 5)  # 250 secrets under 50 prefixes of one account and region
    for i in range(30):
        sm_client.create_secret(Name=f"zz-other/{i}", SecretString="x")
    assert ws.run("apply").code == 0
    calls.reset()
    r = ws.run("apply")
    assert r.code == 0 and "50 succeeded" in r.out, str(r)
    # one listing of the account (no common prefix: all 280 secrets, 100 a page), nothing else
    assert calls.by_call("aws-secrets-manager") == {"ListSecrets": 3}
    calls.reset()
    assert ws.run("plan", "--detailed-exitcode").code == 0
    assert calls.by_call("aws-secrets-manager") == {"ListSecrets": 3}


def test_one_sync_alone_keeps_its_own_filtered_listing(ws: Workspace, sm_client: Any) -> None:
    _many(ws, 3, 2)
    for i in range(150):
        sm_client.create_secret(Name=f"zz-other/{i}", SecretString="x")
    assert ws.run("apply").code == 0
    calls.reset()
    assert ws.run("apply", "--sync", "team-001").code == 0
    assert calls.by_call("aws-secrets-manager") == {"ListSecrets": 1}, "the name filter, not the account"


def test_shared_listing_still_finds_each_syncs_changes(ws: Workspace, sm_client: Any) -> None:
    _many(ws, 4, 2)
    assert ws.run("apply").code == 0
    sm_client.put_secret_value(SecretId="team2/K1", SecretString="edited")
    sm_client.delete_secret(SecretId="team3/K0", RecoveryWindowInDays=7)
    r = ws.run("plan")
    assert "team2/K1" in r.out and "team3/K0" in r.out and "restore" in r.out.lower(), r.out
    assert ws.run("apply").code == 0
    assert sm_client.get_secret_value(SecretId="team2/K1")["SecretString"] == "v2-1"
    assert "No changes" in ws.run("plan").out


def test_key_vault_syncs_share_the_vault_listing_and_find_their_soft_deleted_names(
        tmp_path: Path, keyvault: Any, azure_idp_server: Any, azure_ca_file: Path, kv_client: Any) -> None:
    from tests.test_e2e_azure import AzureWorkspace  # the Key Vault workspace of its own e2e tests

    ws = AzureWorkspace(tmp_path, keyvault, azure_idp_server, azure_ca_file)
    docs = [ws.sync(f"team-{i}", secretPath=f"/team{i}", syncOptions={"keySchema": f"team{i}-{{{{secretKey}}}}"})
            for i in range(4)]
    ws.write_spec("syncs.yaml", docs)
    data = {"dev": {f"/team{i}": {"A": f"a{i}", "B": f"b{i}"} for i in range(4)}}
    ws.secrets_file.write_text(yaml.safe_dump(data))
    assert ws.run("apply").code == 0
    kv_client.begin_delete_secret("team1-A", _polling_interval=0.01).wait()
    calls.reset()
    r = ws.run("apply")
    assert r.code == 0, str(r)
    by_call = calls.by_call("azure-key-vault")
    assert by_call.get("list") == 1, by_call
    assert by_call.get("recover") == 1 and kv_client.get_secret("team1-A").value == "a1"


def test_a_session_that_did_not_list_keeps_foreign_tags_and_ours(
        tmp_path: Path, keyvault: Any, azure_idp_server: Any, azure_ca_file: Path, kv_client: Any) -> None:
    """With one listing per vault, the second sync's session writes without having listed:
    the full tag set it must send comes in the planned change, not from a listing it never made."""
    from tests.test_e2e_azure import AzureWorkspace

    ws = AzureWorkspace(tmp_path, keyvault, azure_idp_server, azure_ca_file)
    ws.write_spec("syncs.yaml", [ws.sync(f"team-{i}", secretPath=f"/team{i}",
                                         syncOptions={"keySchema": f"team{i}-{{{{secretKey}}}}"}) for i in range(3)])
    ws.secrets_file.write_text(yaml.safe_dump({"dev": {f"/team{i}": {"A": f"a{i}"} for i in range(3)}}))
    assert ws.run("apply").code == 0
    for i in range(3):
        tags = dict(kv_client.get_secret(f"team{i}-A").properties.tags or {})
        kv_client.update_secret_properties(f"team{i}-A", tags={**tags, "cost-center": "42"}, content_type="text/plain")
    ws.secrets_file.write_text(yaml.safe_dump({"dev": {f"/team{i}": {"A": f"new{i}"} for i in range(3)}}))
    assert ws.run("apply").code == 0
    for i in range(3):
        s = kv_client.get_secret(f"team{i}-A")
        assert s.value == f"new{i}"
        assert s.properties.tags == {"cost-center": "42", "managed-by": "reconciler", "reconciler-sync": f"team-{i}"}
        assert s.properties.content_type == "text/plain"
