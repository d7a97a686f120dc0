#!/usr/bin/env bash
# stories260K's 1-thread forward (32 x 64 tokens, heads 8 wide: the narrow-head attention is a sixth of it)
# on each narrow-head attention path, in alternating rounds, beside PyTorch in the same rounds:
#   - held to AVX2 (bench/run_avx2_proxy.sh's Haswell build and settings; PyTorch on ATen's AVX2 kernels):
#     the key-lane groups (POCKETLLM_ATTENTION=keys) and the 8-lane query lanes (POCKETLLM_ATTENTION=avx2);
#   - on an AVX-512 CPU also the native build: key lanes, 8-lane and 16-lane query lanes, PyTorch as is.
# Prints medians and each round's ratios; results: $OUT (default bench/results/attention_paths.jsonl).
#   bench/run_attention_paths.sh [rounds (5)] [reps (40)]
#   builds: $POCKETLLM_BUILD_DIR (default build/, scripts/build.sh) and $POCKETLLM_AVX2_BUILD_DIR
#   (default build-avx2/, only bench_model is built here)
set -euo pipefail
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
root="$(cd "$(dirname "$0")/.." && pwd)"
rounds="${1:-5}"
reps="${2:-40}"
[[ "$rounds" =~ ^[1-9][0-9]*$ && "$reps" =~ ^[1-9][0-9]*$ ]] || { echo "rounds and reps must be positive integers" >&2; exit 2; }
grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo || { echo "this CPU has no AVX2 + FMA: no query-lane path to measure" >&2; exit 1; }
native="${POCKETLLM_BUILD_DIR:-$root/build}/bin/bench_model"
[ -x "$native" ] || { echo "$native: not built (scripts/build.sh)" >&2; exit 1; }
avx2_build="${POCKETLLM_AVX2_BUILD_DIR:-$root/build-avx2}"
"$root/bench/setup_peers.sh" > /dev/null
echo "== building bench_model for Haswell in $avx2_build" >&2
cmake -S "$root" -B "$avx2_build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPOCKETLLM_NATIVE=OFF -DCMAKE_CXX_FLAGS="-march=haswell" > /dev/null
cmake --build "$avx2_build" --target bench_model -j"$(nproc)" > /dev/null
out="${OUT:-$root/bench/results/attention_paths.jsonl}"
mkdir -p "$(dirname "$out")"
: > "$out"
. "$root/bench/openblas_coretype.sh"
cpu="$("$root/bench/cpu_name.sh")"
row() { sed "s|}\$|,\"build\":\"$1\",\"attention\":\"$2\",\"round\":$3,\"cpu\":\"$cpu\"}|" >> "$out"; }
torch=(env GLIBC_TUNABLES=glibc.malloc.mmap_threshold=536870912:glibc.malloc.trim_threshold=1073741824
       OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 /usr/bin/python3 "$root/bench/peers/torch_model_bench.py"
       --preset stories260k --mode forward --threads 1 --reps "$reps")
ours=(--preset stories260k --mode forward --threads 1 --reps "$reps")
avx512=0; grep -qw avx512f /proc/cpuinfo && avx512=1
for r in $(seq "$rounds"); do
  echo "== round $r of $rounds" >&2
  for path in keys avx2; do
    env POCKETLLM_GEMM=avx2 POCKETLLM_PERTURB=avx2 POCKETLLM_VEC=avx2 POCKETLLM_ATTENTION=$path \
      "$avx2_build/bin/bench_model" "${ours[@]}" | row avx2 "$path" "$r"
  done
  (export ATEN_CPU_CAPABILITY=avx2 OPENBLAS_CORETYPE=Haswell; "${torch[@]}") | row avx2 torch "$r"
  if [ $avx512 = 1 ]; then
    for path in keys avx2; do POCKETLLM_ATTENTION=$path "$native" "${ours[@]}" | row native "$path" "$r"; done
    env -u POCKETLLM_ATTENTION "$native" "${ours[@]}" | row native avx512 "$r"
    "${torch[@]}" | row native torch "$r"
  fi
done
/usr/bin/python3 - "$out" <<'PY'
import collections, json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
ms = collections.defaultdict(dict)  # (build, path) -> round -> ms
for r in rows:
    ms[(r["build"], r["attention"])][r["round"]] = r["forward_ms"]
print(f"{rows[0]['cpu']}: stories260K 1-thread forward, medians over {max(r['round'] for r in rows)} rounds (ms)")
for build in ("avx2", "native"):
    paths = [p for (b, p) in ms if b == build and p != "torch"]
    if not paths:
        continue
    torch = ms[(build, "torch")]
    keys = ms[(build, "keys")]
    print(f"  {build} build, PyTorch {statistics.median(torch.values()):.2f}")
    for p in paths:
        t = ms[(build, p)]
        vs_torch = [torch[i] / t[i] for i in t]
        vs_keys = [t[i] / keys[i] for i in t]
        print(f"    {p:7s} {statistics.median(t.values()):7.2f}   PyTorch/this {statistics.median(vs_torch):.2f}x "
              f"(rounds {min(vs_torch):.2f}-{max(vs_torch):.2f})   time vs key lanes {statistics.median(vs_keys):.3f}x")
PY
