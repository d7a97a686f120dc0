#!/usr/bin/env bash
# A private task's budget holds across kill -9 restarts of the real server: the task is calibrated so
# that exactly two rounds fit in its epsilon; rounds are applied with the server killed in between; after
# the second, no round opens — not before a restart, not after one — and the task says why. Also:
# submissions beyond the clip norm and non-finite ones are refused, and the mechanism cannot be changed.
#   test_privacy_restart.sh POCKETLLM_SERVER_BINARY POCKETLLM_CLI
source "$(dirname "$0")/../support/test_lib.sh"
server_bin="$(realpath "$1")"; cli="$(realpath "$2")"
cd "$work"
make_test_cert
echo "privacy-test-admin-token-0123456789" > admin_token
start() {
  "$server_bin" --listen 127.0.0.1:0 --port-file port --tls-cert cert.pem --tls-key key.pem --store store.db \
    --admin-token-file admin_token 2>> server.log &
  pid=$!
  wait_for_port "$pid" server.log
  url="https://127.0.0.1:$(cat port)"
}
restart() { kill -9 "$pid"; wait "$pid" 2>/dev/null; rm -f port; start; }
c() { curl -sS --cacert cert.pem "$@"; }
code() { curl -s -o /dev/null -w '%{http_code}' --cacert cert.pem "$@"; }
jget() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d' + sys.argv[1]))" "$1" 2>/dev/null; }
start
A=(-H "Authorization: Bearer $(cat admin_token)")
model_id=$(printf 'e%.0s' $(seq 64))
privacy='{"mode":"central","clip_norm":1.0,"planned_rounds":2,"sampling_rate":1.0,"target_epsilon":2.0,"delta":1e-5,"expected_participants":1}'
task='{"id":"dp","base_model_id":"'$model_id'","tau":2,"round_seconds":600,"goal_submissions":1,"min_submissions":1,"privacy":'$privacy'}'
check "admin creates a private task" '[ "$(code "${A[@]}" -X POST -d "$task" "$url/v1/admin/tasks")" = 201 ]'
sigma=$(c "${A[@]}" "$url/v1/tasks/dp" | jget '["privacy"]["noise_multiplier"]')
check "the noise multiplier was calibrated so that 2 rounds fit and 3 do not" \
  '[ "$("$cli" privacy rounds --epsilon 2 --sampling-rate 1 --noise-multiplier "$sigma" --delta 1e-5)" = "2 rounds" ]'
bad='{"id":"dp","base_model_id":"'$model_id'","tau":2,"privacy":{"mode":"local","clip_norm":5,"noise_multiplier":0.5,"sampling_rate":1,"target_epsilon":50,"delta":1e-5}}'
check "the mechanism cannot be changed: re-creating the task is 409" '[ "$(code "${A[@]}" -X POST -d "$bad" "$url/v1/admin/tasks")" = 409 ]'
median='{"id":"dp2","base_model_id":"'$model_id'","strategy":"median","privacy":'$privacy'}'
check "median with DP is refused at creation (422)" '[ "$(code "${A[@]}" -X POST -d "$median" "$url/v1/admin/tasks")" = 422 ]'
absurd='{"id":"dp3","base_model_id":"'$model_id'","privacy":{"mode":"central","clip_norm":1,"noise_multiplier":1,"sampling_rate":1,"target_epsilon":3,"delta":0.2,"expected_participants":1}}'
check "an absurd delta is refused at creation (422)" '[ "$(code "${A[@]}" -X POST -d "$absurd" "$url/v1/admin/tasks")" = 422 ]'
token=$(c "${A[@]}" -X POST -d '{"uses":1}' "$url/v1/admin/enrolment-tokens" | jget '["token"]')
cred=$(c -X POST -d "{\"token\":\"$token\"}" "$url/v1/enrol" | jget '["credential"]')
D=(-H "Authorization: Bearer $cred")
sub() { code "${D[@]}" -X POST -d "$2" "$url/v1/tasks/dp/rounds/$1/submissions"; }
check "a device over the clip norm is refused (422)" '[ "$(sub 1 "{\"coeffs\":[0.9,0.9],\"examples\":1,\"base_version\":0}")" = 422 ]'
check "a non-finite scalar is refused" '[ "$(sub 1 "{\"coeffs\":[1e39,0],\"examples\":1,\"base_version\":0}")" = 422 ]'
check "a submission claiming another mechanism is refused (400)" \
  '[ "$(sub 1 "{\"coeffs\":[0.1,0.1],\"examples\":1,\"base_version\":0,\"privacy\":\"off\"}")" = 400 ]'
