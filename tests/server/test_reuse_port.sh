#!/usr/bin/env bash
# Two replicas on one PostgreSQL database listening on ONE port with --reuse-port (SO_REUSEPORT): the
# kernel spreads new connections over both (each replica's access log shows requests), a device
# enrolled through one submits through whichever it reaches, a server without --reuse-port cannot take
# the port, and after kill -9 of one replica (the leader) every new connection is served by the other,
# which takes the lead and closes the round.
#   test_reuse_port.sh SERVER_BIN
source "$(dirname "$0")/../support/test_lib.sh"
server="$(realpath "$1")"
pgsh="$support_dir/postgres.sh"
cd "$work"
admin_url=$("$pgsh" start "$work/pg") || exit $?
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; "$pgsh" stop "$work/pg"; cleanup' EXIT
psql -X -q "$admin_url" -c "CREATE DATABASE pllm" >/dev/null
store="${admin_url%/*}/pllm"
make_test_cert
echo "reuse-port-test-token-0123456789abcdef" > admin
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="https://127.0.0.1:$port"
for i in 1 2; do
  "$server" --listen "127.0.0.1:$port" --reuse-port --tls-cert cert.pem --tls-key key.pem --store "$store" \
    --admin-token-file admin --device-rate 0 --access-log 2> "r$i.log" &
  pids+=($!)
  for _ in $(seq 100); do grep -q "listening on" "r$i.log" && break; sleep 0.05; done
done
check "both replicas listen on port $port" 'grep -q "listening on" r1.log && grep -q "listening on" r2.log'
"$server" --listen "127.0.0.1:$port" --tls-cert cert.pem --tls-key key.pem --store "$store" --admin-token-file admin 2> plain.log
check "a server without --reuse-port cannot take the port, and says so" 'grep -q "cannot listen on 127.0.0.1:$port" plain.log'
c() { curl -sS --cacert cert.pem "$@"; }
model=$(printf 'e%.0s' $(seq 64))
c -H "Authorization: Bearer $(cat admin)" -X POST "$url/v1/admin/tasks" \
  -d '{"id":"t","base_model_id":"'"$model"'","tau":2,"round_seconds":3600,"min_submissions":1}' > task.json
tok=$(c -H "Authorization: Bearer $(cat admin)" -X POST "$url/v1/admin/enrolment-tokens" -d '{"uses":40}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
for _ in $(seq 40); do  # every curl is a new connection
  c -X POST "$url/v1/enrol" -d '{"token":"'"$tok"'"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["credential"])'
done > creds.txt
check "40 devices enrolled through the shared port" '[ "$(grep -c . creds.txt)" = 40 ]'
check "the kernel gave both replicas connections" \
  '[ "$(grep -c "/v1/enrol" r1.log)" -gt 0 ] && [ "$(grep -c "/v1/enrol" r2.log)" -gt 0 ]'
submit() {  # every device submits to round 1; prints the HTTP codes
  while read -r cred; do
    c -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $cred" -X POST "$url/v1/tasks/t/rounds/1/submissions" \
      -d '{"coeffs":[0.5,-0.25],"examples":2,"base_version":0}'
  done
}
head -20 creds.txt | submit > codes1.txt
check "20 devices submitted through either replica (201 each)" '[ "$(grep -c "^201$" codes1.txt)" = 20 ]'
status() {  # the status page's data from whichever replica a new connection reaches: "submissions active"
  c -H "Authorization: Bearer $(cat admin)" "$url/ui/status.json" |
    python3 -c 'import json,sys; s=json.load(sys.stdin); r=[x for x in s["tasks"][0]["rounds"] if x["round"]==1][0]; print(r["submissions"], s["devices"]["active"])'
}
for i in 1 2 3 4 5 6; do status; done > status.txt
check "every replica's status page counts all 20 submissions and 40 devices (the store's, not its own)" \
  '[ "$(sort -u status.txt)" = "20 40" ]'
# The Sybil cap across replicas: all 40 devices came with one enrolment token; a task taking at most 3
# of them per round admits exactly 3 whichever replicas the 10 submissions reach.
c -H "Authorization: Bearer $(cat admin)" -X POST "$url/v1/admin/tasks" \
  -d '{"id":"capped","base_model_id":"'"$model"'","tau":2,"round_seconds":3600,"min_submissions":1,"max_per_token":3}' > capped.json
sleep 0.3  # the other replica loads the task on its next tick (or at the first request for it)
head -10 creds.txt | while read -r cred; do
  c -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $cred" -X POST "$url/v1/tasks/capped/rounds/1/submissions" \
    -d '{"coeffs":[0.5,-0.25],"examples":2,"base_version":0}'
done > capped_codes.txt
check "max_per_token 3 holds across both replicas: 3 of 10 devices of one token get 201, the rest 403 token_cap" \
  '[ "$(grep -c "^201$" capped_codes.txt)" = 3 ] && [ "$(grep -c "^403$" capped_codes.txt)" = 7 ]'
check "the store holds 3 submissions of the capped round" \
  '[ "$(psql -X -qtA "$store" -c "SELECT count(*) FROM submissions WHERE task = '"'capped'"' AND round = 1")" = 3 ]'
# A replica of the previous release (schema 4) calls the nine-argument commit: it still works on this
# schema (rolling upgrades), without the cap.
psql -X -qtA "$store" -c "SELECT count(*) FROM pllm_insert_submissions('{capped}', '{1}', '{legacy-device}', '{\"\\\\\\\\x0000003f\"}', '{2}', '{0}', '{1}', '{\"{}\"}', '{0}')" > legacy.txt 2>&1
check "the previous release's group commit still works on this schema (rolling upgrade)" \
  '[ "$(cat legacy.txt)" = 0 ] && [ "$(psql -X -qtA "$store" -c "SELECT count(*) FROM submissions WHERE task = '"'capped'"' AND device = '"'legacy-device'"'")" = 1 ]'
kill -9 "${pids[0]}"; sleep 0.3
tail -20 creds.txt | submit > codes2.txt
check "after kill -9 of one replica every new connection is served by the other (20 x 201)" '[ "$(grep -c "^201$" codes2.txt)" = 20 ]'
check "the store holds all 40 submissions of round 1" \
  '[ "$(psql -X -qtA "$store" -c "SELECT count(*) FROM submissions WHERE task = '"'t'"' AND round = 1")" = 40 ]'
adm() { "$server" admin --url "$url" --admin-token-file admin --ca cert.pem "$@"; }
adm task close-round t > close.txt 2>&1
version() { adm --json task show t | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])'; }
for _ in $(seq 50); do [ "$(version)" != 0 ] && break; sleep 0.1; done
check "the survivor leads: the round it was asked to close is applied (version > 0)" '[ "$(version)" -gt 0 ]'
check "its log says it took the lead" 'grep -q "leading: this server closes the rounds" r2.log'
finish
