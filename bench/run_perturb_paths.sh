#!/usr/bin/env bash
# The perturbation core's run-time paths (generic = the build's own ISA, AVX2, AVX-512) side by side, in one
# run: bench_perturbation's Rademacher rows per path, then the 110M ZO step (bench_model --mode step, 2
# threads) per path, alternating. Meant for the portable build, where "generic" is x86-64-v2 (SSE4.2):
#   POCKETLLM_BUILD_DIR=build-portable bench/run_perturb_paths.sh [ROUNDS] [OUT_JSONL]
# Paths the CPU lacks are skipped. Results: stdout and OUT (default bench/results/perturb_paths.jsonl).
set -euo pipefail
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${POCKETLLM_BUILD_DIR:-$root/build}"
rounds="${1:-2}"
out="${2:-$root/bench/results/perturb_paths.jsonl}"
for b in bench_perturbation bench_model pocketllm; do
  [ -x "$build/bin/$b" ] || { echo "run_perturb_paths: $build/bin/$b not built (scripts/build.sh)" >&2; exit 1; }
done
cpu="$("$root/bench/cpu_name.sh")"
isa="$(grep -m1 -ow -E 'avx2|avx512f' /proc/cpuinfo | sort -u | tr '\n' ' ' | sed 's/ $//')"
build_isa="native"
grep -q 'POCKETLLM_PORTABLE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null && build_isa="portable (x86-64-v2)"
paths=(generic)
grep -qw avx2 /proc/cpuinfo && paths+=(avx2)
grep -qw avx512f /proc/cpuinfo && paths+=(avx512)
mkdir -p "$(dirname "$out")"
: > "$out"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
tag() { sed "s|}\$|,\"cpu\":\"$cpu\",\"isa\":\"$isa\",\"build\":\"$build_isa\",\"path_asked\":\"$1\"}|"; }
echo "== $cpu, build $build_isa, paths: ${paths[*]}"
for p in "${paths[@]}"; do
  POCKETLLM_PERTURB=$p "$build/bin/bench_perturbation" --elements 50000000 --reps 7 --json "$work/p.json" | grep -E "path|rademacher|gaussian"
  tag "$p" < "$work/p.json" >> "$out"; echo >> "$out"
done
for r in $(seq "$rounds"); do
  for p in "${paths[@]}"; do
    POCKETLLM_PERTURB=$p "$build/bin/bench_model" --preset 110m --mode step --threads 2 --reps 3 | tag "$p" | tee -a "$out"
  done
done
sed -i '/^$/d' "$out"
