#!/usr/bin/env bash
# The product demo: the example specs against local emulators on 127.0.0.1 -- AWS Secrets Manager
# (moto), Hanzo KMS, Azure Key Vault, OCI Vault, Windmill and Azure DevOps -- with reconciler driving
# plan -> apply -> no-op -> drift correction -> a source change, then the daemon.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PORT=${DEMO_AWS_PORT:-5555}
DEMO=.demo
SYNC=my-secrets-manager-sync

rm -rf "$DEMO" && mkdir -p "$DEMO"
cp -r examples "$DEMO/examples"
export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_DEFAULT_REGION=us-east-1 \
       AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true
export RECONCILER_STATE_DIR="$PWD/$DEMO/state" RECONCILER_SPECS="$PWD/$DEMO/examples/syncs"

if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "port $PORT is in use; set DEMO_AWS_PORT and the endpoint in examples/syncs/connections.yaml" >&2
  exit 1
fi
"$BIN/moto_server" -H 127.0.0.1 -p "$PORT" >"$DEMO/moto.log" 2>&1 &
MOTO=$!
trap 'kill $MOTO 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  "$BIN/python" - "$PORT" <<'PY' 2>/dev/null && break || sleep 0.2
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/moto-api/", timeout=1)
PY
done

step() {
  printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "${*:2}"
  local rc=0; "${@:2}" || rc=$?
  printf '(exit code %s)\n' "$rc"
}
aws_put() {
  "$BIN/python" - "$PORT" "$1" "$2" <<'PY'
import sys, boto3
sm = boto3.client("secretsmanager", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", region_name="us-east-1")
sm.put_secret_value(SecretId=sys.argv[2], SecretString=sys.argv[3])
print(f"(out of band) changed {sys.argv[2]} in AWS Secrets Manager")
PY
}

step "validate every example spec" "$BIN/reconciler" validate
step "plan the AWS sync (nothing exists yet)" "$BIN/reconciler" plan --sync "$SYNC"
step "apply it" "$BIN/reconciler" apply --sync "$SYNC"
step "plan again: converged, exit code 0 with --detailed-exitcode" "$BIN/reconciler" plan --sync "$SYNC" --detailed-exitcode
KEY=$("$BIN/python" -c "
import boto3; sm=boto3.client('secretsmanager',endpoint_url='http://127.0.0.1:$PORT',region_name='us-east-1')
print(sorted(s['Name'] for s in sm.list_secrets()['SecretList'])[0])")
aws_put "$KEY" "changed-by-hand"
step "plan shows the drift" "$BIN/reconciler" plan --sync "$SYNC"
step "apply corrects it" "$BIN/reconciler" apply --sync "$SYNC"
"$BIN/python" - "$DEMO/examples/secrets.yaml" <<'PY'
import sys, yaml
path = sys.argv[1]
data = yaml.safe_load(open(path))
folder = data["dev"]["/my-secrets"]
first = sorted(folder)[0]
del folder[first]
yaml.safe_dump(data, open(path, "w"), sort_keys=False)
print(f"(in the source) removed {first}")
PY
step "plan after a source change: maxDeletes: 25% of 3 keys allows no delete, so it is refused" \
  "$BIN/reconciler" plan --sync "$SYNC"
sed -i 's/maxDeletes: 25%/maxDeletes: 1/' "$DEMO/examples/syncs/aws-secrets-manager.yaml"
echo "(in the spec) maxDeletes: 25% -> maxDeletes: 1"
"$BIN/python" - "$DEMO/examples/secrets.yaml" <<'PY'
import sys, yaml
path = sys.argv[1]
data = yaml.safe_load(open(path))
data["dev"]["/my-secrets"]["NEW_SECRET"] = "added-in-the-source"
yaml.safe_dump(data, open(path, "w"), sort_keys=False)
print("(in the source) added NEW_SECRET")
PY
step "now the delete is planned (AWS keeps the secret for its 30-day recovery window)" \
  "$BIN/reconciler" plan --sync "$SYNC"
step "apply it" "$BIN/reconciler" apply --sync "$SYNC"
step "the plan as JSON, for CI" "$BIN/reconciler" plan --sync "$SYNC" --json
step "status" "$BIN/reconciler" status

# -- Hanzo KMS as the source: the KMS emulator (tests/emulators/kms.py) on port 8086 ------------
KMS_PORT=8086   # as siteUrl in examples/syncs/connections.yaml
KSYNC=kms-to-aws
if (exec 3<>"/dev/tcp/127.0.0.1/$KMS_PORT") 2>/dev/null; then
  echo "port $KMS_PORT is in use: skipping the Hanzo KMS part" >&2
else
  cat >"$DEMO/kms-seed.yaml" <<'YAML'
identities: {demo-client: demo-client-secret}
projects:
  3c90c3cc-0d44-4b50-8888-8dd25736052a:
    dev:
      /shared:
        secrets: {LOG_LEVEL: info, DB_HOST: db.payments.internal}
      /payments:
        secrets:
          STRIPE_KEY: {value: demo-stripe-key, comment: rotated monthly, metadata: {team: payments}}
          DB_URL: "postgres://app@${dev.shared.DB_HOST}:5432/payments"
        imports: [{environment: dev, secretPath: /shared}]
YAML
  "$BIN/python" -m tests.emulators.kms --port "$KMS_PORT" --seed "$DEMO/kms-seed.yaml" >"$DEMO/kms.log" 2>&1 &
  KMS=$!
  trap 'kill $MOTO $KMS 2>/dev/null || true' EXIT
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$KMS_PORT") 2>/dev/null && break || sleep 0.2; done
  export KMS_CLIENT_ID=demo-client KMS_CLIENT_SECRET=demo-client-secret KMS_WEBHOOK_SECRET=demo-webhook-secret
  "$BIN/python" - "$PORT" <<'PY'
import sys, boto3
sm = boto3.client("secretsmanager", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", region_name="us-east-1")
sm.create_secret(Name="kms/dev/LEGACY_TOKEN", SecretString="made-by-hand-in-aws")
print("(in AWS) kms/dev/LEGACY_TOKEN exists before the first sync")
PY
  step "plan the KMS sync: imports merged, references expanded, LEGACY_TOKEN imported into KMS" \
    "$BIN/reconciler" plan --sync "$KSYNC"
  step "apply it" "$BIN/reconciler" apply --sync "$KSYNC"
  "$BIN/python" - "$KMS_PORT" <<'PY'
import sys, httpx
kms = httpx.Client(base_url=f"http://127.0.0.1:{sys.argv[1]}")
token = kms.post("/api/v1/auth/universal-auth/login",
                 json={"clientId": "demo-client", "clientSecret": "demo-client-secret"}).json()["accessToken"]
kms.headers["authorization"] = f"Bearer {token}"
folder = {"projectId": "3c90c3cc-0d44-4b50-8888-8dd25736052a", "environment": "dev", "secretPath": "/shared"}
kms.patch("/api/v4/secrets/batch", json={**folder, "secrets": [{"secretKey": "DB_HOST", "secretValue": "db2.internal"}]})
keys = [s["secretKey"] for s in kms.get("/api/v4/secrets", params={**folder, "secretPath": "/payments"}).json()["secrets"]]
print(f"(in Hanzo KMS) /payments now holds {sorted(keys)}; changed DB_HOST in /shared")
PY
  step "plan after a KMS change two folders away (DB_URL references DB_HOST)" \
    "$BIN/reconciler" plan --sync "$KSYNC"
  step "apply it" "$BIN/reconciler" apply --sync "$KSYNC"
  step "converged" "$BIN/reconciler" plan --sync "$KSYNC" --detailed-exitcode
fi

# -- Azure Key Vault: its emulator (tests/emulators/azure_keyvault) on 8443 and a fake Entra ------
# authority on 8444 with a throwaway CA; reconciler logs in with the real client-secret flow.
AKV_PORT=8443 AKV_IDP_PORT=8444   # as vaultBaseUrl / authorityHost in examples/syncs
ASYNC=my-key-vault-sync
if (exec 3<>"/dev/tcp/127.0.0.1/$AKV_PORT") 2>/dev/null || (exec 3<>"/dev/tcp/127.0.0.1/$AKV_IDP_PORT") 2>/dev/null; then
  echo "port $AKV_PORT or $AKV_IDP_PORT is in use: skipping the Azure Key Vault part" >&2
else
  export AZURE_TENANT_ID=emulator-tenant AZURE_CLIENT_ID=demo-client AZURE_CLIENT_SECRET=demo-client-secret
  "$BIN/python" -m tests.emulators.azure_keyvault --port "$AKV_PORT" --idp-port "$AKV_IDP_PORT" \
    --ca-dir "$DEMO/azure-ca" --client "$AZURE_TENANT_ID:$AZURE_CLIENT_ID:AZURE_CLIENT_SECRET" \
    >"$DEMO/keyvault.log" 2>&1 &
  AKV=$!
  trap 'kill $MOTO ${KMS:-} $AKV 2>/dev/null || true' EXIT
  for _ in $(seq 50); do grep -q "key vault on" "$DEMO/keyvault.log" 2>/dev/null && break || sleep 0.2; done
  step "plan the Key Vault sync ('_' becomes '-' in vault names)" "$BIN/reconciler" plan --sync "$ASYNC"
  step "apply it" "$BIN/reconciler" apply --sync "$ASYNC"
  step "no-op: one list call per 25 secrets and nothing else" "$BIN/reconciler" apply --sync "$ASYNC"
  "$BIN/python" - "$AKV_PORT" "$AKV_IDP_PORT" "$DEMO/azure-ca/ca.pem" <<'PY'
import os, sys
from azure.identity import ClientSecretCredential
from azure.keyvault.secrets import SecretClient
port, idp, ca = sys.argv[1:]
cred = ClientSecretCredential(os.environ["AZURE_TENANT_ID"], os.environ["AZURE_CLIENT_ID"],
                              os.environ["AZURE_CLIENT_SECRET"], authority=f"https://127.0.0.1:{idp}",
                              disable_instance_discovery=True, connection_verify=ca)
kv = SecretClient(f"https://127.0.0.1:{port}", cred, verify_challenge_resource=False, connection_verify=ca)
name = sorted(p.name for p in kv.list_properties_of_secrets())[0]
kv.begin_delete_secret(name, _polling_interval=0.1).wait()
print(f"(out of band) deleted {name} in the vault: soft-deleted, recoverable")
PY
  step "plan: the soft-deleted secret is an explicit restore (its value is compared, not rewritten)" \
    "$BIN/reconciler" plan --sync "$ASYNC"
  step "apply it" "$BIN/reconciler" apply --sync "$ASYNC"
  step "converged" "$BIN/reconciler" plan --sync "$ASYNC" --detailed-exitcode
fi

# -- OCI Vault: its emulator (tests/emulators/oci_vault) on 8445, plain HTTP, pages of 2; it ----------
# writes a throwaway API key and an OCI config file, and verifies the signature of every request.
OCI_PORT=8445   # as the endpoint of my-oci-connection in examples/syncs/connections.yaml
OSYNC=my-oci-vault-sync
if (exec 3<>"/dev/tcp/127.0.0.1/$OCI_PORT") 2>/dev/null; then
  echo "port $OCI_PORT is in use: skipping the OCI Vault part" >&2
else
  cat >"$DEMO/oci-seed.yaml" <<'YAML'
vaults:   # the OCIDs of examples/syncs/oci-vault.yaml
  - {vault: ocid1.vault.oc1.iad.exampleuniquevault, compartment: ocid1.compartment.oc1..aaaaaaaaexamplecompartment,
     keys: [ocid1.key.oc1.iad.exampleuniquevault.examplekey]}
secrets:
  - {name: someone-elses-secret, value: not-ours, vault: ocid1.vault.oc1.iad.exampleuniquevault}
YAML
  "$BIN/python" -m tests.emulators.oci_vault --port "$OCI_PORT" --key-dir "$DEMO/oci-key" \
    --seed "$DEMO/oci-seed.yaml" --page-size 2 >"$DEMO/oci.log" 2>&1 &
  OCI=$!
  trap 'kill $MOTO ${KMS:-} ${AKV:-} $OCI 2>/dev/null || true' EXIT
  for _ in $(seq 50); do grep -q "oci vault on" "$DEMO/oci.log" 2>/dev/null && break || sleep 0.2; done
  step "plan the OCI Vault sync (the vault's other secret is outside the key schema: never shown)" \
    "$BIN/reconciler" plan --sync "$OSYNC"
  step "apply it" "$BIN/reconciler" apply --sync "$OSYNC"
  step "no-op: every list page plus one GetSecret (metadata) per secret; no value read, no write" \
    "$BIN/reconciler" apply --sync "$OSYNC"
  "$BIN/python" - "$OCI_PORT" "$DEMO/oci-key/config" <<'PY'
import base64, sys
import oci
port, config_file = sys.argv[1:]
kw = {"service_endpoint": f"http://127.0.0.1:{port}", "retry_strategy": oci.retry.NoneRetryStrategy()}
vc = oci.vault.VaultsClient(oci.config.from_file(config_file), **kw)
listed = oci.pagination.list_call_get_all_results(vc.list_secrets, "ocid1.compartment.oc1..aaaaaaaaexamplecompartment",
                                                  vault_id="ocid1.vault.oc1.iad.exampleuniquevault").data
secret = min((s for s in listed if s.secret_name.startswith("myapp-")), key=lambda s: s.secret_name)
content = oci.vault.models.Base64SecretContentDetails(content_type="BASE64",
                                                      content=base64.b64encode(b"changed-by-hand").decode())
vc.update_secret(secret.id, oci.vault.models.UpdateSecretDetails(secret_content=content))
print(f"(out of band) a new version of {secret.secret_name} in the vault")
PY
  step "plan shows the drift (one value read: the secret whose version moved)" "$BIN/reconciler" plan --sync "$OSYNC"
  step "apply corrects it with one UpdateSecret" "$BIN/reconciler" apply --sync "$OSYNC"
  step "converged" "$BIN/reconciler" plan --sync "$OSYNC" --detailed-exitcode
fi

# -- Windmill: its emulator (tests/emulators/windmill) on 8446, plain HTTP as a self-hosted instance -----
# may be; the token reaches reconciler as a systemd-style credential ($CREDENTIALS_DIRECTORY/windmill-token).
WM_PORT=8446   # as the instanceUrl of my-windmill-connection in examples/syncs/connections.yaml
WSYNC=my-windmill-sync
if (exec 3<>"/dev/tcp/127.0.0.1/$WM_PORT") 2>/dev/null; then
  echo "port $WM_PORT is in use: skipping the Windmill part" >&2
else
  export CREDENTIALS_DIRECTORY="$PWD/$DEMO/credentials"
  mkdir -p "$CREDENTIALS_DIRECTORY" && (umask 077 && printf 'demo-windmill-token' >"$CREDENTIALS_DIRECTORY/windmill-token")
  cat >"$DEMO/windmill-seed.yaml" <<'YAML'
my-workspace:   # the workspace of examples/syncs/windmill.yaml; two variables that are not the sync's
  f/folder/path/SLACK_WEBHOOK: {value: https://hooks.example.com/not-ours, description: made by hand}
  f/folder/path/sub/dev_DB_PASSWORD: {value: a-sub-folder-is-out-of-scope}
YAML
  DEMO_WINDMILL_TOKEN=demo-windmill-token "$BIN/python" -m tests.emulators.windmill --port "$WM_PORT" \
    --seed "$DEMO/windmill-seed.yaml" --token-env DEMO_WINDMILL_TOKEN >"$DEMO/windmill.log" 2>&1 &
  WM=$!
  trap 'kill $MOTO ${KMS:-} ${AKV:-} ${OCI:-} $WM 2>/dev/null || true' EXIT
  for _ in $(seq 50); do grep -q "windmill on" "$DEMO/windmill.log" 2>/dev/null && break || sleep 0.2; done
  step "plan the Windmill sync (dev_* directly in f/folder/path/: the other two variables are out of scope)" \
    "$BIN/reconciler" plan --sync "$WSYNC"
  step "apply it: secret variables, the source comment as description" "$BIN/reconciler" apply --sync "$WSYNC"
  step "no-op: the list page only (edited_at is the version marker); no get_value, no write" \
    "$BIN/reconciler" apply --sync "$WSYNC"
  "$BIN/python" - "$WM_PORT" <<'PY'
import sys, httpx
wm = httpx.Client(base_url=f"http://127.0.0.1:{sys.argv[1]}/api/w/my-workspace/variables",
                  headers={"authorization": "Bearer demo-windmill-token"})
path = "f/folder/path/dev_DB_PASSWORD"
wm.post(f"/update/{path}", json={"value": "changed-by-hand", "is_secret": False}).raise_for_status()
print(f"(out of band) {path} changed by hand and made plain: its value now shows in every list")
PY
  step "plan shows the drift (one get_value: the variable whose edited_at moved)" \
    "$BIN/reconciler" plan --sync "$WSYNC"
  step "apply corrects it: the value and the secret flag in one update" "$BIN/reconciler" apply --sync "$WSYNC"
  step "converged" "$BIN/reconciler" plan --sync "$WSYNC" --detailed-exitcode
  "$BIN/python" - "$WM_PORT" <<'PY'
import sys, httpx
wm = httpx.Client(base_url=f"http://127.0.0.1:{sys.argv[1]}/api/w/my-workspace/variables",
                  headers={"authorization": "Bearer demo-windmill-token"})
print("the workspace now holds:")
for v in wm.get("/list", params={"per_page": 100}).raise_for_status().json():
    print(f"  {v['path']:40} {'secret' if v['is_secret'] else 'plain '}  {v['description']}")
PY
fi

# -- Azure DevOps: its emulator (tests/emulators/azure_devops) on 8447 with a throwaway CA; the group ----
# 'dev' already holds another team's variables. reconciler and a person have PATs of their own.
ADO_PORT=8447   # as the organizationUrl of my-devops-connection in examples/syncs/connections.yaml
DSYNC=my-devops-sync
if (exec 3<>"/dev/tcp/127.0.0.1/$ADO_PORT") 2>/dev/null; then
  echo "port $ADO_PORT is in use: skipping the Azure DevOps part" >&2
else
  cat >"$DEMO/azure-devops-seed.yaml" <<'YAML'
organization: my-org
projects:   # the project of examples/syncs/azure-devops.yaml
  - {name: example-project, id: 12345678-90ab-cdef-1234-567890abcdef}
groups:     # named after the sync's environment; LOG_LEVEL and DEPLOY_KEY belong to another team
  - {project: example-project, name: dev,
     variables: {LOG_LEVEL: {value: info}, DEPLOY_KEY: {value: not-ours, isSecret: true}}}
YAML
  export AZURE_DEVOPS_PAT=demo-reconciler-pat DEMO_PERSON_PAT=demo-person-pat
  "$BIN/python" -m tests.emulators.azure_devops --port "$ADO_PORT" --seed "$DEMO/azure-devops-seed.yaml" \
    --pat "reconciler (service account):AZURE_DEVOPS_PAT" --pat "Jane Doe:DEMO_PERSON_PAT" \
    --ca-dir "$DEMO/azure-devops-ca" >"$DEMO/azure-devops.log" 2>&1 &
  ADO=$!
  trap 'kill $MOTO ${KMS:-} ${AKV:-} ${OCI:-} ${WM:-} $ADO 2>/dev/null || true' EXIT
  for _ in $(seq 50); do grep -q "azure devops organization on" "$DEMO/azure-devops.log" 2>/dev/null && break || sleep 0.2; done
  ado() {   # ado PAT [put DB_KEY]: show the group 'dev' as PAT's owner sees it, or change one variable
    "$BIN/python" - "$ADO_PORT" "$DEMO/azure-devops-ca/ca.pem" "$@" <<'PY'
import os, sys, httpx
port, ca, pat, *edit = sys.argv[1:]
org = httpx.Client(base_url=f"https://127.0.0.1:{port}/my-org", verify=ca, auth=("", os.environ[pat]),
                   headers={"X-TFS-FedAuthRedirect": "Suppress"}, params={"api-version": "7.1"})
group = org.get("/example-project/_apis/distributedtask/variablegroups",
                params={"groupName": "dev"}).raise_for_status().json()["value"][0]
if edit:
    group["variables"][edit[0]] = {"value": "changed-by-hand", "isSecret": True}
    group = org.put(f"/_apis/distributedtask/variablegroups/{group['id']}", json=group).raise_for_status().json()
    print(f"(out of band) {group['modifiedBy']['displayName']} set {edit[0]} in the web UI")
    raise SystemExit
print(f"variable group dev, last written by {group['modifiedBy']['displayName']}:")
for name, v in sorted(group["variables"].items()):
    print(f"  {name:22} {'secret (value never returned)' if v.get('isSecret') else v['value']}")
PY
  }
  step "plan the Azure DevOps sync (the group exists: its other variables are kept, never shown)" \
    "$BIN/reconciler" plan --sync "$DSYNC"
  step "apply it: one PUT of the merged group" "$BIN/reconciler" apply --sync "$DSYNC"
  step "no-op: one GET, no write" "$BIN/reconciler" apply --sync "$DSYNC"
  ado DEMO_PERSON_PAT PIPELINE_DB_PASSWORD
  step "plan: values are write-only, so an edit by someone else rewrites what the sync owns" \
    "$BIN/reconciler" plan --sync "$DSYNC"
  step "apply corrects it" "$BIN/reconciler" apply --sync "$DSYNC"
  step "converged" "$BIN/reconciler" plan --sync "$DSYNC" --detailed-exitcode
  ado AZURE_DEVOPS_PAT
  echo "(LOG_LEVEL and DEPLOY_KEY, the other team's, survived every write)"
fi

# -- the daemon: reconciler run keeps the AWS sync converged; a saved secrets file lands at once --
DAEMON_PORT=${DEMO_DAEMON_PORT:-9464}
if (exec 3<>"/dev/tcp/127.0.0.1/$DAEMON_PORT") 2>/dev/null; then
  echo "port $DAEMON_PORT is in use: skipping the daemon part" >&2
else
  mkdir -p "$DEMO/examples/daemon"   # its connections' ../secrets.yaml is the demo's secrets file
  cp "$DEMO/examples/syncs/connections.yaml" "$DEMO/examples/syncs/aws-secrets-manager.yaml" "$DEMO/examples/daemon/"
  printf '\n\033[1m== reconciler run: the daemon (JSON logs in %s)\033[0m\n' "$DEMO/daemon.log"
  "$BIN/reconciler" run "$DEMO/examples/daemon" --listen "127.0.0.1:$DAEMON_PORT" 2>"$DEMO/daemon.log" &
  DAEMON=$!
  "$BIN/python" - "$PORT" "$DAEMON_PORT" "$DEMO/examples/secrets.yaml" <<'PY'
import os, sys, time, urllib.request
import boto3, yaml
aws, daemon, path = sys.argv[1:]
def get(url):
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.status, r.read().decode()
    except Exception:
        return None, ""
for _ in range(100):
    if get(f"http://127.0.0.1:{daemon}/readyz")[0] == 200:
        break
    time.sleep(0.1)
print(f"/readyz answers 200: specs loaded, first reconcile done")
data = yaml.safe_load(open(path))
data["dev"]["/my-secrets"]["NEW_SECRET"] = "saved-while-the-daemon-runs"
tmp = path + ".tmp"
yaml.safe_dump(data, open(tmp, "w"), sort_keys=False)
saved = time.monotonic()
os.replace(tmp, path)
sm = boto3.client("secretsmanager", endpoint_url=f"http://127.0.0.1:{aws}", region_name="us-east-1")
name = next(s["Name"] for s in sm.list_secrets()["SecretList"] if s["Name"].endswith("NEW_SECRET"))
while sm.get_secret_value(SecretId=name)["SecretString"] != "saved-while-the-daemon-runs":
    time.sleep(0.02)
print(f"(in the source) saved NEW_SECRET; the daemon put it in AWS {1000 * (time.monotonic() - saved):.0f} ms later")
_, metrics = get(f"http://127.0.0.1:{daemon}/metrics")
print("/metrics:")
for line in metrics.splitlines():
    if line.startswith(("reconciler_reconciles_total", "reconciler_managed_keys")):
        print("  " + line)
PY
  kill -TERM "$DAEMON"
  rc=0; wait "$DAEMON" || rc=$?
  echo "SIGTERM: the daemon stopped gracefully (exit code $rc)"
fi
echo
echo "Demo done. State is in $DEMO/state; the emulators' logs in $DEMO/*.log."
