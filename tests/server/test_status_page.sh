#!/usr/bin/env bash
# The status page in headless Chromium: a server with a private task and a plain one, three devices
# (curl) taking rounds with reported losses, one round abandoned, a late submission; the page, signed in
# through the URL fragment, must show both tasks, their rounds with submissions, dropouts and late
# counts, the loss curve, ε spent and the device count — read from the DOM Chromium rendered — and a
# screenshot is taken. Without the token the page shows the sign-in form and no data.
#   test_status_page.sh SERVER_BIN [SCREENSHOT_OUT]
source "$(dirname "$0")/../support/test_lib.sh"
server="$(realpath "$1")"; shot_out="${2:-}"
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "test_status_page: chromium is not installed (scripts/setup.sh installs it)"; exit 77; }
cd "$work"
make_test_cert
echo "status-page-test-token-0123456789abcdef" > admin
"$server" --listen 127.0.0.1:0 --port-file port --tls-cert cert.pem --tls-key key.pem --store store.db --admin-token-file admin 2> server.log &
pid=$!
wait_for_port "$pid" server.log
url="https://127.0.0.1:$(cat port)"
A=(-H "Authorization: Bearer $(cat admin)")
c() { curl -sS --cacert cert.pem "$@"; }
model=$(printf 'e%.0s' $(seq 64))
c "${A[@]}" -X POST "$url/v1/admin/tasks" -d '{"id":"plain-task","base_model_id":"'"$model"'","tau":2,"round_seconds":3600,"min_submissions":2,"max_extensions":0}' > /dev/null
c "${A[@]}" -X POST "$url/v1/admin/tasks" -d '{"id":"private-task","base_model_id":"'"$model"'","tau":2,"round_seconds":3600,"min_submissions":1,
  "privacy":{"mode":"central","clip_norm":1.0,"noise_multiplier":1.0,"sampling_rate":1.0,"target_epsilon":10,"delta":1e-5,"expected_participants":3}}' > /dev/null
tok=$(c "${A[@]}" -X POST "$url/v1/admin/enrolment-tokens" -d '{"uses":3}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
creds=(); for _ in 1 2 3; do creds+=("$(c -X POST "$url/v1/enrol" -d '{"token":"'"$tok"'"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["credential"])')"); done
submit() {  # submit CRED TASK ROUND BASE LOSS
  c -H "Authorization: Bearer $1" -X POST "$url/v1/tasks/$2/rounds/$3/submissions" -d '{"coeffs":[0.01,-0.02],"examples":4,"base_version":'"$4"',"loss":{"mean":'"$5"'}}' > /dev/null
}
# plain-task: rounds 1-3 applied with falling losses (device 3 fetches each round and never submits: a
# dropout), round 4 abandoned with one submission, then a late submission to round 4.
base=0
for r in 1 2 3; do
  for i in 0 1 2; do c -H "Authorization: Bearer ${creds[$i]}" "$url/v1/tasks/plain-task/round" > /dev/null; done
  submit "${creds[0]}" plain-task $r $base "$(python3 -c "print(3.0 - 0.4 * $r)")"
  submit "${creds[1]}" plain-task $r $base "$(python3 -c "print(3.2 - 0.4 * $r)")"
  c "${A[@]}" -X POST "$url/v1/admin/tasks/plain-task/rounds/$r/close" > /dev/null
  base=$((base + 2))
done
submit "${creds[0]}" plain-task 4 $base 1.5
c "${A[@]}" -X POST "$url/v1/admin/tasks/plain-task/rounds/4/close" > /dev/null
submit "${creds[1]}" plain-task 4 $base 1.4
# private-task: one applied round (the device clips to the norm; no loss is sent under DP).
c -H "Authorization: Bearer ${creds[0]}" -X POST "$url/v1/tasks/private-task/rounds/1/submissions" -d '{"coeffs":[0.1,0.1],"examples":4,"base_version":0}' > /dev/null
c "${A[@]}" -X POST "$url/v1/admin/tasks/private-task/rounds/1/close" > /dev/null
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking --disable-component-update
       --disable-sync --disable-dev-shm-usage --ignore-certificate-errors --window-size=1200,1100 --virtual-time-budget=8000)
"$browser" "${flags[@]}" --user-data-dir="$work/profile1" --dump-dom "$url/ui#token=$(cat admin)" > dom.html 2> chrome1.log
"$browser" "${flags[@]}" --user-data-dir="$work/profile2" --screenshot="$work/status.png" "$url/ui#token=$(cat admin)" > /dev/null 2> chrome2.log
"$browser" "${flags[@]}" --user-data-dir="$work/profile3" --dump-dom "$url/ui" > signed_out.html 2> chrome3.log
check "the page rendered both tasks" 'grep -q "id=\"task-plain-task\"" dom.html && grep -q "id=\"task-private-task\"" dom.html'
check "plain-task shows four rounds, three applied and one abandoned" '[ "$(python3 - <<PY
import re
html = open("dom.html").read()
card = html[html.index("id=\"task-plain-task\""):html.index("id=\"task-private-task\"")] if html.index("id=\"task-plain-task\"") < html.index("id=\"task-private-task\"") else html[html.index("id=\"task-plain-task\""):]
rows = re.findall(r"<tr class=\"round\"><td>(\d+)</td><td class=\"(\w+)\">\w+</td><td>(\d+)</td><td>([^<]*)</td><td>(\d+)</td><td>([^<]*)</td></tr>", card)
print(sorted((int(r[0]), r[1], int(r[2]), r[3], int(r[4])) for r in rows if int(r[0]) <= 4))
PY
)" = "[(1, '"'"'applied'"'"', 2, '"'"'1'"'"', 0), (2, '"'"'applied'"'"', 2, '"'"'1'"'"', 0), (3, '"'"'applied'"'"', 2, '"'"'1'"'"', 0), (4, '"'"'abandoned'"'"', 1, '"'"'0'"'"', 1)]" ]'
check "the loss curve is drawn (an SVG polyline over the rounds with losses)" 'grep -q "<svg class=\"loss\"" dom.html && grep -Eq "<polyline[^>]*points=\"[0-9., ]+\"" dom.html'
check "mean losses are shown (round 1: (2.6 + 2.8) / 2 = 2.7)" 'grep -q "<td>2.7000</td>" dom.html'
check "epsilon spent is shown for the private task" 'grep -Eq "class=\"epsilon\">[0-9]+\.[0-9]{3}<" dom.html'
check "three active devices" 'grep -q "id=\"devices-active\">3<" dom.html'
check "a screenshot was taken (PNG, 1200 wide)" 'python3 -c "import struct,sys; d=open(\"status.png\",\"rb\").read(); sys.exit(0 if d[:8]==b\"\\x89PNG\\r\\n\\x1a\\n\" and struct.unpack(\">I\", d[16:20])[0]==1200 and len(d)>20000 else 1)"'
check "without the token: the sign-in form and no task data" 'grep -q "sign in with the admin token" signed_out.html && ! grep -q "task-plain-task" signed_out.html'
check "status.json refuses a device credential" '[ "$(c -o /dev/null -w "%{http_code}" -H "Authorization: Bearer ${creds[0]}" "$url/ui/status.json")" = 403 ]'
check "the page carries a strict Content-Security-Policy" 'c -D - -o /dev/null "$url/ui" | grep -qi "content-security-policy: default-src .none."'
[ -n "$shot_out" ] && cp status.png "$shot_out"
[ $fails -eq 0 ] || { tail -5 chrome1.log; head -c 3000 dom.html; tail -20 server.log; }
finish
