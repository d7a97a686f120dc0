#!/usr/bin/env bash
# The aggregation server driven by curl over HTTPS, as an operator or a third-party client would:
# task with base weights, enrolment, a round, log sync, snapshot download with its SHA-256, revocation
# and the rejection cases, metrics, and a clean SIGTERM.
#   test_server_curl.sh POCKETLLM_SERVER_BINARY
source "$(dirname "$0")/../support/test_lib.sh"
server_bin="$(realpath "$1")"

cd "$work"
make_test_cert
admin_token="curl-test-admin-token-0123456789"
echo "$admin_token" > admin_token
# A safetensors file of two float32 tensors, written with the standard library only.
python3 - <<'PY'
import json, struct
a = [0.001 * i for i in range(40)]
b = [1.0 - 0.01 * i for i in range(6)]
header = {"w.a": {"dtype": "F32", "shape": [40], "data_offsets": [0, 160]},
          "w.b": {"dtype": "F32", "shape": [2, 3], "data_offsets": [160, 184]}}
h = json.dumps(header).encode()
h += b" " * ((8 - len(h) % 8) % 8)
with open("base.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + struct.pack("<40f", *a) + struct.pack("<6f", *b))
PY

"$server_bin" --listen 127.0.0.1:0 --port-file port --tls-cert cert.pem --tls-key key.pem --store store.db \
  --admin-token-file admin_token --max-body-bytes 4096 2> server.log &
pid=$!
wait_for_port "$pid" server.log
url="https://127.0.0.1:$(cat port)"
c() { curl -sS --cacert cert.pem "$@"; }
code() { curl -s -o /dev/null -w '%{http_code}' --cacert cert.pem "$@"; }
jget() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d' + sys.argv[1]))" "$1" 2>/dev/null; }
A=(-H "Authorization: Bearer $admin_token")

check "healthz over TLS" '[ "$(code "$url/healthz")" = 200 ]'
check "curl refuses the server without the test CA" '! curl -sS -o /dev/null "$url/healthz" 2>/dev/null'
model_id=$(printf 'd%.0s' $(seq 64))
task='{"id":"curl","base_model_id":"'$model_id'","tau":3,"round_seconds":60,"goal_submissions":2,"min_submissions":2,"base_weights":"'$work'/base.safetensors"}'
check "admin creates a task" '[ "$(code "${A[@]}" -X POST -d "$task" "$url/v1/admin/tasks")" = 201 ]'
check "a device cannot create tasks" '[ "$(code -H "Authorization: Bearer nobody.x" -X POST -d "$task" "$url/v1/admin/tasks")" = 401 ]'
token=$(c "${A[@]}" -X POST -d '{"uses":2}' "$url/v1/admin/enrolment-tokens" | jget '["token"]')
cred_a=$(c -X POST -d "{\"token\":\"$token\"}" "$url/v1/enrol" | jget '["credential"]')
cred_b=$(c -X POST -d "{\"token\":\"$token\"}" "$url/v1/enrol" | jget '["credential"]')
check "two devices enrolled with one two-use token" '[ -n "$cred_a" ] && [ -n "$cred_b" ] && [ "$cred_a" != "$cred_b" ]'
check "a used-up token is refused" '[ "$(code -X POST -d "{\"token\":\"$token\"}" "$url/v1/enrol")" = 401 ]'
DA=(-H "Authorization: Bearer $cred_a"); DB=(-H "Authorization: Bearer $cred_b")
round=$(c "${DA[@]}" "$url/v1/tasks/curl/round")
check "the round publishes 3 seeds" '[ "$(echo "$round" | jget "[\"tau\"]")" = 3 ]'
sub="$url/v1/tasks/curl/rounds/1/submissions"
check "no credential: 401" '[ "$(code -X POST -d "{}" "$sub")" = 401 ]'
check "malformed JSON: 400" '[ "$(code "${DA[@]}" -X POST -d "{\"coeffs\":" "$sub")" = 400 ]'
check "wrong scalar count: 422" '[ "$(code "${DA[@]}" -X POST -d "{\"coeffs\":[1],\"examples\":1,\"base_version\":0}" "$sub")" = 422 ]'
check "body over the limit: 413" '[ "$(code "${DA[@]}" -X POST --data-binary @base.safetensors -d "$(head -c 5000 /dev/zero | tr "\0" x)" "$sub")" = 413 ]'
check "device a submits: 201" '[ "$(code "${DA[@]}" -X POST -d "{\"coeffs\":[0.25,-0.5,1],\"examples\":1,\"base_version\":0}" "$sub")" = 201 ]'
check "the same again: 200" '[ "$(code "${DA[@]}" -X POST -d "{\"coeffs\":[0.25,-0.5,1],\"examples\":1,\"base_version\":0}" "$sub")" = 200 ]'
check "device b submits: 201" '[ "$(code "${DB[@]}" -X POST -d "{\"coeffs\":[0.75,0.5,1],\"examples\":1,\"base_version\":0}" "$sub")" = 201 ]'
for _ in $(seq 50); do [ "$(c "${DA[@]}" "$url/v1/tasks/curl" | jget '["version"]')" = 3 ] && break; sleep 0.1; done
log=$(c "${DA[@]}" "$url/v1/tasks/curl/log?since=0")
check "the round applied the mean of the two" '[ "$(echo "$log" | jget "[\"entries\"][0][\"coeff\"]")" = 0.5 ] && [ "$(echo "$log" | jget "[\"entries\"][1][\"coeff\"]")" = 0.0 ]'
check "a late submission: 409" '[ "$(code "${DB[@]}" -X POST -d "{\"coeffs\":[1,1,1],\"examples\":1,\"base_version\":0}" "$sub")" = 409 ]'
c "${DA[@]}" -D headers.txt -o snapshot.safetensors "$url/v1/tasks/curl/snapshot"
want=$(tr -d '\r' < headers.txt | awk -F': ' 'tolower($1)=="x-pocketllm-sha256"{print $2}')
check "snapshot body matches its X-Pocketllm-Sha256" '[ -n "$want" ] && [ "$(sha256sum snapshot.safetensors | cut -d" " -f1)" = "$want" ]'
check "snapshot is at version 3" 'grep -qi "^x-pocketllm-version: 3" headers.txt'
id_b="${cred_b%%.*}"
check "admin revokes device b" '[ "$(code "${A[@]}" -X POST "$url/v1/admin/devices/$id_b/revoke")" = 200 ]'
check "a revoked device: 403" '[ "$(code "${DB[@]}" "$url/v1/tasks/curl/round")" = 403 ]'
metrics=$(c "$url/metrics")
check "metrics count submissions and devices" 'echo "$metrics" | grep -q "pocketllm_submissions_total{result=\"accepted\"} 2" && echo "$metrics" | grep -q "pocketllm_devices{state=\"revoked\"} 1"'
check "no secret reaches the server log" '! grep -q -e "$admin_token" -e "${cred_a#*.}" -e "$token" server.log'
# Bytes that are not HTTP get a 400 before the connection closes.
malformed=$(python3 - "$(cat port)" <<'PY'
import socket, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))))
s.sendall(b"GARBAGE\x01 / HTTP/9\r\nno header line\r\n\r\n")
print(s.recv(4096).split(b"\r\n")[0].decode(errors="replace"))
PY
)
check "malformed HTTP gets 400 ($malformed)" '[[ "$malformed" == "HTTP/1.1 400"* ]]'
kill -TERM "$pid"; wait "$pid"; status=$?; pid=""
check "SIGTERM: clean exit" '[ "$status" = 0 ]'
[ $fails -eq 0 ] || { echo "--- server log"; cat server.log; }
finish
