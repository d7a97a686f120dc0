#!/usr/bin/env bash
# Replicas on PostgreSQL against one server on SQLite, same machine, same run, same load generator:
# accepted durable submissions/s and p99 (wrk, 64 TLS keep-alive connections, every request a new
# submission, as bench/run_server_bench.sh) for SQLite on one server, then 1, 2 and 3 replicas on one
# private PostgreSQL 15 behind HAProxy (TCP mode, TLS to the replicas), then 1, 2 and 3 replicas sharing
# one port with --reuse-port (the kernel spreads connections; no balancer process); then the close
# latency of a round of DEVICES submissions on SQLite and on the 3-replica cluster. Both stores fsync
# every commit. Everything shares this machine's cores: n replicas get max(1, 2/n) network threads each.
# Medians over REPS; one row appended to bench/results/cluster_bench.jsonl.
#   bench/run_cluster_bench.sh [BUILD_DIR] [REPS] [DURATION_S] [DEVICES]
set -euo pipefail
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(realpath "${1:-$root/build}")"; reps="${2:-3}"; duration="${3:-8}"; close_devices="${4:-10000}"
server_bin="$build/bin/pocketllm-server"
[ -x "$server_bin" ] || { echo "build first: scripts/build.sh ($server_bin missing)" >&2; exit 1; }
if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" -eq 0 ]; then sudo_cmd=(); else sudo_cmd=(sudo); fi
  "${sudo_cmd[@]}" apt-get install -y -qq wrk
fi
command -v haproxy >/dev/null || { echo "haproxy missing: scripts/setup.sh installs it" >&2; exit 1; }
work="$(mktemp -d)"; pids=()
pgsh="$root/tests/support/postgres.sh"
stop_all() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; pids=(); }
trap 'stop_all; "$pgsh" stop "$work/pg"; rm -rf "$work"' EXIT
cd "$work"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=IP:127.0.0.1 -keyout key.pem -out cert.pem >/dev/null 2>&1
token="bench-admin-token-0123456789abcdef"; echo "$token" > admin
conns=64; threads=2; tasks=400; tau=8; devices=640
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
admin_url=$("$pgsh" start "$work/pg")
c() { curl -sS -k "$@"; }
serve() {  # serve STORE PORT LOG [THREADS [FLAGS...]]
  local store=$1 port=$2 log=$3 n=${4:-2}; shift 3; shift || true
  "$server_bin" --listen "127.0.0.1:$port" --tls-cert cert.pem --tls-key key.pem --store "$store" --admin-token-file admin \
    --device-rate 0 --threads "$n" --durability full "$@" 2>>"$log" &
  pids+=($!)
}
balance() {  # balance LB_PORT PORT...
  local lb=$1; shift
  { printf 'global\n  maxconn 4000\ndefaults\n  mode tcp\n  timeout connect 1s\n  timeout client 30s\n  timeout server 30s\n'
    printf 'frontend f\n  bind 127.0.0.1:%s\n  default_backend b\nbackend b\n  balance roundrobin\n' "$lb"
    local i=0; for p in "$@"; do i=$((i+1)); printf '  server r%s 127.0.0.1:%s check inter 500ms\n' $i "$p"; done; } > haproxy.cfg
  haproxy -f haproxy.cfg -db 2>>haproxy.log &
  pids+=($!)
}
wait_up() { for _ in $(seq 200); do c "$1/healthz" >/dev/null 2>&1 && return; sleep 0.05; done; echo "not up: $1" >&2; exit 1; }
prepare() {  # tasks and devices through URL
  local url=$1 et
  for t in $(seq 0 $((tasks - 1))); do
    c -H "Authorization: Bearer $token" -X POST "$url/v1/admin/tasks" \
      -d '{"id":"b'$t'","base_model_id":"'"$(printf 'e%.0s' $(seq 64))"'","tau":'$tau',"round_seconds":86400,"min_submissions":1}' > /dev/null
  done
}
fresh_devices() {
  local url=$1 et
  et=$(c -H "Authorization: Bearer $token" -X POST "$url/v1/admin/enrolment-tokens" -d '{"uses":'$devices'}' | python3 -c 'import json,sys;print(json.load(sys.stdin)["token"])')
  for _ in $(seq $devices); do c -X POST "$url/v1/enrol" -d '{"token":"'$et'"}' | sed -n 's/.*"credential":"\([^"]*\)".*/\1/p'; done > devices.txt
}
export BENCH_DEVICES="$work/devices.txt" BENCH_TASKS=$tasks BENCH_TAU=$tau BENCH_THREADS=$threads
cpu_by_process() {  # CPU seconds (user + system) so far of every process, summed by command name
  python3 -c '
import collections, os
t = collections.Counter()
for p in filter(str.isdigit, os.listdir("/proc")):
    try: s = open(f"/proc/{p}/stat").read()
    except OSError: continue
    name = s[s.index("(") + 1:s.rindex(")")].split("/")[0].split("-")[0].replace(" ", "_") or "?"
    f = s[s.rindex(")") + 2:].split()
    t[name] += (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
for k, v in t.items(): print(k, v)'
}
measure() {  # measure NAME URL: REPS wrk runs, each with fresh devices
  local name=$1 url=$2
  prepare "$url"
  for r in $(seq "$reps"); do
    fresh_devices "$url"
    sleep 0.5  # replicas see the new devices through the store on their first request anyway
    if [ -n "${PROFILE:-}" ]; then (sleep 1; top -b -n 2 -d 3 | awk '/^top -/{n++} n==2' | sed -n '7,16p' > "top.$r.txt") & top_pid=$!; fi
    cpu_by_process > cpu0.txt
    line=$(wrk -t$threads -c$conns -d${duration}s -s "$root/bench/server/submit.lua" "$url" | grep RESULT)
    cpu_by_process > cpu1.txt
    # CPU µs per accepted submission of each process kind (wrk included): where the cores went.
    line="$line $(python3 - "$line" cpu0.txt cpu1.txt <<'PY'
import re, sys
accepted = float(re.search(r"accepted=(\d+)", sys.argv[1]).group(1))
a, b = ({k: float(v) for k, v in (l.split() for l in open(f))} for f in sys.argv[2:4])
print(" ".join(f"cpu_us_{k}={(b[k] - a.get(k, 0)) * 1e6 / max(accepted, 1):.1f}" for k in sorted(b) if b[k] - a.get(k, 0) > 0.05))
PY
)"
    echo "$name rep $r: $line"; echo "$name|$line" >> results.txt
    if [ -n "${PROFILE:-}" ]; then wait "$top_pid"; cat "top.$r.txt"; fi
  done
}
# 1. One server on SQLite.
p=$(free_port); serve "$work/sqlite.db" "$p" sqlite.log; wait_up "https://127.0.0.1:$p"
measure sqlite "https://127.0.0.1:$p"
python3 "$root/bench/server/close_latency.py" "https://127.0.0.1:$p" "$token" close "$close_devices" | sed 's/^/sqlite close|/' >> close.txt
stop_all
# 2. 1, 2, 3 replicas on PostgreSQL behind HAProxy.
for n in 1 2 3; do
  psql -X -q "$admin_url" -c "CREATE DATABASE pllm$n" >/dev/null
  t=$(( 2 / n > 1 ? 2 / n : 1 ))
  ports=(); for i in $(seq $n); do ports+=("$(free_port)"); serve "${admin_url%/*}/pllm$n" "${ports[-1]}" "pg$n.log" "$t"; done
  for q in "${ports[@]}"; do wait_up "https://127.0.0.1:$q"; done
  lb=$(free_port); balance "$lb" "${ports[@]}"; wait_up "https://127.0.0.1:$lb"
  measure "postgresql x$n" "https://127.0.0.1:$lb"
  if [ "$n" = 3 ]; then
    python3 "$root/bench/server/close_latency.py" "https://127.0.0.1:$lb" "$token" close "$close_devices" | sed 's/^/postgresql x3 close|/' >> close.txt
  fi
  stop_all
