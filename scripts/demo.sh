#!/usr/bin/env bash
# The product demo: a local AWS Secrets Manager (moto) on 127.0.0.1, the example specs,
# and reconciler driving plan -> apply -> no-op -> drift correction -> a source change.
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
folder["NEW_SECRET"] = "added-in-the-source"
yaml.safe_dump(data, open(path, "w"), sort_keys=False)
print(f"(in the source) removed {first}, added NEW_SECRET")
PY
step "plan after a source change: maxDeletes: 25% of 3 keys allows no delete, so it is refused" \
  "$BIN/reconciler" plan --sync "$SYNC"
sed -i 's/maxDeletes: 25%/maxDeletes: 1/' "$DEMO/examples/syncs/aws-secrets-manager.yaml"
echo "(in the spec) maxDeletes: 25% -> maxDeletes: 1"
step "now the delete is planned (AWS keeps the secret for its 30-day recovery window)" \
  "$BIN/reconciler" plan --sync "$SYNC"
step "apply it" "$BIN/reconciler" apply --sync "$SYNC"
step "the plan as JSON, for CI" "$BIN/reconciler" plan --sync "$SYNC" --json
step "status" "$BIN/reconciler" status
echo
echo "Demo done. State is in $DEMO/state; the moto log in $DEMO/moto.log."
