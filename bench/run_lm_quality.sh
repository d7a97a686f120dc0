#!/usr/bin/env bash
# Does the personalised model read well? (issue 18, point 5.) The demo's LM task — 700 SST-2 sentences as
# private text, 172 held out — trained three ways on stories260K (all parameters, as the demo does; the 11
# norm vectors; LoRA r = 8 on every linear layer), then for the base and each run: held-out loss, and 20
# sampled continuations of held-out openings with the settings a user would use (temperature 0.8, top-p
# 0.9, repetition penalty 1.2, 32 tokens) and 20 greedy ones (no penalty: where loops show), scored by
# distinct-2 (unique word bigrams / bigrams over the 20), the repetition rate (share of words that repeat a
# word trigram already in the same continuation) and fluency: the base model's loss on the continuations
# (misspelt or broken text costs the base model more than fluent text does).
#   bench/run_lm_quality.sh [--steps N] [--work DIR]      results: bench/results/lm_quality.jsonl
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${POCKETLLM_BUILD_DIR:-$root/build}/bin/pocketllm"
shared="${POCKETLLM_SHARED:-$root/../shared}"
model="$shared/hub/karpathy/tinyllamas/stories260K"
data="$shared/data/sst2/glue_sst2_dev.tsv"
steps=300; work="$root/build/lm_quality"
results="${OUT:-$root/bench/results/lm_quality.jsonl}"
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "run_lm_quality: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
for f in "$bin" "$model/stories260K.bin" "$data"; do
  [ -e "$f" ] || { echo "run_lm_quality: missing $f (build first; POCKETLLM_SHARED points at the shared data)" >&2; exit 1; }
done
rm -rf "$work"; mkdir -p "$work" "$(dirname "$results")"
: > "$results"
sed -n '2,701p' "$data" | cut -f1 > "$work/train.txt"
sed -n '702,873p' "$data" | cut -f1 > "$work/heldout.txt"
# 20 prompts: the first three words of held-out sentences 1, 9, 17, ...
awk 'NR % 8 == 1 { print $1, $2, $3 }' "$work/heldout.txt" | head -n 20 > "$work/prompts.txt"
sampling=(--temperature 0.8 --top-p 0.9 --repetition-penalty 1.2 --max-tokens 32)

common=(--data "$work/train.txt" --task lm --max-length 64 --batch-size 16 --steps "$steps" --seed 0 --threads 1
        --eval-data "$work/heldout.txt")
"$bin" finetune --model "$model" "${common[@]}" --lr 1e-4 --out "$work/all" > "$work/all.log" 2>&1 &
"$bin" finetune --model "$model" "${common[@]}" --trainable norms --lr 1e-3 --out "$work/norms" > "$work/norms.log" 2>&1 &
wait
"$bin" finetune --model "$model" "${common[@]}" --lora-rank 8 --lora-targets all-linear --lr 1e-3 --out "$work/lora" \
  > "$work/lora.log" 2>&1 &
"$bin" finetune --model "$model" "${common[@]}" --lora-rank 8 --lora-targets all-linear --lr 3e-4 --out "$work/lora_low" \
  > "$work/lora_low.log" 2>&1 &
wait
for r in all norms lora lora_low; do "$bin" export --run "$work/$r" --out "$work/$r.hf" > /dev/null; done

sample() {  # model dir, name -> one continuation per prompt in $work/$name.samples and $name.greedy
  : > "$work/$2.samples"; : > "$work/$2.greedy"
  local i=0
  while IFS= read -r p; do
    "$bin" generate --model "$1" --prompt "$p" "${sampling[@]}" --seed "$i" 2> /dev/null | tr '\n' ' ' >> "$work/$2.samples"
    echo >> "$work/$2.samples"
    "$bin" generate --model "$1" --prompt "$p" --max-tokens 32 2> /dev/null | tr '\n' ' ' >> "$work/$2.greedy"
    echo >> "$work/$2.greedy"
    i=$((i + 1))
  done < "$work/prompts.txt"
  # Fluency: the base model's mean token loss on the sampled continuations (prompts included).
  "$bin" eval --model "$model" --data "$work/$2.samples" --task lm --max-length 64 --threads 1 \
    | sed -n 's/.*loss \([0-9.]*\).*/\1/p' > "$work/$2.fluency"
}
sample "$model" base
for r in all norms lora lora_low; do sample "$work/$r.hf" "$r"; done
base_loss="$("$bin" eval --model "$model" --data "$work/heldout.txt" --task lm --max-length 64 --threads 1 | sed -n 's/.*loss \([0-9.]*\).*/\1/p')"

/usr/bin/env python3 - "$work" "$results" "$base_loss" "$steps" <<'PY'
import json, re, sys
work, results, base_loss, steps = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
prompts = [l.rstrip("\n") for l in open(f"{work}/prompts.txt")]

def text_scores(path):
    lines = [l.rstrip("\n") for l in open(path)]
    bigrams, unique, words_total, repeats = 0, set(), 0, 0
    for prompt, line in zip(prompts, lines):
        cont = line[len(prompt):] if line.startswith(prompt) else line
        words = re.findall(r"[\w']+|[^\w\s]", cont.lower())
        for a, b in zip(words, words[1:]):
            bigrams += 1
            unique.add((a, b))
        seen = set()
        for i in range(len(words)):
            if i >= 2:
                tri = tuple(words[i - 2:i + 1])
                repeats += tri in seen
                seen.add(tri)
        words_total += len(words)
    return round(len(unique) / max(bigrams, 1), 3), round(repeats / max(words_total, 1), 3), lines[0]

def scores(name):
    d2, rep, first = text_scores(f"{work}/{name}.samples")
    gd2, grep_, gfirst = text_scores(f"{work}/{name}.greedy")
    return {"distinct_2": d2, "repetition_rate": rep, "base_loss_on_samples": float(open(f"{work}/{name}.fluency").read()),
            "greedy_distinct_2": gd2, "greedy_repetition_rate": grep_, "sample": first, "greedy_sample": gfirst}

def final_loss(run):
    last = None
    for l in open(f"{work}/{run}/metrics.jsonl"):
        last = json.loads(l)
    return last["eval_loss"]

rows = [{"model": "base", "heldout_loss": base_loss, **scores("base")}]
for run, what in [("all", "all 260 032 parameters, lr 1e-4"), ("norms", "11 norm vectors, lr 1e-3"),
                  ("lora", "LoRA r=8 all-linear, lr 1e-3"), ("lora_low", "LoRA r=8 all-linear, lr 3e-4")]:
    rows.append({"model": run, "trained": what, "steps": steps, "heldout_loss": round(final_loss(run), 4), **scores(run)})
with open(results, "w") as f:
    for r in rows:
        r["sampling"] = "temperature 0.8, top-p 0.9, repetition penalty 1.2, 32 tokens, 20 held-out openings"
        f.write(json.dumps(r) + "\n")
        print(json.dumps(r))
PY
