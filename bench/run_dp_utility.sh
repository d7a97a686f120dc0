#!/usr/bin/env bash
# Utility of differential privacy (docs/privacy.md, README "Differential privacy"): pocketllm-sim with
# 1000 devices, sampling rate q = 0.05 (50 devices a round), the LM personalisation task on SST-2
# sentences (20 000 for training spread over the devices, the 872 dev sentences held out), stories260K,
# R rounds. Rows: non-private (the same 5 % of devices asked each round) and central DP at epsilon 8, 3
# and 1 (delta 1e-5, clip norm C, the noise multiplier calibrated so that R rounds spend exactly the
# budget). Prints the table (final held-out loss, improvement, its ratio to the non-private one, the
# noise multiplier) and leaves each run's rounds.csv (loss and epsilon per round) and plot.svg.
#   bench/run_dp_utility.sh [ROUNDS] [CLIP_NORM] [OUT_DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${POCKETLLM_BUILD_DIR:-$root/build}"
shared="${POCKETLLM_SHARED:-$root/../shared}"
rounds="${1:-60}"; clip="${2:-0.006}"; out="${3:-$root/bench/results/dp_utility}"
model="$shared/hub/karpathy/tinyllamas/stories260K"
mkdir -p "$out"
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; $rounds rounds, clip norm $clip"
sed -n '2,20001p' "$shared/data/sst2/glue_sst2_train.tsv" | cut -f1 > "$out/train.txt"
sed -n '2,873p' "$shared/data/sst2/glue_sst2_dev.tsv" | cut -f1 > "$out/heldout.txt"
common=(--model "$model" --data "$out/train.txt" --eval-data "$out/heldout.txt" --devices 1000 --rounds "$rounds"
        --tau 8 --batch-size 8 --lr 3e-4 --max-length 64 --seed 0x5eed --partition iid)
run() {  # name, extra options
  local name="$1"; shift
  "$build/bin/pocketllm-sim" "${common[@]}" "$@" --out "$out/$name" > "$out/$name.log" 2>&1 \
    || { tail -20 "$out/$name.log"; exit 1; }
}
run nonprivate --participation 0.05
for eps in 8 3 1; do
  run "eps$eps" --dp central --clip-norm "$clip" --sampling-rate 0.05 --target-epsilon "$eps" --delta 1e-5
done
python3 - "$out" <<'PY'
import json, sys, os
out = sys.argv[1]
def load(name):
    s = json.load(open(os.path.join(out, name, "rounds.json")))
    return s["eval_loss_start"], s["rounds"][-1]["eval_loss"], s["rounds"][-1].get("epsilon"), s["task"].get("privacy", {}), len(s["rounds"])
l0, l1, _, _, r = load("nonprivate")
base = l0 - l1
print(f"| run | rounds | noise multiplier | epsilon spent | held-out loss start -> end | improvement | vs non-private |")
print(f"|---|---|---|---|---|---|---|")
print(f"| non-private (q = 0.05 participation) | {r} | - | - | {l0:.4f} -> {l1:.4f} | {base:.4f} | 100 % |")
for eps in (8, 3, 1):
    a, b, e, p, r = load(f"eps{eps}")
    print(f"| central DP, target epsilon {eps} | {r} | {p.get('noise_multiplier', float('nan')):.3f} | {e:.3f} | {a:.4f} -> {b:.4f} | {a - b:.4f} | {100 * (a - b) / base:.0f} % |")
PY
