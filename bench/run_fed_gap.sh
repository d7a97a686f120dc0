#!/usr/bin/env bash
# Federated vs centralised at the same forward passes (issue 18, point 6). One device trains alone for N
# steps; pocketllm-sim runs 100 devices whose rounds add up to the same N device-steps (asked devices ×
# tau), once with every device on the round's seeds (seed_groups 1) and once with disjoint seeds per
# device group (seed_groups G, docs/protocol.md section 5). Reported: held-out loss and accuracy before
# and after, and each federated gain as a share of the single device's gain at the same lr.
#   LM:    the demo's task (700 SST-2 sentences as text, 172 held out), LoRA r 8 on every linear layer,
#          batch 8, 800 device-steps (single: 800 steps; sim: 5 % of 100 devices x 20 rounds x tau 8).
#   SST-2: 512 sentences per class (the first of each label in the GLUE train file), the 872 dev sentences,
#          --preset sst2 with its first label words (terrible / great), the 11 norm vectors, batch 16, 4 000 device-steps (sim: 10 % x 50 rounds x tau 8),
#          IID and Dirichlet(0.3) label skew.
#   bench/run_fed_gap.sh [--groups "1 256"] [--seeds "0 1 2"] [--lm-lrs "5e-4 1e-3"] [--sst2-lrs "5e-3 1e-2"]
#                        [--only lm|sst2] [--work DIR]          results: bench/results/fed_gap.jsonl
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${POCKETLLM_BUILD_DIR:-$root/build}"
shared="${POCKETLLM_SHARED:-$root/../shared}"
model="$shared/hub/karpathy/tinyllamas/stories260K"
dev="$shared/data/sst2/glue_sst2_dev.tsv"
train="$shared/data/sst2/glue_sst2_train.tsv"
groups="1 256"; seeds="0 1 2"; lm_lrs="5e-4 1e-3"; sst2_lrs="5e-3 1e-2"; only=""; work="$root/build/fed_gap"
results="${OUT:-$root/bench/results/fed_gap.jsonl}"
while [ $# -gt 0 ]; do
  case "$1" in
    --groups) groups="$2"; shift 2 ;;
    --seeds) seeds="$2"; shift 2 ;;
    --lm-lrs) lm_lrs="$2"; shift 2 ;;
    --sst2-lrs) sst2_lrs="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "run_fed_gap: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
for f in "$build/bin/pocketllm" "$build/bin/pocketllm-sim" "$model/stories260K.bin" "$dev" "$train"; do
  [ -e "$f" ] || { echo "run_fed_gap: missing $f (build first; POCKETLLM_SHARED points at the shared data)" >&2; exit 1; }
done
rm -rf "$work"; mkdir -p "$work" "$(dirname "$results")"
sed -n '2,701p' "$dev" | cut -f1 > "$work/lm_train.txt"
sed -n '702,873p' "$dev" | cut -f1 > "$work/lm_heldout.txt"
awk -F'\t' 'NR == 1 { print; next } $2 == 0 && n0 < 512 { print; n0++ }' "$train" > "$work/sst2_train.tsv"
awk -F'\t' 'NR > 1 && $2 == 1 && n1 < 512 { print; n1++ }' "$train" >> "$work/sst2_train.tsv"
cpu="$("$root/bench/cpu_name.sh")"
commit="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"

lm_common=(--model "$model" --task lm --max-length 64 --batch-size 8 --lora-rank 8 --lora-targets all-linear --threads 1)
sst2_common=(--model "$model" --task classify --preset sst2 --labels 0:terrible,1:great --trainable norms --batch-size 16 --threads 1)

# name kind lr seed partition groups -> one JSON row from the run's metrics (single) or rounds.json (sim)
row() {
  python3 - "$work/$1" "$2" "$3" "$4" "$5" "$6" "$7" "$cpu" "$commit" >> "$results" <<'PY'
import json, sys
d, task, kind, lr, seed, partition, groups, cpu, commit = sys.argv[1:]
tau = 8
if kind == "single":
    m = [json.loads(l) for l in open(d + "/metrics.jsonl")]
    start, end = m[0], m[-1]
    steps = end["step"]
    before = (start["eval_loss"], start.get("eval_accuracy"))
    after = (end["eval_loss"], end.get("eval_accuracy"))
else:
    r = json.load(open(d + "/rounds.json"))
    steps = sum(x["accepted"] for x in r["rounds"]) * tau
    before = (r["eval_loss_start"], r.get("eval_accuracy_start"))
    after = (r["rounds"][-1]["eval_loss"], r["rounds"][-1].get("eval_accuracy"))
    if before[1] is not None and before[1] < 0: before = (before[0], None)
    if after[1] is not None and after[1] < 0: after = (after[0], None)
row = {"task": task, "kind": kind, "lr": float(lr), "seed": int(seed), "partition": partition, "seed_groups": int(groups),
       "device_steps": steps, "loss_before": before[0], "loss_after": after[0],
       "accuracy_before": before[1], "accuracy_after": after[1], "cpu": cpu, "commit": commit}
print(json.dumps(row))
PY
}

