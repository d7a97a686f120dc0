#!/usr/bin/env bash
# The GEMM shoot-out of the "Fast on every CPU" issue: Eigen (as the engine runs it), OpenBLAS, BLIS and
# oneDNN on the 110M forward's shapes, M = 1 .. 1024, 1 and 2 threads, medians of REPS, same run. Installs
# Debian's libopenblas-dev, libblis-pthread-dev and libdnnl-dev (bench only: never the build, tests or demo).
#   bench/run_gemm_shootout.sh [REPS] [OUT_JSONL]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
reps="${1:-5}"
out="${2:-$root/bench/results/gemm_shootout.jsonl}"
missing=()
for p in libopenblas-dev libblis-pthread-dev libdnnl-dev libeigen3-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then sudo_cmd=(); else sudo_cmd=(sudo); fi
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
fi
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
flags=(-O3 -march=native -std=c++17 -DNDEBUG)
g++ "${flags[@]}" -DGEMM_EIGEN -I/usr/include/eigen3 -DEIGEN_DONT_PARALLELIZE "$root/bench/gemm_shootout.cpp" -o "$work/eigen" -pthread
g++ "${flags[@]}" -DGEMM_OPENBLAS -I/usr/include/x86_64-linux-gnu/openblas-pthread "$root/bench/gemm_shootout.cpp" -o "$work/openblas" \
  -L/usr/lib/x86_64-linux-gnu/openblas-pthread -Wl,-rpath,/usr/lib/x86_64-linux-gnu/openblas-pthread -lopenblas -pthread
g++ "${flags[@]}" -DGEMM_BLIS -I/usr/include/x86_64-linux-gnu/blis-pthread "$root/bench/gemm_shootout.cpp" -o "$work/blis" \
  -L/usr/lib/x86_64-linux-gnu/blis-pthread -Wl,-rpath,/usr/lib/x86_64-linux-gnu/blis-pthread -lblis -pthread
g++ "${flags[@]}" -DGEMM_ONEDNN "$root/bench/gemm_shootout.cpp" -o "$work/onednn" -ldnnl -fopenmp
cpu="$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
echo "== CPU: $cpu"
mkdir -p "$(dirname "$out")"
: > "$out"
for th in 1 2; do
  for b in eigen openblas blis onednn; do
    OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-SkylakeX}" "$work/$b" "$th" "$reps" | sed "s/}\$/,\"cpu\":\"$cpu\"}/" >> "$out"
  done
done
python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
backends = ["eigen", "openblas", "blis", "onednn"]
print("| threads | M | shape (N x K) | " + " | ".join(backends) + " | best |")
print("|---|---|---|" + "---|" * (len(backends) + 1))
keys = sorted({(r["threads"], r["m"], r["shape"], r["n"], r["k"]) for r in rows}, key=lambda x: (x[0], x[1], x[3] * x[4]))
for th, m, shape, n, k in keys:
    g = {r["backend"]: r["gflops"] for r in rows if (r["threads"], r["m"], r["shape"]) == (th, m, shape)}
    best = max(g, key=g.get)
    print(f"| {th} | {m} | {shape} ({n} x {k}) | " + " | ".join(f"{g.get(b, 0):.0f}" for b in backends) + f" | {best} |")
PY
