#!/usr/bin/env bash
# The store's disk runs out (here: a file-size limit, ulimit -f, on the server's process): writes that
# no longer fit are answered 503 store_unavailable, the process lives on, the operator gets one ERROR line
# naming the failed operation and the store's reason (not one per request) and a /metrics counter; after
# a restart without the limit every enrolment that was acknowledged (201) is there, and enrolment works.
#   test_store_full.sh POCKETLLM_SERVER_BINARY
source "$(dirname "$0")/../support/test_lib.sh"
server_bin="$(realpath "$1")"
cd "$work"
make_test_cert
admin_token="store-full-admin-token-0123456789"
echo "$admin_token" > admin_token
start() {  # start LIMIT_KIB|unlimited LOG
  rm -f port
  (ulimit -f "$1"; exec "$server_bin" --listen 127.0.0.1:0 --port-file port --tls-cert cert.pem --tls-key key.pem \
     --store store.db --admin-token-file admin_token --device-rate 0 --auth-failure-rate 0 2> "$2") &
  pid=$!
  wait_for_port "$pid" "$2"
  url="https://127.0.0.1:$(cat port)"
}
c() { curl -sS --cacert cert.pem "$@"; }
code() { curl -s -o /dev/null -w '%{http_code}' --cacert cert.pem "$@"; }
jget() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d' + sys.argv[1]))" "$1" 2>/dev/null; }
A=(-H "Authorization: Bearer $admin_token")

start 512 limited.log
token=$(c "${A[@]}" -X POST -d '{"uses":100000}' "$url/v1/admin/enrolment-tokens" | jget '["token"]')
check "an enrolment token before the disk fills" '[ -n "$token" ]'
acknowledged=0; refused=0
for _ in $(seq 2000); do
  rc=$(curl -s -o reply.json -w '%{http_code}' --cacert cert.pem -X POST -d "{\"token\":\"$token\"}" "$url/v1/enrol")
  if [ "$rc" = 201 ]; then acknowledged=$((acknowledged + 1)); continue; fi
  [ "$rc" = 503 ] && grep -q '"store_unavailable"' reply.json && refused=$((refused + 1))
  [ "$refused" -ge 20 ] && break
done
echo "   $acknowledged enrolments acknowledged, then $refused refused"
check "writes past the limit are refused 503 store_unavailable after some were acknowledged" \
  '[ "$acknowledged" -gt 0 ] && [ "$refused" -ge 20 ]'
check "the server is still up" 'kill -0 "$pid" 2> /dev/null && [ "$(code "$url/healthz")" = 200 ]'
check "one ERROR line names the operation and the store's reason, not one per refusal" \
  '[ "$(grep -c "ERROR: store: saving an enrolled device failed: " limited.log)" = 1 ] && grep -q "ERROR: store: .*disk I/O error (a write came up short: is the disk full, or a file-size limit reached?)" limited.log'
check "/metrics counts the failures" \
  'c "$url/metrics" | awk "/^pocketllm_store_errors_total / { exit !(\$2 >= 20) }"'
kill -TERM "$pid"; wait "$pid"; pid=""

start unlimited restarted.log
stored=$(c "${A[@]}" "$url/v1/admin/devices?limit=10000" | jget '["total"]')
check "after a restart without the limit all $acknowledged acknowledged enrolments are stored ($stored)" '[ "$stored" = "$acknowledged" ]'
check "and enrolment works again" '[ "$(code -X POST -d "{\"token\":\"$token\"}" "$url/v1/enrol")" = 201 ]'
kill -TERM "$pid"; wait "$pid"; pid=""
finish
