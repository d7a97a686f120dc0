#!/usr/bin/env bash
# Forward throughput, ZO step overhead and peak RSS of pocketllm next to PyTorch (Debian's
# python3-torch with OpenBLAS) on the same Llama configurations and batches, measured in the same run.
#   bench/run_model_bench.sh [reps]          results: stdout and $OUT (default bench/results/model_bench.jsonl)
set -euo pipefail
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/bench/setup_peers.sh" > /dev/null
bin="${POCKETLLM_BUILD_DIR:-$root/build}/bin/bench_model"
# The PyTorch peer keeps freed tensors in the heap instead of returning each one to the kernel: with
# glibc's defaults every large temporary is a fresh mmap whose pages fault in again, which on some VMs
# (the Zen 5 of session 31) made torch's element-wise ops 4-5x slower (a 1024 x 2048 multiply: 7.3 ms,
# 1.6 ms with these settings, numpy 0.4). The peer's best case; pocketllm reuses its own scratch.
py=(env GLIBC_TUNABLES=glibc.malloc.mmap_threshold=536870912:glibc.malloc.trim_threshold=1073741824
    /usr/bin/python3 "$root/bench/peers/torch_model_bench.py")
reps="${1:-5}"
out="${OUT:-$root/bench/results/model_bench.jsonl}"
mkdir -p "$(dirname "$out")"
: > "$out"
. "$root/bench/openblas_coretype.sh"
# Every row carries the CPU model, the vector extensions that decide the kernels, and the paths chosen.
cpu="$("$root/bench/cpu_name.sh")"
isa="$(grep -m1 -ow -E 'avx2|fma|avx512f|avx512_vnni|avx512_bf16|amx_tile|asimddp|i8mm' /proc/cpuinfo | sort -u | tr '\n' ' ' | sed 's/ $//')"
kernels="$("${bin%/*}/pocketllm" info --system 2>/dev/null | sed -n 's/^kernels: *//p' | head -1)"
tag() { sed "s|}\$|,\"cpu\":\"$cpu\",\"isa\":\"$isa\",\"kernels\":\"$kernels\"}|"; }
for preset in 110m stories260k; do
  for t in 1 2; do
    "$bin" --preset $preset --mode forward --threads $t --reps "$reps" | tag | tee -a "$out"
    OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t "${py[@]}" --preset $preset --mode forward --threads $t --reps "$reps" | tag | tee -a "$out"
  done
  "$bin" --preset $preset --mode step --threads 2 --reps "$reps" | tag | tee -a "$out"
  OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 "${py[@]}" --preset $preset --mode mezo --threads 2 --reps "$reps" | tag | tee -a "$out"
  "$bin" --preset $preset --mode weights | tag | tee -a "$out"
done
"$bin" --mode gemm --reps "$reps" | tag | tee -a "$out"
