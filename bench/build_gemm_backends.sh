#!/usr/bin/env bash
# Builds the GEMM shoot-out's backends into DIR: eigen, openblas, blis, onednn and pocketllm (the engine's
# packed kernels, built as the portable SDK builds them: x86-64-v2 + run-time choice), and fma_peak.
# Installs Debian's libopenblas-dev, libblis-pthread-dev and libdnnl-dev first if missing (bench only:
# never the build, tests or demo). Used by bench/run_gemm_shootout.sh and bench/run_forward_vs_sgemm.sh.
#   bench/build_gemm_backends.sh DIR
set -euo pipefail
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
[ $# -eq 1 ] || { echo "usage: bench/build_gemm_backends.sh DIR" >&2; exit 2; }
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$1"
mkdir -p "$work"
missing=()
for p in libopenblas-dev libblis-pthread-dev libdnnl-dev libeigen3-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then sudo_cmd=(); else sudo_cmd=(sudo); fi
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
fi
flags=(-O3 -march=native -std=c++17 -DNDEBUG -I"$root/bench")
src="$root/bench/gemm_shootout.cpp"
g++ "${flags[@]}" -DGEMM_EIGEN -I/usr/include/eigen3 -DEIGEN_DONT_PARALLELIZE "$src" -o "$work/eigen" -pthread
g++ "${flags[@]}" -DGEMM_OPENBLAS -I/usr/include/x86_64-linux-gnu/openblas-pthread "$src" -o "$work/openblas" \
  -L/usr/lib/x86_64-linux-gnu/openblas-pthread -Wl,-rpath,/usr/lib/x86_64-linux-gnu/openblas-pthread -lopenblas -pthread
g++ "${flags[@]}" -DGEMM_BLIS -I/usr/include/x86_64-linux-gnu/blis-pthread "$src" -o "$work/blis" \
  -L/usr/lib/x86_64-linux-gnu/blis-pthread -Wl,-rpath,/usr/lib/x86_64-linux-gnu/blis-pthread -lblis -pthread
g++ "${flags[@]}" -DGEMM_ONEDNN "$src" -o "$work/onednn" -ldnnl -fopenmp
g++ -O2 -std=c++17 "$root/bench/fma_peak.cpp" -o "$work/fma_peak"  # the core's FMA peak, for scale
g++ -O3 -march=x86-64-v2 -std=c++17 -DNDEBUG -DGEMM_POCKETLLM -I"$root/bench" -I"$root/client/src" -I"$root/common/include" \
  "$src" "$root/client/src/kernels_gemm.cpp" "$root/common/src/cpu_features.cpp" -o "$work/pocketllm" -pthread
