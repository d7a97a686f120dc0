#!/usr/bin/env bash
# Bit-exactness of the perturbation spec across targets: builds the dependency-free core and its tests
# (Philox known answers, golden vectors of the independent Python reference, chunking/thread
# independence, statistics) as
#   portable  -march=x86-64-v2 (no AVX2/AVX-512)
#   O0        no optimisation at all
#   aarch64   Debian's g++-aarch64-linux-gnu, run under qemu-aarch64
# and runs them. The default native build is covered by the main test suite (scripts/test.sh).
#
#   scripts/check-targets.sh [portable] [O0] [aarch64]     (default: all three)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build_root="${POCKETLLM_BUILD_ROOT:-$root/build-targets}"
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(portable O0 aarch64)

run_target() {
  local name="$1"; shift
  local dir="$build_root/$name"
  echo "== target $name: configure + build"
  cmake -S "$root" -B "$dir" -G Ninja -DPOCKETLLM_CORE_ONLY=ON -DPOCKETLLM_BUILD_BENCH=OFF "$@" > "$dir.configure.log" 2>&1 \
    || { cat "$dir.configure.log"; return 1; }
  cmake --build "$dir" -j2
  echo "== target $name: tests"
  ctest --test-dir "$dir" -j2 --output-on-failure --timeout 900
}

mkdir -p "$build_root"
for t in "${targets[@]}"; do
  case "$t" in
    portable) run_target portable -DPOCKETLLM_PORTABLE=ON -DCMAKE_BUILD_TYPE=Release ;;
    O0) run_target O0 -DPOCKETLLM_NATIVE=OFF -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS=-O0 ;;
    aarch64)
      command -v aarch64-linux-gnu-g++ >/dev/null && command -v qemu-aarch64 >/dev/null \
        || { echo "aarch64 target needs g++-aarch64-linux-gnu and qemu-user: scripts/setup.sh --cross" >&2; exit 1; }
      run_target aarch64 -DCMAKE_TOOLCHAIN_FILE="$root/cmake/aarch64-toolchain.cmake" -DCMAKE_BUILD_TYPE=Release ;;
    *) echo "unknown target '$t' (portable, O0, aarch64)" >&2; exit 2 ;;
  esac
done
echo "== all targets passed: ${targets[*]}"
