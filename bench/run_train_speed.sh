#!/usr/bin/env bash
# Training speed of the README's SST-2 run (stories260K, the 11 norm vectors, balanced batches of 16, k = 512,
# one thread): steps per second over STEPS steps (wall time of the whole command, model load included),
# median of REPS. With --baseline BIN (a `pocketllm` built from another commit) both run alternately in the
# same session and the ratio is reported: this machine is shared and noisy, so only same-run ratios count.
#   bench/run_train_speed.sh [--steps 1500] [--reps 3] [--baseline /path/to/old/pocketllm]
# Results: stdout and $OUT (default bench/results/train_speed.jsonl).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${POCKETLLM_BUILD_DIR:-$root/build}/bin/pocketllm"
shared="${POCKETLLM_SHARED:-$root/../shared}"
out="${OUT:-$root/bench/results/train_speed.jsonl}"
steps=1500; reps=3; baseline=""
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    --baseline) baseline="$2"; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "run_train_speed: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -x "$bin" ] || { echo "run_train_speed: $bin not built (scripts/build.sh)" >&2; exit 1; }
[ -z "$baseline" ] || [ -x "$baseline" ] || { echo "run_train_speed: baseline $baseline is not an executable" >&2; exit 1; }
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
cpu="$("$root/bench/cpu_name.sh")"

one_run() {  # BIN -> steps/s
  local s e
  s=$(date +%s.%N)
  "$1" finetune --model "$shared/hub/karpathy/tinyllamas/stories260K" --data "$shared/data/sst2/glue_sst2_train.tsv" \
    --task classify --template "{text} It was" --labels "0:bad,1:good" --k-shot 512 --data-seed 1 --balanced \
    --trainable norms --batch-size 16 --lr 5e-3 --schedule cosine --steps "$steps" --seed 0 --threads 1 \
    --out "$work/run" > "$work/log" 2>&1 || { tail -5 "$work/log" >&2; exit 1; }
  e=$(date +%s.%N)
  rm -rf "$work/run"
  python3 -c "print(f'{$steps / ($e - $s):.2f}')"
}

current=(); base=()
for ((r = 0; r < reps; r++)); do
  [ -z "$baseline" ] || base+=("$(one_run "$baseline")")
  current+=("$(one_run "$bin")")
done
mkdir -p "$(dirname "$out")"
python3 - "$out" "$cpu" "$steps" "${current[*]}" "${base[*]:-}" <<'EOF'
import json, statistics, sys
out, cpu, steps, cur, base = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].split(), sys.argv[5].split()
row = {"bench": "train_speed", "task": "sst2 norms batch 16", "steps": steps, "cpu": cpu,
       "steps_per_s": statistics.median(map(float, cur)), "runs": [float(x) for x in cur]}
if base:
    row["baseline_steps_per_s"] = statistics.median(map(float, base))
    row["baseline_runs"] = [float(x) for x in base]
    row["ratio"] = round(row["steps_per_s"] / row["baseline_steps_per_s"], 2)
print(json.dumps(row))
with open(out, "a") as f:
    f.write(json.dumps(row) + "\n")
EOF
