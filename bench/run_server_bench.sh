#!/usr/bin/env bash
# Load benchmark of pocketllm-server on loopback: TLS, keep-alive, 64 concurrent devices (wrk
# connections), every request a new accepted submission; next to the floor measured in the same run,
# the same server answering /healthz. Repeated REPS times; medians are reported and appended to
# bench/results/server_bench.jsonl.
#   bench/run_server_bench.sh [BUILD_DIR] [REPS] [DURATION_S]
set -euo pipefail
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"; reps="${2:-3}"; duration="${3:-8}"
build="$(realpath "$build")"; server_bin="$build/bin/pocketllm-server"
[ -x "$server_bin" ] || { echo "build first: scripts/build.sh ($server_bin missing)" >&2; exit 1; }
if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" -eq 0 ]; then sudo_cmd=(); else sudo_cmd=(sudo); fi
  "${sudo_cmd[@]}" apt-get install -y -qq wrk
fi
work="$(mktemp -d)"; pid=""
trap '[ -n "$pid" ] && kill -9 $pid 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=IP:127.0.0.1 -keyout key.pem -out cert.pem >/dev/null 2>&1
token="bench-admin-token-0123456789abcdef"; echo "$token" > admin
conns=64; threads=2; tasks=400; tau=8
devices=640  # 10 per connection: 640 x 400 = 256 000 distinct (device, task) submissions per rep
durability="${DURABILITY:-full}"
"$server_bin" --listen 127.0.0.1:0 --port-file port --tls-cert cert.pem --tls-key key.pem --store store.db \
  --admin-token-file admin --device-rate 0 --threads 2 --durability "$durability" 2> server.log &
pid=$!
for _ in $(seq 100); do [ -s port ] && break; sleep 0.05; done
url="https://127.0.0.1:$(cat port)"
c() { curl -sS -k "$@"; }
model=$(printf 'e%.0s' $(seq 64))
for t in $(seq 0 $((tasks - 1))); do
  c -H "Authorization: Bearer $token" -X POST "$url/v1/admin/tasks" \
    -d '{"id":"b'$t'","base_model_id":"'$model'","tau":'$tau',"round_seconds":86400,"min_submissions":1}' > /dev/null
done
et=$(c -H "Authorization: Bearer $token" -X POST "$url/v1/admin/enrolment-tokens" -d '{"uses":'$devices'}' | python3 -c 'import json,sys;print(json.load(sys.stdin)["token"])')
for _ in $(seq $devices); do
  c -X POST "$url/v1/enrol" -d '{"token":"'$et'"}' | sed -n 's/.*"credential":"\([^"]*\)".*/\1/p'
done > devices.txt
export BENCH_DEVICES="$work/devices.txt" BENCH_TASKS=$tasks BENCH_TAU=$tau BENCH_THREADS=$threads
results=()
for r in $(seq "$reps"); do
  floor=$(wrk -t$threads -c$conns -d${duration}s -s "$root/bench/server/healthz.lua" "$url/healthz" | grep RESULT)
  # Each rep submits to a fresh slice of rounds: shift the tasks by rotating the device list.
  submit=$(wrk -t$threads -c$conns -d${duration}s -s "$root/bench/server/submit.lua" "$url" | grep RESULT)
  echo "rep $r floor : $floor"
  echo "rep $r submit: $submit"
  results+=("$floor|$submit")
  # New devices for the next rep so every submission is fresh again.
  et=$(c -H "Authorization: Bearer $token" -X POST "$url/v1/admin/enrolment-tokens" -d '{"uses":'$devices'}' | python3 -c 'import json,sys;print(json.load(sys.stdin)["token"])')
  for _ in $(seq $devices); do
    c -X POST "$url/v1/enrol" -d '{"token":"'$et'"}' | sed -n 's/.*"credential":"\([^"]*\)".*/\1/p'
  done > devices.txt
done
kill -TERM $pid; wait $pid || true; pid=""
printf '%s\n' "${results[@]}" > results.txt
python3 - "$root/bench/results/server_bench.jsonl" "$durability" "$duration" results.txt <<'PY'
import json, re, statistics, sys, time, platform
out, durability, duration, results = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
def parse(s):
    return {k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)", s)}
floors, subs = [], []
for line in open(results):
    f, s = line.strip().split("|")
    floors.append(parse(f)); subs.append(parse(s))
med = lambda xs: statistics.median(xs)
row = {
    "date": time.strftime("%Y-%m-%d"), "host": platform.node(), "durability": durability, "connections": 64,
    "reps": len(subs), "duration_s": duration,
    "healthz_rps": med([f["accepted"] / f["seconds"] for f in floors]),
    "healthz_p50_ms": med([f["p50_ms"] for f in floors]), "healthz_p99_ms": med([f["p99_ms"] for f in floors]),
    "accepted_per_s": med([s["accepted"] / s["seconds"] for s in subs]),
    "submit_other": sum(s["other"] for s in subs),
    "submit_p50_ms": med([s["p50_ms"] for s in subs]), "submit_p99_ms": med([s["p99_ms"] for s in subs]),
}
row["accepted_vs_floor"] = row["accepted_per_s"] / row["healthz_rps"]
print(json.dumps(row, indent=1))
with open(out, "a") as f: f.write(json.dumps(row) + "\n")
PY
