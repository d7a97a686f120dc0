#!/usr/bin/env bash
# Distributed simulation throughput: DEVICES simulated devices (stories260K, tau 4, batch 4) for ROUNDS
# rounds against one server on loopback, by 1, 2 and 4 pocketllm-sim worker processes (--device-range);
# simulated device-rounds per second in all and per worker process, and the check that every run wrote
# the same log. Appends a row to bench/results/sim_workers.jsonl.
#   bench/run_sim_workers.sh [BUILD_DIR] [DEVICES] [ROUNDS]
set -euo pipefail
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(realpath "${1:-$root/build}")"; devices="${2:-2000}"; rounds="${3:-2}"
shared="$(realpath "$root/../shared")"
model="$shared/hub/karpathy/tinyllamas/stories260K"
work="$(mktemp -d)"; pid=""
trap '[ -n "$pid" ] && kill -9 $pid 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"
"$root/tests/support/make_test_cert.sh"
echo "bench-admin-token-0123456789abcdef" > admin
"$build/bin/pocketllm-server" --listen 127.0.0.1:0 --port-file port --tls-cert cert.pem --tls-key key.pem --store store.db \
  --admin-token-file admin --device-rate 0 --durability normal 2> server.log &
pid=$!
for _ in $(seq 100); do [ -s port ] && break; sleep 0.05; done
url="https://127.0.0.1:$(cat port)"
tail -n +2 "$shared/data/sst2/glue_sst2_dev.tsv" | cut -f1 > train.txt
common=(--model "$model" --data train.txt --tau 4 --batch-size 4 --lr 1e-3 --max-length 32
        --threads 1 --mode loopback --server "$url" --ca cert.pem --admin-token-file admin --devices "$devices" --rounds "$rounds"
        --seed 5 --min-submissions 1)
rows=()
for w in 1 2 4; do
  per=$(( (devices + w - 1) / w )); start=$(date +%s.%N); ps=()
  for k in $(seq 0 $((w - 1))); do
    a=$((k * per)); b=$(( (k + 1) * per < devices ? (k + 1) * per : devices ))
    "$build/bin/pocketllm-sim" "${common[@]}" --task-id "w$w" --device-range "$a:$b" --out "w$w-$k" > "w$w-$k.out" 2>&1 &
    ps+=($!)
  done
  for p in "${ps[@]}"; do wait "$p"; done
  s=$(python3 -c "import time; print(time.time() - $start)")
  cmp -s "w1-0/log.jsonl" "w$w-0/log.jsonl" || { echo "workers=$w: a different log"; exit 1; }
  echo "workers $w: $s s"
  rows+=("$w:$s")
done
python3 - "$root/bench/results/sim_workers.jsonl" "$devices" "$rounds" "$(lscpu | sed -n 's/^Model name: *//p' | head -1)" "$(nproc)" "${rows[@]}" <<'PY'
import json, sys, time
out, devices, rounds, cpu, cores = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
row = {"date": time.strftime("%Y-%m-%d"), "cpu": cpu, "cores": cores, "devices": devices, "rounds": rounds, "runs": []}
for item in sys.argv[6:]:
    w, s = item.split(":"); w = int(w); s = float(s)
    row["runs"].append({"workers": w, "seconds": round(s, 1), "device_rounds_per_s": round(devices * rounds / s, 1),
                        "per_worker": round(devices * rounds / s / w, 1)})
row["same_log"] = True
print(json.dumps(row, indent=1))
with open(out, "a") as f: f.write(json.dumps(row) + "\n")
PY
