#!/usr/bin/env bash
# The PocketLLM memory table (README): writes random-weight checkpoints of the paper's models at their
# real sizes into $WORK (default /tmp/pocketllm-memory, ~12 GB), then measures peak RSS of inference and
# of one ZO training step (two perturbed forwards + the update), each in its own process.
#   bench/run_memory_table.sh [--quick|--gguf|--lora]   (--quick: gpt2 and opt-125m only; --gguf: only the GGUF
#   rows; --lora: only the adapter rows)
# GGUF rows: a Llama-3.2-1B-shaped model (random weights) as Q4_0 and Q8_0 GGUF (bench_model --write-gguf),
# inference and a ZO step on the norms, batch 8 x 128.
# LoRA rows (--lora, and in the full table): LoRA r = 8 on the attention's query and value projections
# over a frozen OPT-1.3B / RoBERTa-large / Qwen3-0.6B (BF16 as stored, and quantized to Q8_0/Q4_0 in memory at load)
# and over the Q8_0/Q4_0 GGUF Llama-1B shape: inference, then one ZO
# step on the adapters (two perturbed forwards + the update), each in its own process.
set -euo pipefail
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${POCKETLLM_BUILD_DIR:-$root/build}/bin/bench_memory"
work="${WORK:-/tmp/pocketllm-memory}"
threads="${THREADS:-2}"
mkdir -p "$work"
rows=("opt-125m f32 16 128" "gpt2 f32 16 128")
if [ "${1:-}" = "--gguf" ] || [ "${1:-}" = "--lora" ]; then rows=(); fi
[ "${1:-}" = "--quick" ] || [ "${1:-}" = "--gguf" ] || [ "${1:-}" = "--lora" ] || rows+=("opt-1.3b f32 16 128" "opt-1.3b bf16 16 128" "roberta-large f32 64 64" "roberta-large bf16 64 64")
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

if [ "${1:-}" != "--quick" ] && [ "${1:-}" != "--lora" ]; then
  model_bin="${POCKETLLM_BUILD_DIR:-$root/build}/bin/bench_model"
  for t in q4_0 q8_0; do
    f="$work/llama-3.2-1b-shape-$t.gguf"
    [ -f "$f" ] || "$model_bin" --preset llama1b --write-gguf "$f" --gguf-type "$t"
    "$bin" run --model "$f" --mode infer --batch 8 --seq 128 --threads "$threads" | tee -a "$work/results.jsonl"
    "$bin" run --model "$f" --mode train --trainable "*norm*" --batch 8 --seq 128 --threads "$threads" | tee -a "$work/results.jsonl"
  done
fi

if [ "${1:-}" != "--quick" ] && [ "${1:-}" != "--gguf" ]; then
  model_bin="${POCKETLLM_BUILD_DIR:-$root/build}/bin/bench_model"
  for row in "opt-1.3b bf16 16 128 q_proj,v_proj" "roberta-large bf16 64 64 query,value" "qwen3-0.6b bf16 8 128 q_proj,v_proj" \
             "gemma3-270m bf16 8 128 q_proj,v_proj"; do
    read -r arch dtype batch seq targets <<< "$row"
    dir="$work/$arch-$dtype"
    [ -f "$dir/model.safetensors" ] || "$bin" write --arch "$arch" --dtype "$dtype" --out "$dir"
    "$bin" run --model "$dir" --mode infer --batch "$batch" --seq "$seq" --threads "$threads" | tee -a "$work/results.jsonl"
    "$bin" run --model "$dir" --mode train --lora-rank 8 --lora-targets "$targets" --batch "$batch" --seq "$seq" \
      --threads "$threads" | tee -a "$work/results.jsonl"
    for q in q8_0 q4_0; do  # the same checkpoint held 8- or 4-bit (quantized in memory at load)
      "$bin" run --model "$dir" --quantize "$q" --mode infer --batch "$batch" --seq "$seq" --threads "$threads" | tee -a "$work/results.jsonl"
      "$bin" run --model "$dir" --quantize "$q" --mode train --lora-rank 8 --lora-targets "$targets" --batch "$batch" --seq "$seq" \
        --threads "$threads" | tee -a "$work/results.jsonl"
    done
  done
  for t in q4_0 q8_0; do
    f="$work/llama-3.2-1b-shape-$t.gguf"
    [ -f "$f" ] || "$model_bin" --preset llama1b --write-gguf "$f" --gguf-type "$t"
    "$bin" run --model "$f" --mode infer --batch 8 --seq 128 --threads "$threads" | tee -a "$work/results.jsonl"
    "$bin" run --model "$f" --mode train --lora-rank 8 --lora-targets q_proj,v_proj --batch 8 --seq 128 --threads "$threads" \
      | tee -a "$work/results.jsonl"
  done
fi
