#!/usr/bin/env bash
# The GEMM shoot-out of the "Fast on every CPU" issue: Eigen, OpenBLAS, BLIS, oneDNN and the engine's own
# packed micro-kernels (each x86 path the CPU has; M >= 8, below which the engine runs Eigen) on the 110M
# forward's shapes, M = 1 .. 1024, 1 and 2 threads, medians of REPS, same run. Installs Debian's
# libopenblas-dev, libblis-pthread-dev and libdnnl-dev (bench only: never the build, tests or demo).
#   bench/run_gemm_shootout.sh [REPS] [OUT_JSONL]
set -euo pipefail
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
root="$(cd "$(dirname "$0")/.." && pwd)"
reps="${1:-5}"
out="${2:-$root/bench/results/gemm_shootout.jsonl}"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
"$root/bench/build_gemm_backends.sh" "$work"
. "$root/bench/openblas_coretype.sh"
cpu="$("$root/bench/cpu_name.sh")"
echo "== CPU: $cpu"
mkdir -p "$(dirname "$out")"
: > "$out"
"$work/fma_peak" | sed "s/}\$/,\"cpu\":\"$cpu\"}/" >> "$out"
for th in 1 2; do
  for b in eigen openblas blis onednn; do
    "$work/$b" "$th" "$reps" | sed "s/}\$/,\"cpu\":\"$cpu\"}/" >> "$out"
  done
  for path in avx2 avx512; do  # each path this CPU has (one it lacks falls back to the widest, and is skipped)
    grep -qw "${path/avx512/avx512f}" /proc/cpuinfo || continue
    POCKETLLM_GEMM=$path "$work/pocketllm" "$th" "$reps" | sed "s/\"backend\":\"pocketllm\"/\"backend\":\"pocketllm-$path\"/; s/}\$/,\"cpu\":\"$cpu\"}/" >> "$out"
  done
done
python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
for r in rows:
    if r.get("bench") == "fma_peak":
        print(f"FMA peak of one core: {r['ymm_gflops']} GFLOP/s (256-bit), {r['zmm_gflops']} (512-bit)")
rows = [r for r in rows if r.get("bench") == "gemm_shootout"]
backends = ["eigen", "openblas", "blis", "onednn", "pocketllm-avx2", "pocketllm-avx512"]
print("| threads | M | shape (N x K) | " + " | ".join(backends) + " | best |")
print("|---|---|---|" + "---|" * (len(backends) + 1))
keys = sorted({(r["threads"], r["m"], r["shape"], r["n"], r["k"]) for r in rows}, key=lambda x: (x[0], x[1], x[3] * x[4]))
for th, m, shape, n, k in keys:
    g = {r["backend"]: r["gflops"] for r in rows if (r["threads"], r["m"], r["shape"]) == (th, m, shape)}
    best = max(g, key=g.get)
    print(f"| {th} | {m} | {shape} ({n} x {k}) | " + " | ".join(f"{g[b]:.0f}" if b in g else "—" for b in backends) + f" | {best} |")
PY
