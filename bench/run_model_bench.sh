#!/usr/bin/env bash
# Forward throughput, ZO step overhead and peak RSS of pocketllm next to PyTorch (Debian's
# python3-torch with OpenBLAS) on the same Llama configurations and batches, measured in the same run.
#   bench/run_model_bench.sh [reps]          results: stdout and $OUT (default bench/results/model_bench.jsonl)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/bench/setup_peers.sh" > /dev/null
bin="${POCKETLLM_BUILD_DIR:-$root/build}/bin/bench_model"
py=(/usr/bin/python3 "$root/bench/peers/torch_model_bench.py")
reps="${1:-5}"
out="${OUT:-$root/bench/results/model_bench.jsonl}"
mkdir -p "$(dirname "$out")"
: > "$out"
export OPENBLAS_CORETYPE=SkylakeX
for preset in 110m stories260k; do
  for t in 1 2; do
    "$bin" --preset $preset --mode forward --threads $t --reps "$reps" | tee -a "$out"
    OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t "${py[@]}" --preset $preset --mode forward --threads $t --reps "$reps" | tee -a "$out"
  done
  "$bin" --preset $preset --mode step --threads 2 --reps "$reps" | tee -a "$out"
  OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 "${py[@]}" --preset $preset --mode mezo --threads 2 --reps "$reps" | tee -a "$out"
  "$bin" --preset $preset --mode weights | tee -a "$out"
done
"$bin" --mode gemm --reps "$reps" | tee -a "$out"
