#!/usr/bin/env bash
# README command one: sets up a fresh Debian 12 machine, builds pocketllm and runs the demo:
# zeroth-order fine-tuning of the real pretrained stories260K (a 260K-parameter Llama) on text it never
# saw, with inference memory only, then what changed and what a device would upload.
#   scripts/demo.sh [--model PATH] [--steps N]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
shared="${POCKETLLM_SHARED:-$root/../shared}"
model="$shared/hub/karpathy/tinyllamas/stories260K"
steps=300
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
bin="${POCKETLLM_BUILD_DIR:-$root/build}/bin/pocketllm"
out="$root/out/demo"
rm -rf "$out"; mkdir -p "$out"
data="$shared/data/sst2/glue_sst2_dev.tsv"
if [ ! -e "$model" ] || [ ! -f "$data" ]; then
  echo "demo: needs $model and $data (set POCKETLLM_SHARED to the shared data folder, or --model)" >&2
  exit 1
fi
# Private text: 700 movie-review sentences to train on, 172 held out. Children's stories are all the
# model has seen.
sed -n '2,701p' "$data" | cut -f1 > "$out/private_train.txt"
sed -n '702,873p' "$data" | cut -f1 > "$out/private_heldout.txt"

echo; echo "== the model"
"$bin" info --model "$model"
echo; echo "== before: greedy continuation of \"The movie\""
"$bin" generate --model "$model" --prompt "The movie" --max-tokens 40 2> /dev/null | tee "$out/sample_before.txt"

echo; echo "== zeroth-order fine-tuning on the private text ($steps steps; two forward passes per step)"
"$bin" finetune --model "$model" --data "$out/private_train.txt" --eval-data "$out/private_heldout.txt" \
  --task lm --steps "$steps" --batch-size 16 --lr 1e-4 --eps 1e-3 --seed 0x5eed --out "$out/run" \
  --metrics-json "$out/metrics.json"

echo; echo "== after: the fine-tuned model"
"$bin" export --run "$out/run" --out "$out/tuned"
"$bin" generate --model "$out/tuned" --prompt "The movie" --max-tokens 40 2> /dev/null | tee "$out/sample_after.txt"

echo; echo "== what changed"
python3 - "$out/metrics.json" "$out/run/log.jsonl" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
ev = m["evals"]
print(f"held-out loss {ev[0]['loss']:.4f} -> {ev[-1]['loss']:.4f} ({100 * (ev[0]['loss'] - ev[-1]['loss']) / ev[0]['loss']:.1f}% lower)")
steps = sum(1 for _ in open(sys.argv[2]))
print(f"the whole run is {steps} (seed, scalar) pairs: {steps * 12} bytes in binary form "
      f"({steps * 8 + steps * 4} = 8-byte seed + 4-byte scalar each); the private text never leaves the device")
PY
echo; echo "== another device with the base model replays those pairs"
"$bin" replay --model "$model" --log "$out/run" --out "$out/replayed"
if cmp -s "$out/tuned/model.safetensors" "$out/replayed/model.safetensors"; then
  echo "identical weights, byte for byte: $(sha256sum "$out/replayed/model.safetensors" | cut -c1-16)…"
else
  echo "demo: FAILED — the replayed model differs from the trained one" >&2
  exit 1
fi
echo "run directory: $out/run (spec.json, log.jsonl, snapshot.safetensors, metrics.jsonl); curve: $out/metrics.json"
