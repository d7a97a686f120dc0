#!/usr/bin/env bash
# SST-2 prompt classification on the pretrained stories260K (issue 5's learning point): zero-shot accuracy,
# then ZO fine-tuning with pocketllm for several direction seeds (run side by side, one thread each), and
# optionally the first-order reference (Adam + backprop, PyTorch; installs the bench peers).
#
#   bench/run_sst2.sh [--seeds "0 1"] [--steps N] [--lr LR] [--batch-size B] [--eval-every N]
#                     [--data-seed D] [--validation N [--validate-every S] [--patience P]]
#                     [--trainable P] [--trainable-scale S] [--trainable-rows R] [--min-words W]
#                     [--optimizer sgd|adam] [--n-spsa K] [--add-biases T]
#                     [--reference] [--work DIR]
#   bench/run_sst2.sh --preset [--seeds "0 1"] [--steps N] [--data-seed D] [--eval-every N] [--work DIR]
#
# --preset measures what a user gets with no tuning flags: `pocketllm finetune --preset sst2 --k-shot 512
# --steps N --eval-data dev.tsv` (MeZO's template, bad/good, the sst2 recipe of docs/training.md);
# only the data seed, direction seed, step count and evaluation interval are set, and the tuning options
# above are refused. Default steps 4 800 there.
#
# --trainable passes its patterns to finetune (default norms); --trainable-scale and --trainable-rows pass
# step scales and trainable rows (docs/training.md) as they are, as do --optimizer, --n-spsa and --add-biases
# (Adam over full directions: give its --lr, e.g. 1e-2, since the default is SPSA's). --min-words W draws the k-shot sample from the
# training rows of at least W words only (a filtered copy of the TSV in --work): a quarter of GLUE SST-2's
# training rows are treebank phrases of three words or fewer, while the dev set is whole sentences.
#
# Defaults are the configuration README reports: the 11 norm vectors (704 parameters), balanced batches
# of 16, cosine lr from 5e-3 to 0 over 48 000 steps, ε 1e-3, k = 512 per class (data seed 1),
# `{text} It was` -> bad/good, all 872 sentences of glue_sst2_dev.tsv. About 4 min for two seeds on two
# cores. --reference adds Adam + backprop on the same data: on the same 704 norm parameters (balanced
# batches of 16, lr 1e-2, 300 steps) and on all 260 032 (lr 1e-3, 500 steps); a few minutes more.
# Results: one JSON line per figure on stdout and in $OUT (default bench/results/sst2.jsonl, or
# DIR/results.jsonl when --work DIR is given, so a side experiment never overwrites the committed rows):
# {"kind": "zero_shot" | "zo" (every evaluation) | "zo_final" | "reference", ...}. Run directories (logs,
# snapshots) go to --work (default build/sst2). --validation N holds N sentences per class out of the k-shot
# sample and ends each run with its best validated step (docs/training.md): "zo_final" is then that step's
# dev accuracy, with "selected_step".
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${POCKETLLM_BUILD_DIR:-$root/build}/bin/pocketllm"
shared="${POCKETLLM_SHARED:-$root/../shared}"
model="$shared/hub/karpathy/tinyllamas/stories260K"
train="$shared/data/sst2/glue_sst2_train.tsv"
dev="$shared/data/sst2/glue_sst2_dev.tsv"

seeds="0 1"; steps=48000; lr=5e-3; batch=16; eval_every=4000; reference=0; data_seed=1; validation=()
trainable=norms; min_words=0; preset=0; tuned=(); extra=()
work="$root/build/sst2"
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) seeds="$2"; shift 2 ;;
    --preset) preset=1; shift ;;
    --steps) steps="$2"; steps_set=1; shift 2 ;;
    --lr) lr="$2"; tuned+=("$1"); shift 2 ;;
    --batch-size) batch="$2"; tuned+=("$1"); shift 2 ;;
    --eval-every) eval_every="$2"; eval_set=1; shift 2 ;;
    --reference) reference=1; shift ;;
    --data-seed) data_seed="$2"; shift 2 ;;
    --validation) validation+=(--validation "$2"); tuned+=("$1"); shift 2 ;;
    --validate-every) validation+=(--validate-every "$2"); tuned+=("$1"); shift 2 ;;
    --patience) validation+=(--patience "$2"); tuned+=("$1"); shift 2 ;;
    --work) work="$2"; work_set=1; shift 2 ;;
    --trainable) trainable="$2"; tuned+=("$1"); shift 2 ;;
    --trainable-scale|--trainable-rows|--optimizer|--add-biases|--n-spsa) extra+=("$1" "$2"); tuned+=("$1"); shift 2 ;;
    --min-words) min_words="$2"; tuned+=("$1"); shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "run_sst2: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
for f in "$bin" "$model/stories260K.bin" "$train" "$dev"; do
  [ -e "$f" ] || { echo "run_sst2: missing $f (build first; POCKETLLM_SHARED points at the shared data)" >&2; exit 1; }
