#!/usr/bin/env bash
# The PocketLLM memory table (README): writes random-weight checkpoints of the paper's models at their
# real sizes into $WORK (default /tmp/pocketllm-memory, ~12 GB), then measures peak RSS of inference and
# of one ZO training step (two perturbed forwards + the update), each in its own process.
#   bench/run_memory_table.sh [--quick]      (--quick: gpt2 and opt-125m only)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${POCKETLLM_BUILD_DIR:-$root/build}/bin/bench_memory"
work="${WORK:-/tmp/pocketllm-memory}"
threads="${THREADS:-2}"
mkdir -p "$work"
rows=("opt-125m f32 16 128" "gpt2 f32 16 128")
[ "${1:-}" = "--quick" ] || rows+=("opt-1.3b f32 16 128" "opt-1.3b bf16 16 128" "roberta-large f32 64 64" "roberta-large bf16 64 64")
for row in "${rows[@]}"; do
  read -r arch dtype batch seq <<< "$row"
  dir="$work/$arch-$dtype"
  [ -f "$dir/model.safetensors" ] || "$bin" write --arch "$arch" --dtype "$dtype" --out "$dir"
  modes="infer train"
  [ "$dtype" = "bf16" ] && modes="infer"
  for mode in $modes; do
    "$bin" run --model "$dir" --mode "$mode" --batch "$batch" --seq "$seq" --threads "$threads" | tee -a "$work/results.jsonl"
  done
done