sim() {  # name, then pocketllm-sim options
  local name="$1"; shift
  "$build/bin/pocketllm-sim" "$@" --devices 100 --tau 8 --out "$work/$name" > "$work/$name.log" 2>&1 \
    || { echo "run_fed_gap: $name failed (log: $work/$name.log)" >&2; tail -3 "$work/$name.log" >&2; exit 1; }
}
single() {  # name, then pocketllm finetune options
  local name="$1"; shift
  "$build/bin/pocketllm" finetune "$@" --out "$work/$name" > "$work/$name.log" 2>&1 \
    || { echo "run_fed_gap: $name failed (log: $work/$name.log)" >&2; tail -3 "$work/$name.log" >&2; exit 1; }
}

: > "$results.tmp"; results="$results.tmp"
if [ "$only" != "sst2" ]; then
  for s in $seeds; do
    for lr in $lm_lrs; do
      echo "LM, seed $s, lr $lr" >&2
      single "lm_single_${lr}_$s" "${lm_common[@]}" --data "$work/lm_train.txt" --eval-data "$work/lm_heldout.txt" --steps 800 --lr "$lr" --seed "$s"
      row "lm_single_${lr}_$s" lm single "$lr" "$s" iid 1
      for g in $groups; do
        sim "lm_g${g}_${lr}_$s" "${lm_common[@]}" --data "$work/lm_train.txt" --eval-data "$work/lm_heldout.txt" --rounds 20 \
          --participation 0.05 --lr "$lr" --seed "$s" --seed-groups "$g"
        row "lm_g${g}_${lr}_$s" lm sim "$lr" "$s" iid "$g"
      done
    done
  done
fi
if [ "$only" != "lm" ]; then
  for s in $seeds; do
    for lr in $sst2_lrs; do
      echo "SST-2, seed $s, lr $lr" >&2
      single "sst2_single_${lr}_$s" "${sst2_common[@]}" --data "$work/sst2_train.tsv" --eval-data "$dev" --steps 4000 --eval-every 1000 \
        --lr "$lr" --seed "$s" --schedule constant --no-balanced --min-words 0 --validation 0  # as the devices train, not the preset's recipe
      row "sst2_single_${lr}_$s" sst2 single "$lr" "$s" iid 1
      for part in iid dirichlet:0.3; do
        for g in $groups; do
          n="sst2_g${g}_${part%%:*}_${lr}_$s"
          sim "$n" "${sst2_common[@]}" --data "$work/sst2_train.tsv" --eval-data "$dev" --rounds 50 --participation 0.1 \
            --lr "$lr" --seed "$s" --seed-groups "$g" --partition "$part"
          row "$n" sst2 sim "$lr" "$s" "$part" "$g"
        done
      done
    done
  done
fi
final="${results%.tmp}"
mv "$results" "$final"
# The table: per task, lr, partition and kind, medians over seeds; gain as a share of the single device's.
python3 - "$final" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(v): return statistics.median(v) if v else float("nan")
keys = sorted({(r["task"], r["lr"]) for r in rows})
print("task   lr      partition     run             device-steps  loss before -> after (median)  gain   share of single  accuracy after (median)")
for task, lr in keys:
    sel = [r for r in rows if r["task"] == task and r["lr"] == lr]
    base = [r for r in sel if r["kind"] == "single"]
    gain_single = med([r["loss_before"] - r["loss_after"] for r in base])
    groups = sorted({(r["partition"], r["kind"], r["seed_groups"]) for r in sel}, key=lambda k: (k[1] != "single", k[0], k[2]))
    for part, kind, g in groups:
        rs = [r for r in sel if (r["partition"], r["kind"], r["seed_groups"]) == (part, kind, g)]
        gain = med([r["loss_before"] - r["loss_after"] for r in rs])
        acc = [r["accuracy_after"] for r in rs if r["accuracy_after"] is not None]
        name = "one device" if kind == "single" else f"sim, groups {g}"
        print(f"{task:6} {lr:<7g} {part:13} {name:15} {med([r['device_steps'] for r in rs]):>12.0f}  "
              f"{med([r['loss_before'] for r in rs]):.4f} -> {med([r['loss_after'] for r in rs]):.4f}"
              f"       {gain:.4f} {100 * gain / gain_single:6.1f} %        " + (f"{100 * med(acc):.1f} %" if acc else "-"))
PY
