#!/usr/bin/env bash
# Three pocketllm-server replicas on one private PostgreSQL 15, behind HAProxy, under load from twelve
# devices (cluster_load.py). During the load: kill -9 the replica that closes rounds, then another one
# (each restarted a few seconds later, as a supervisor would), then restart PostgreSQL. Checked: no
# acknowledged submission or applied round is lost, every log prefix a device read is a prefix of the
# final log, rounds keep closing after every fault, and every replica is alive at the end.
#   test_cluster.sh SERVER_BIN [DURATION_S]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
server="$(realpath "$1")"; duration="${2:-26}"
pgsh="$here/../support/postgres.sh"
command -v haproxy >/dev/null || { echo "test_cluster: haproxy is not installed (scripts/setup.sh installs it)" >&2; exit 77; }
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  "$pgsh" stop "$work/pg"
  if [ -n "${KEEP_WORK:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
cd "$work"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
admin_url=$("$pgsh" start "$work/pg") || exit $?
psql -X -q "$admin_url" -c "CREATE DATABASE pllm" >/dev/null
pg_url="${admin_url%/*}/pllm"
echo "cluster-admin-token-0123456789abcdef" > admin

declare -A port pid
start_replica() {
  local i=$1
  "$server" --listen "127.0.0.1:${port[$i]}" --insecure --store "$pg_url" --admin-token-file admin --device-rate 0 \
    --threads 2 2>>"r$i.log" &
  pid[$i]=$!
  pids+=("${pid[$i]}")
}
for i in 1 2 3; do port[$i]=$(free_port); start_replica "$i"; done
lb_port=$(free_port)
cat > haproxy.cfg <<CFG
global
  maxconn 2000
defaults
  mode http
  timeout connect 1s
  timeout client 10s
  timeout server 10s
  retries 3
  option redispatch
  retry-on conn-failure empty-response response-timeout 503
  option http-buffer-request
frontend devices
  bind 127.0.0.1:$lb_port
  default_backend replicas
backend replicas
  balance roundrobin
  option httpchk GET /healthz
  default-server inter 200ms fall 2 rise 1
  server r1 127.0.0.1:${port[1]} check
  server r2 127.0.0.1:${port[2]} check
  server r3 127.0.0.1:${port[3]} check
CFG
haproxy -f haproxy.cfg -db 2> haproxy.log &
pids+=($!)
url="http://127.0.0.1:$lb_port"
for _ in $(seq 100); do curl -sf "$url/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "$url/healthz" >/dev/null || { echo "no replica became healthy behind HAProxy"; tail -n 5 r*.log haproxy.log; exit 1; }
model=$(printf 'e%.0s' $(seq 64))
curl -sS --fail-with-body -H "Authorization: Bearer $(cat admin)" -X POST "$url/v1/admin/tasks" \
  -d '{"id":"cluster","base_model_id":"'"$model"'","tau":4,"round_seconds":3,"min_submissions":3,"goal_submissions":6}' >/dev/null

python3 "$here/cluster_load.py" "$url" "$(cat admin)" "$pg_url" 12 "$duration" result.json > load.out 2>&1 &
load=$!
leader() {  # the replica whose last leadership line says it leads
  for i in 1 2 3; do
    if [ "$(grep -E 'leading:|following:' "r$i.log" | tail -1 | grep -c 'leading:')" = 1 ]; then echo "$i"; return; fi
  done
}
t0=$(date +%s.%N)
at() { python3 -c "import time; time.sleep(max(0, $t0 + $1 - time.time()))"; }
stamp() { python3 -c "print(round($(date +%s.%N) - $t0, 2))"; }
at 5; l=$(leader); [ -n "$l" ] || { echo "no replica leads"; cat r*.log; exit 1; }
kill -9 "${pid[$l]}"; echo "$(stamp) s: kill -9 replica $l (the leader)"; fault1=$(date +%s.%N)
at 8; start_replica "$l"; echo "$(stamp) s: replica $l restarted"
at 10; o=$(( l % 3 + 1 )); [ "$(leader)" = "$o" ] && o=$(( o % 3 + 1 ))
kill -9 "${pid[$o]}"; echo "$(stamp) s: kill -9 replica $o (leader now: $(leader))"
at 13; start_replica "$o"; echo "$(stamp) s: replica $o restarted"
at 15; "$pgsh" restart "$work/pg"; echo "$(stamp) s: PostgreSQL restarted"; last_fault=$(date +%s.%N)
status=0
wait "$load" || status=$?
cat load.out
for i in 1 2 3; do kill -0 "${pid[$i]}" 2>/dev/null || { echo "replica $i died"; tail -20 "r$i.log"; status=1; }; done
python3 - "$last_fault" "$fault1" <<'PY' || status=1
import json, sys
r = json.load(open("result.json"))
last_fault, fault1 = float(sys.argv[1]), float(sys.argv[2])
after = [v for t, v in r["version_times"] if r["start"] + t > last_fault + 1]
before = [v for t, v in r["version_times"] if r["start"] + t <= last_fault]
print(f"versions seen after the PostgreSQL restart: {after[:3]}... (before: up to {max(before or [0])})")
assert after and max(after) > max(before or [0]), "no round applied after the last fault"
assert r["applied_rounds"] >= 6, "too few rounds applied"
vt = r["version_times"]
pauses = sorted(((b[0] - a[0], a[0]) for a, b in zip(vt, vt[1:])), reverse=True)[:3]
print("longest pauses between version increases any device saw (s, starting at s): " + ", ".join(f"{p:.2f} at {t:.2f}" for p, t in pauses))
print(f"faults at (s since the load started): leader killed {fault1 - r['start']:.2f}, PostgreSQL restarted {last_fault - r['start']:.2f}")
assert r["longest_pause_s"] <= 3.0, "a pause longer than one round's deadline (3 s)"
PY
grep -h "leading\|following" r*.log | sort | uniq -c | head
[ "$status" = 0 ] && echo "cluster: passed"
exit "$status"