done
# 3. 1, 2, 3 replicas on PostgreSQL sharing one port (--reuse-port), no balancer.
for n in 1 2 3; do
  psql -X -q "$admin_url" -c "CREATE DATABASE rp$n" >/dev/null
  t=$(( 2 / n > 1 ? 2 / n : 1 ))
  p=$(free_port)
  for i in $(seq $n); do serve "${admin_url%/*}/rp$n" "$p" "rp$n.log" "$t" --reuse-port; wait_up "https://127.0.0.1:$p"; done
  sleep 0.5
  measure "postgresql x$n reuse-port" "https://127.0.0.1:$p"
  stop_all
done
cat close.txt
python3 - "$root/bench/results/cluster_bench.jsonl" "$duration" results.txt close.txt "$(lscpu | sed -n 's/^Model name: *//p' | head -1)" <<'PY'
import json, re, statistics, sys, time
out, duration, results, close, cpu = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
runs = {}
for line in open(results):
    name, rest = line.strip().split("|")
    v = {k: float(x) for k, x in re.findall(r"(\w+)=([\d.]+)", rest)}
    runs.setdefault(name, []).append(v)
row = {"date": time.strftime("%Y-%m-%d"), "cpu": cpu, "connections": 64, "duration_s": duration, "configs": {}}
for name, vs in runs.items():
    row["configs"][name] = {"reps": len(vs), "accepted_per_s": round(statistics.median([v["accepted"] / v["seconds"] for v in vs])),
                            "p50_ms": statistics.median([v["p50_ms"] for v in vs]), "p99_ms": statistics.median([v["p99_ms"] for v in vs]),
                            "other": sum(v["other"] for v in vs)}
    cpu = {k[len("cpu_us_"):]: round(statistics.median([v.get(k, 0) for v in vs]), 1) for k in vs[0] if k.startswith("cpu_us_")}
    row["configs"][name]["cpu_us_per_submission"] = {k: x for k, x in cpu.items() if x >= 1.0}
base = row["configs"]["sqlite"]["accepted_per_s"]
for name, c in row["configs"].items(): c["vs_sqlite"] = round(c["accepted_per_s"] / base, 3)
for line in open(close):
    name, rest = line.strip().split("|")
    row.setdefault("close", {})[name.replace(" close", "")] = json.loads(rest)
print(json.dumps(row, indent=1))
with open(out, "a") as f: f.write(json.dumps(row) + "\n")
PY
