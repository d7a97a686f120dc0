#!/usr/bin/env bash
# ggml's own block functions (libggml-base.so of node-llama-cpp's prebuilt CPU build, through ctypes) against
# pocketllm's dequantization of every block type it reads (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K ... Q6_K) and its
# Q8_0/Q4_0 quantizers, bit for bit.
#   bench/run_quant_peer.sh [BUILD_DIR] [OUT_JSONL]
set -euo pipefail
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
out="${2:-$root/bench/results/quant_peer.jsonl}"
peer="$root/bench/peers/llamacpp"
if [ ! -d "$peer/node_modules/node-llama-cpp" ]; then
  (cd "$peer" && npm i --no-audit --no-fund -E node-llama-cpp@3.21.1 @huggingface/gguf@0.4.6 > /dev/null)
fi
lib="$(ls "$peer"/node_modules/@node-llama-cpp/linux-x64/bins/*/libggml-base.so | head -1)"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
mkdir -p "$(dirname "$out")"
python3 "$peer/quant_check.py" "$build/bin/pocketllm" "$lib" "$work" | tee "$out"