done
if [ $preset -eq 1 ]; then
  [ ${#tuned[@]} -eq 0 ] || { echo "run_sst2: --preset measures the preset's own recipe; drop ${tuned[*]}" >&2; exit 2; }
  [ -n "${steps_set:-}" ] || steps=4800
  [ -n "${eval_set:-}" ] || eval_every=600
fi
if [ -n "${OUT:-}" ]; then results="$OUT"
elif [ -n "${work_set:-}" ]; then results="$work/results.jsonl"
else results="$root/bench/results/sst2.jsonl"; fi
[[ "$min_words" =~ ^[0-9]+$ ]] || { echo "run_sst2: --min-words takes a whole number of words, not '$min_words'" >&2; exit 2; }
mkdir -p "$work" "$(dirname "$results")"
: > "$results"
if [ "$min_words" -gt 0 ]; then  # the header and every row of at least min_words whitespace-separated words
  awk -F'\t' -v w="$min_words" 'NR == 1 || split($1, a, " ") >= w' "$train" > "$work/train_min$min_words.tsv"
  train="$work/train_min$min_words.tsv"
fi
template="{text} It was"
labels="0:bad,1:good"  # also the sst2 preset's

# Zero-shot: the base model with the same template and label words.
zs="$("$bin" eval --model "$model" --data "$dev" --task classify --template "$template" --labels "$labels" \
      --threads 2 | grep -m1 '^examples ')"  # the summary line; per-label lines follow it
zs_acc="$(sed -n 's/.*accuracy \([0-9.]*\)%.*/\1/p' <<< "$zs")"
zs_loss="$(sed -n 's/.*loss \([0-9.]*\) .*/\1/p' <<< "$zs")"
echo "{\"kind\": \"zero_shot\", \"accuracy\": $zs_acc, \"loss\": $zs_loss}" | tee -a "$results"

# ZO: one run per seed, side by side.
pids=()
for s in $seeds; do
  rm -rf "$work/seed$s"
  if [ $preset -eq 1 ]; then
    recipe=(--preset sst2)
  else
    recipe=(--task classify --template "$template" --labels "$labels" ${validation[@]+"${validation[@]}"} --balanced
            --trainable "$trainable" ${extra[@]+"${extra[@]}"} --batch-size "$batch" --lr "$lr" --schedule cosine)
  fi
  "$bin" finetune --model "$model" --data "$train" "${recipe[@]}" \
    --k-shot 512 --data-seed "$data_seed" --steps "$steps" --seed "$s" --threads 1 --eval-data "$dev" --eval-every "$eval_every" \
    --snapshot-every "$eval_every" --metrics-json "$work/seed$s.json" --out "$work/seed$s" \
    > "$work/seed$s.out" 2>&1 &
  pids+=($!)
done
echo "run_sst2: ZO runs for seeds $seeds started; progress in $work/seed*.out" >&2
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
[ $status -eq 0 ] || { echo "run_sst2: a ZO run failed; see $work/seed*.out" >&2; exit 1; }

PRESET=$preset /usr/bin/env python3 - "$results" "$work" "$zs_acc" "$data_seed" $seeds <<'EOF'
import json, os, sys
results, out, zs, data_seed = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
with open(results, "a") as f:
    def emit(line):
        f.write(json.dumps(line) + "\n")
        print(json.dumps(line))
    for s in sys.argv[5:]:
        m = json.load(open(f"{out}/seed{s}.json"))
        for e in m["evals"]:
            kind = "zo_validation" if e.get("split") == "validation" else "zo"
            if "selected_step" in e: continue
            emit({"kind": kind, "seed": int(s), "data_seed": int(data_seed), "step": e["step"],
                  "accuracy": round(100 * e["accuracy"], 2), "loss": round(e["loss"], 4)})
        last = [e for e in m["evals"] if e.get("split") != "validation"][-1]
        acc = 100 * last["accuracy"]
        final = {"kind": "zo_final", "seed": int(s), "data_seed": int(data_seed), "step": last["step"], "accuracy": round(acc, 2),
                 "gain_points": round(acc - zs, 2), "seconds": round(m["seconds"], 1)}
        if "selected_step" in last: final["selected_step"] = last["selected_step"]
        if os.environ.get("PRESET") == "1": final["recipe"] = "preset sst2"
        emit(final)
EOF

if [ $reference -eq 1 ]; then
  "$root/bench/setup_peers.sh" > /dev/null
  ref() {  # ref NAME args...: one first-order run, its evaluations tagged as JSON lines
    local name="$1"; shift
    /usr/bin/python3 "$root/bench/peers/ft_reference.py" classify --model "$model/stories260K.bin" \
      --tokenizer "$model/tok512.bin" --train "$train" --eval "$dev" --template "$template" --labels "$labels" \
      --k-shot 512 --data-seed 1 --batch-size 16 --optimizer adam "$@" |
      sed "s/^{/{\"kind\": \"reference\", \"run\": \"$name\", /" | tee -a "$results"
  }
  ref adam_norms --trainable norm --balanced --lr 1e-2 --steps 300 --eval-every 100
  ref adam_all --lr 1e-3 --steps 500 --eval-every 100
fi