check "nothing was accepted by those" '[ "$(c "${D[@]}" "$url/v1/tasks/dp/round" | jget "[\"submissions\"]")" = 0 ]'
check "round 1: a bounded submission is accepted (201)" '[ "$(sub 1 "{\"coeffs\":[0.6,0.8],\"examples\":1,\"base_version\":0}")" = 201 ]'
for _ in $(seq 100); do [ "$(c "${D[@]}" "$url/v1/tasks/dp" | jget '["version"]')" = 2 ] && break; sleep 0.05; done
check "round 1 applied (version 2), epsilon reported, budget active" \
  '[ "$(c "${D[@]}" "$url/v1/tasks/dp" | jget "[\"privacy_status\"][\"state\"]")" = active ] && [ "$(c "${D[@]}" "$url/v1/tasks/dp" | jget "[\"version\"]")" = 2 ]'
eps1=$(c "${D[@]}" "$url/v1/tasks/dp" | jget '["privacy_status"]["epsilon_spent"]')
restart
check "after kill -9: one round applied, round 2 open" \
  '[ "$(c "${D[@]}" "$url/v1/tasks/dp" | jget "[\"privacy_status\"][\"rounds_applied\"]")" = 1 ] && [ "$(c "${D[@]}" "$url/v1/tasks/dp/round" | jget "[\"state\"]")" = open ]'
check "round 2: accepted" '[ "$(sub 2 "{\"coeffs\":[0.1,-0.2],\"examples\":1,\"base_version\":2}")" = 201 ]'
for _ in $(seq 100); do [ "$(c "${D[@]}" "$url/v1/tasks/dp" | jget '["version"]')" = 4 ] && break; sleep 0.05; done
status=$(c "${D[@]}" "$url/v1/tasks/dp")
check "round 2 applied and the budget is spent: no round 3" \
  '[ "$(echo "$status" | jget "[\"privacy_status\"][\"state\"]")" = budget_spent ] && [ "$(echo "$status" | jget "[\"round\"]")" = 2 ]'
eps2=$(echo "$status" | jget '["privacy_status"]["epsilon_spent"]')
check "epsilon grew and stays within the target" 'python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); sys.exit(0 if 0 < a < b <= 2.0 else 1)" "$eps1" "$eps2"'
restart
sleep 0.3  # ticks pass: the server must still not open a round
status=$(c "${D[@]}" "$url/v1/tasks/dp")
check "after another kill -9: still spent, still no round 3, the log intact" \
  '[ "$(echo "$status" | jget "[\"privacy_status\"][\"state\"]")" = budget_spent ] && [ "$(echo "$status" | jget "[\"round\"]")" = 2 ] && [ "$(echo "$status" | jget "[\"version\"]")" = 4 ]'
check "a submission to the closed round is 409" '[ "$(sub 2 "{\"coeffs\":[0.1,0.1],\"examples\":1,\"base_version\":2}")" = 409 ]'
check "the server logged why no round opens" 'grep -q "privacy budget is spent" server.log'
check "/metrics reports epsilon spent and no rounds left" \
  'c "$url/metrics" | grep -q "^pocketllm_task_epsilon_spent{task=\"dp\"} " && c "$url/metrics" | grep -q "^pocketllm_task_privacy_rounds_left{task=\"dp\"} 0"'
finish
