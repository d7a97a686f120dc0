#!/usr/bin/env bash
# The operator's CLI against a real server over HTTPS: tasks (create from a file and stdin, list, show,
# close-round), enrolment tokens, devices (list, revoke), the log exported as JSON lines and as binary,
# table and --json output, and clear failures (bad token, unknown task, usage). The server runs with
# --log-format json --access-log: its log must be JSON lines with a request id on every request.
#   test_admin_cli.sh SERVER_BIN
source "$(dirname "$0")/../support/test_lib.sh"
server="$(realpath "$1")"
cd "$work"
make_test_cert
echo "admin-cli-test-token-0123456789abcdef" > admin
"$server" --listen 127.0.0.1:0 --port-file port --tls-cert cert.pem --tls-key key.pem --store store.db --admin-token-file admin \
  --log-format json --access-log 2> server.log &
pid=$!
wait_for_port "$pid" server.log
url="https://127.0.0.1:$(cat port)"
adm() { "$server" admin --url "$url" --admin-token-file admin --ca cert.pem "$@"; }
model=$(printf 'e%.0s' $(seq 64))
echo '{"id":"t1","base_model_id":"'"$model"'","tau":2,"round_seconds":3600,"min_submissions":1}' > t1.json
check "task create from a file" 'adm task create --spec t1.json | grep -q "task t1 created"'
check "task create from stdin, --json" 'echo "{\"id\":\"t2\",\"base_model_id\":\"$model\",\"tau\":3}" | adm --json task create --spec - | python3 -c "import json,sys; sys.exit(0 if json.load(sys.stdin)[\"tau\"] == 3 else 1)"'
check "a duplicate task is refused with the server's code, exit 1" 'adm task create --spec t1.json 2> dup.err; [ $? -eq 1 ] && grep -q "task_exists" dup.err'
check "task list is a table with both tasks" 'adm task list > list.txt && head -1 list.txt | grep -q "^ID  *VERSION  *ROUND" && grep -q "^t1 " list.txt && grep -q "^t2 " list.txt'
check "task show prints the spec and status" 'adm task show t1 | grep -q "^tau  *2"'
check "task show of an unknown task fails clearly" 'adm task show nope 2> nope.err; [ $? -eq 1 ] && grep -q "unknown_task" nope.err'
tok=$(adm --json tokens create --uses 3 --ttl-seconds 600 | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
check "tokens create prints a token" '[ "${tok#et_}" != "$tok" ]'
creds=()
for _ in 1 2 3; do creds+=("$(curl -sS --cacert cert.pem -X POST "$url/v1/enrol" -d '{"token":"'"$tok"'"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["credential"])')"); done
check "devices list shows the three enrolled devices" '[ "$(adm --json devices list | python3 -c "import json,sys; print(len(json.load(sys.stdin)[\"devices\"]))")" = 3 ]'
check "devices list pages through every device (limit 1)" '[ "$(adm --json devices list --limit 1 | python3 -c "import json,sys; print(len(json.load(sys.stdin)[\"devices\"]))")" = 3 ]'
d0="${creds[0]%%.*}"
check "devices revoke" 'adm devices revoke "$d0" | grep -q "revoked"'
check "the revoked device is shown revoked and refused by the server" 'adm devices list | grep "^$d0 " | grep -q true && [ "$(curl -s -o /dev/null -w "%{http_code}" --cacert cert.pem -H "Authorization: Bearer ${creds[0]}" "$url/v1/tasks/t1/round")" = 403 ]'
for i in 1 2; do
  curl -sS --cacert cert.pem -H "Authorization: Bearer ${creds[$i]}" -X POST "$url/v1/tasks/t1/rounds/1/submissions" \
    -d '{"coeffs":[0.25,-0.5],"examples":2,"base_version":0}' > /dev/null
done
check "task close-round applies the current round" 'adm task close-round t1 | grep -q "round 1: applied with 2 submissions"'
check "log export writes the applied entries as JSON lines" 'adm log export t1 --out log.jsonl 2> export.err && [ "$(wc -l < log.jsonl)" = 2 ] && grep -q "\"coeff\":0.25" log.jsonl'
check "log export matches the API's log" '[ "$(python3 -c "import json; print([json.loads(l)[\"seed\"] for l in open(\"log.jsonl\")])")" = "$(curl -sS --cacert cert.pem -H "Authorization: Bearer $(cat admin)" "$url/v1/tasks/t1/log?since=0" | python3 -c "import json,sys; print([e[\"seed\"] for e in json.load(sys.stdin)[\"entries\"]])")" ]'
check "log export --format binary: 12 bytes per entry" 'adm log export t1 --format binary > log.bin && [ "$(stat -c %s log.bin)" = 24 ]'
echo "wrong-token" > bad
check "a wrong admin token fails with unauthorized, exit 1" '"$server" admin --url "$url" --admin-token-file bad --ca cert.pem task list 2> bad.err; [ $? -eq 1 ] && grep -q "HTTP 401" bad.err'
check "an unknown command is a usage error, exit 2" 'adm frobnicate 2> /dev/null; [ $? -eq 2 ]'
check "--help lists the commands" '"$server" admin --help | grep -q "log export ID"'
check "an unreachable server fails clearly" '"$server" admin --url https://127.0.0.1:1 --admin-token-file admin task list 2> unreach.err; [ $? -eq 1 ] && [ -s unreach.err ]'
check "X-Request-Id: the client's own comes back, else one is made" '[ "$(c() { curl -sS --cacert cert.pem -D - -o /dev/null "$@"; }; c -H "X-Request-Id: cli-test-42" "$url/healthz" | tr -d "\r" | sed -n "s/^[Xx]-[Rr]equest-[Ii]d: //p")" = cli-test-42 ] && curl -sS --cacert cert.pem -D - -o /dev/null "$url/healthz" | grep -qi "^x-request-id: [0-9a-f]*-[0-9]"'
check "every server log line is a JSON object with ts, level and msg" 'python3 -c "
import json, sys
n = 0
for line in open(\"server.log\"):
    j = json.loads(line); n += 1
    assert {\"ts\", \"level\", \"msg\"} <= j.keys(), line
sys.exit(0 if n > 10 else 1)"'
# --pin: the key pin the server logs, instead of the CA file.
pin=$(grep -o 'key pin sha256/[A-Za-z0-9+/=]*' server.log | head -1 | cut -d' ' -f3)
pinned() { "$server" admin --url "$url" --admin-token-file admin --pin "$1" "${@:2}"; }
check "--pin with the logged key pin ($pin) reaches the server" '[ -n "$pin" ] && pinned "$pin" task list | grep -q t1'
check "--pin with another key's pin is refused, naming the server's pin" \
  '! pinned "sha256/$(printf "%043d" 0 | tr 0 A)=" task list 2> e.txt && grep -q "$pin" e.txt'
check "--ca and --pin together: a usage error" \
  '"$server" admin --url "$url" --admin-token-file admin --ca cert.pem --pin "$pin" task list 2> /dev/null; [ $? = 2 ]'
check "the access log has the admin CLI's requests with request ids, routes and statuses" 'python3 -c "
import json, sys
reqs = [json.loads(l) for l in open(\"server.log\") if \"\\\"request_id\\\"\" in l]
routes = {(r[\"method\"], r[\"route\"], r[\"status\"]) for r in reqs}
need = {(\"POST\", \"/v1/admin/tasks\", 201), (\"POST\", \"/v1/admin/tasks\", 409), (\"GET\", \"/v1/admin/devices\", 200)}
sys.exit(0 if need <= routes and all(r[\"request_id\"] for r in reqs) and any(r[\"request_id\"] == \"cli-test-42\" for r in reqs) else 1)"'
[ $fails -eq 0 ] || tail -20 server.log
finish
