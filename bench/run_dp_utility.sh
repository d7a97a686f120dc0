#!/usr/bin/env bash
# Utility of differential privacy (docs/privacy.md, README "Differential privacy"): pocketllm-sim with
# 1000 devices, sampling rate q = 0.05 (50 devices a round), stories260K, R rounds, on one of
#   lm     the LM personalisation task on SST-2 sentences (20 000 for training spread over the devices,
#          the 872 dev sentences held out); every tensor trainable, lr 3e-4
#   sst2   SST-2 classification (preset sst2: "{text} It was" -> bad/good), 20 000 labelled training
#          sentences over the devices, accuracy on the 872 dev sentences; the norms trainable, lr 5e-3
# Rows: non-private (the same 5 % of devices asked each round) and central DP at epsilon 8, 3 and 1
# (delta 1e-5, the noise multiplier calibrated so that R rounds spend exactly the budget). The clip norm C
# is the median per-device vector norm of the non-private run (read from its store) unless given.
# Prints the table and leaves each run's rounds.csv (loss/accuracy and epsilon per round) and plot.svg.
#   bench/run_dp_utility.sh [ROUNDS] [CLIP_NORM|auto] [OUT_DIR] [lm|sst2]
set -euo pipefail
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${POCKETLLM_BUILD_DIR:-$root/build}"
shared="${POCKETLLM_SHARED:-$root/../shared}"
rounds="${1:-60}"; clip="${2:-auto}"; task="${4:-lm}"; out="${3:-$root/bench/results/dp_utility_$task}"
model="$shared/hub/karpathy/tinyllamas/stories260K"
mkdir -p "$out"
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; task $task, $rounds rounds, clip norm $clip"
if [ "$task" = lm ]; then
  sed -n '2,20001p' "$shared/data/sst2/glue_sst2_train.tsv" | cut -f1 > "$out/train.txt"
  sed -n '2,873p' "$shared/data/sst2/glue_sst2_dev.tsv" | cut -f1 > "$out/heldout.txt"
  task_opts=(--lr 3e-4 --max-length 64)
else
  head -n 20001 "$shared/data/sst2/glue_sst2_train.tsv" > "$out/train.tsv"
  cp "$shared/data/sst2/glue_sst2_dev.tsv" "$out/heldout.tsv"
  task_opts=(--task classify --preset sst2 --labels 0:terrible,1:great --trainable norms --lr 5e-3 --max-length 64)
fi
ext=$([ "$task" = lm ] && echo txt || echo tsv)
common=(--model "$model" --data "$out/train.$ext" --eval-data "$out/heldout.$ext" --devices 1000 --rounds "$rounds"
        --tau 8 --batch-size 8 --seed 0x5eed --partition iid "${task_opts[@]}")
run() {  # name, extra options
  local name="$1"; shift
  "$build/bin/pocketllm-sim" "${common[@]}" "$@" --out "$out/$name" > "$out/$name.log" 2>&1 \
    || { tail -20 "$out/$name.log"; exit 1; }
}
run nonprivate --participation 0.05
if [ "$clip" = auto ]; then  # the median per-device vector norm of the non-private run
  clip=$(python3 - "$out/nonprivate/sim-store.db" <<'PY'
import math, sqlite3, statistics, struct, sys
rows = sqlite3.connect(sys.argv[1]).execute("select coeffs from submissions").fetchall()
print("%.6g" % statistics.median(math.sqrt(sum(x * x for x in struct.unpack("<%df" % (len(c) // 4), c))) for (c,) in rows))
PY
)
  echo "clip norm: $clip (median per-device norm of the non-private run)"
fi
for eps in 8 3 1; do
  run "eps$eps" --dp central --clip-norm "$clip" --sampling-rate 0.05 --target-epsilon "$eps" --delta 1e-5
done
python3 - "$out" "$task" "$clip" <<'PY'
import json, sys, os
out, task, clip = sys.argv[1], sys.argv[2], sys.argv[3]
key = "eval_loss" if task == "lm" else "eval_accuracy"
def load(name):
    s = json.load(open(os.path.join(out, name, "rounds.json")))
    rows = s["rounds"]
    return s[key + "_start"], rows[-1][key], rows[-1].get("epsilon"), s["task"].get("privacy", {}), len(rows)
v0, v1, _, _, r = load("nonprivate")
base = v1 - v0 if task != "lm" else v0 - v1
what = "held-out loss" if task == "lm" else "dev accuracy"
print(f"task {task}, clip norm {clip}")
print(f"| run | rounds | noise multiplier | epsilon spent | {what} start -> end | gain | vs non-private |")
print(f"|---|---|---|---|---|---|---|")
print(f"| non-private (q = 0.05 participation) | {r} | - | - | {v0:.4f} -> {v1:.4f} | {base:.4f} | 100 % |")
for eps in (8, 3, 1):
    a, b, e, p, r = load(f"eps{eps}")
    gain = b - a if task != "lm" else a - b
    print(f"| central DP, target epsilon {eps} | {r} | {p.get('noise_multiplier', float('nan')):.3f} | {e:.3f} | {a:.4f} -> {b:.4f} | {gain:.4f} | {100 * gain / base:.0f} % |")
PY
