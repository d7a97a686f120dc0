#!/usr/bin/env bash
# What an AVX2-only x86 CPU (most laptops, Zen 3) would see, measured on a CPU that also has AVX-512: both
# sides are held to AVX2 + FMA. pocketllm is built for Haswell (-march=haswell, so Eigen and the build-time
# kernels are AVX2) and its run-time paths are forced to AVX2 (POCKETLLM_GEMM / PERTURB / VEC, and
# POCKETLLM_ATTENTION=avx2: the 8-lane query lanes an AVX2 CPU takes); PyTorch runs ATen's AVX2 kernels
# (ATEN_CPU_CAPABILITY=avx2) over OpenBLAS's Haswell ones. A proxy: the ISA is held, the core is not (an
# AVX2 laptop's caches, clocks and ports differ).
#   bench/run_avx2_proxy.sh [rounds (3)] [reps (3)]
#   build: $POCKETLLM_AVX2_BUILD_DIR (default build-avx2/, only bench_model is built)
#   results: $OUT (default bench/results/avx2_proxy.jsonl): the 1-thread forwards, the ZO-step rounds
#   (bench/run_zo_step_rounds.sh) and the core's 256-bit FMA peak, with the bound it sets on the step ratio
set -euo pipefail
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
root="$(cd "$(dirname "$0")/.." && pwd)"
rounds="${1:-3}"
reps="${2:-3}"
[[ "$rounds" =~ ^[1-9][0-9]*$ && "$reps" =~ ^[1-9][0-9]*$ ]] || { echo "rounds and reps must be positive integers" >&2; exit 2; }
grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo || { echo "this CPU has no AVX2 + FMA: nothing to hold it to" >&2; exit 1; }
"$root/bench/setup_peers.sh" > /dev/null
build="${POCKETLLM_AVX2_BUILD_DIR:-$root/build-avx2}"
out="${OUT:-$root/bench/results/avx2_proxy.jsonl}"
mkdir -p "$(dirname "$out")"
echo "== building bench_model for Haswell in $build" >&2
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPOCKETLLM_NATIVE=OFF -DCMAKE_CXX_FLAGS="-march=haswell" > /dev/null
cmake --build "$build" --target bench_model -j"$(nproc)" > /dev/null
export POCKETLLM_GEMM=avx2 POCKETLLM_PERTURB=avx2 POCKETLLM_VEC=avx2 POCKETLLM_ATTENTION=avx2
export ATEN_CPU_CAPABILITY=avx2 OPENBLAS_CORETYPE=Haswell
cpu="$("$root/bench/cpu_name.sh")"
tag() { sed "s|}\$|,\"proxy\":\"avx2\",\"cpu\":\"$cpu\"}|"; }
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
g++ -O2 -std=c++17 "$root/bench/fma_peak.cpp" -o "$work/fma_peak"
: > "$out"
"$work/fma_peak" | tag >> "$out"
py=(env GLIBC_TUNABLES=glibc.malloc.mmap_threshold=536870912:glibc.malloc.trim_threshold=1073741824
    /usr/bin/python3 "$root/bench/peers/torch_model_bench.py")
"$build/bin/bench_model" --preset 110m --mode forward --threads 1 --reps "$reps" | tag >> "$out"
OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 "${py[@]}" --preset 110m --mode forward --threads 1 --reps "$reps" | tag >> "$out"
OUT="$work/rounds.jsonl" POCKETLLM_BUILD_DIR="$build" "$root/bench/run_zo_step_rounds.sh" "$rounds" "$reps" 110m
sed "s|}\$|,\"proxy\":\"avx2\"}|" "$work/rounds.jsonl" >> "$out"  # rows already name the CPU
python3 - "$out" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
peak = next(r["ymm_gflops"] for r in rows if r.get("bench") == "fma_peak")
fw = {("ours" if "gflops" in r else "torch"): r for r in rows if r.get("mode") == "forward"}
gflop = fw["ours"]["gflops"] * fw["ours"]["forward_ms"] / 1000  # one forward's floating-point work
steps = [r["step_ms"] for r in rows if r.get("mode") == "step"]
mezo = [r["step_ms"] for r in rows if r.get("mode") == "mezo"]
floor_ms = 2 * gflop / (2 * peak) * 1000  # two forwards, one per core, every FMA unit busy
print(f"AVX2 proxy on {rows[0]['cpu']}: 256-bit FMA peak {peak:.1f} GFLOP/s a core")
print(f"110M forward, 1 thread: pocketllm {fw['ours']['forward_ms']:.0f} ms ({fw['ours']['gflops']:.1f} GFLOP/s, "
      f"{100 * fw['ours']['gflops'] / peak:.0f} % of the peak), PyTorch {fw['torch']['forward_ms']:.0f} ms: "
      f"{fw['torch']['forward_ms'] / fw['ours']['forward_ms']:.2f}x")
print(f"ZO step, 2 threads: pocketllm {statistics.median(steps):.0f} ms, MeZO-style {statistics.median(mezo):.0f} ms, "
      f"{statistics.median(mezo) / statistics.median(steps):.2f}x; two forwards at the FMA peak on both cores take "
      f"{floor_ms:.0f} ms, so no exact float32 engine could pass {statistics.median(mezo) / floor_ms:.2f}x here")
EOF
