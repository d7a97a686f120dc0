#!/usr/bin/env bash
# Decode-shaped products over every GGUF block type pocketllm reads (bench_quant_dot): one activation row
# times a 3072 x 768 matrix, one thread, the direct kernel against the per-row dequantization path in the
# same run; each row records the CPU (bench/cpu_name.sh).
#   bench/run_quant_dot.sh [BUILD_DIR] [OUT_JSONL]
set -euo pipefail
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
out="${2:-$root/bench/results/quant_dot.jsonl}"
[ -x "$build/bin/bench_quant_dot" ] || { echo "build bench_quant_dot first ($build/bin/bench_quant_dot missing)"; exit 1; }
cpu="$("$root/bench/cpu_name.sh")"
mkdir -p "$(dirname "$out")"
"$build/bin/bench_quant_dot" --reps 200 | sed "s/}\$/,\"cpu\":\"$cpu\"}/" | tee "$out"
