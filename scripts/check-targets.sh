#!/usr/bin/env bash
# Bit-exactness of the perturbation spec across targets: builds the dependency-free core and its tests
# (Philox known answers, golden vectors of the independent Python reference, chunking/thread
# independence, statistics) as
#   portable  -march=x86-64-v2 (no AVX2/AVX-512)
#   O0        no optimisation at all
#   aarch64   Debian's g++-aarch64-linux-gnu, run under qemu-aarch64
# and runs them. The default native build is covered by the main test suite (scripts/test.sh). The two
# SDK builds below compile their libraries as unity batches (POCKETLLM_UNITY_BUILD: shorter clean builds).
#   aarch64-sdk  the SDK (libpocketllm.so, the whole client with TLS networking), its C and C++
#                examples and its tests, cross-built against Debian's arm64 libraries and run under
#                qemu-aarch64: the proxy for phones (needs scripts/setup.sh --cross-sdk)
#   aarch64-mobile  the mobile profile (-DPOCKETLLM_MOBILE=ON: no OpenSSL, Boost or network code,
#                third-party code static and hidden, armv8-a baseline) cross-built for aarch64; checks
#                the library's NEEDED list and exported symbols, then runs the SDK tests, the secure-
#                aggregation tests on the built-in suite (RFC vectors, whole rounds) and the C example
#                under qemu-aarch64 (scripts/check-mobile-lib.sh)
#
#   scripts/check-targets.sh [portable] [O0] [aarch64] [aarch64-sdk] [aarch64-mobile]   (default: all five)
set -euo pipefail
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
root="$(cd "$(dirname "$0")/.." && pwd)"
build_root="${POCKETLLM_BUILD_ROOT:-$root/build-targets}"
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(portable O0 aarch64 aarch64-sdk aarch64-mobile)

run_target() {
  local name="$1"; shift
  local dir="$build_root/$name"
  echo "== (${SECONDS} s) target $name: configure + build"
  cmake -S "$root" -B "$dir" -G Ninja -DPOCKETLLM_CORE_ONLY=ON -DPOCKETLLM_BUILD_BENCH=OFF "$@" > "$dir.configure.log" 2>&1 \
    || { cat "$dir.configure.log"; return 1; }
  cmake --build "$dir" -j2
  echo "== target $name: tests"
  ctest --test-dir "$dir" -j2 --output-on-failure --timeout 900
}

source "$root/scripts/parallel-jobs.sh"
mkdir -p "$build_root"
for t in "${targets[@]}"; do
  case "$t" in
    portable) run_target portable -DPOCKETLLM_PORTABLE=ON -DCMAKE_BUILD_TYPE=Release ;;
    O0) run_target O0 -DPOCKETLLM_NATIVE=OFF -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS=-O0 ;;
    aarch64)
      command -v aarch64-linux-gnu-g++ >/dev/null && command -v qemu-aarch64 >/dev/null \
        || { echo "aarch64 target needs g++-aarch64-linux-gnu and qemu-user: scripts/setup.sh --cross" >&2; exit 1; }
      run_target aarch64 -DCMAKE_TOOLCHAIN_FILE="$root/cmake/aarch64-toolchain.cmake" -DCMAKE_BUILD_TYPE=Release ;;
    aarch64-sdk)
      dpkg-query -W -f='${Status}' libssl-dev:arm64 2>/dev/null | grep -q "install ok installed" \
        || { echo "aarch64-sdk target needs Debian's arm64 libraries: scripts/setup.sh --cross-sdk" >&2; exit 1; }
      dir="$build_root/aarch64-sdk"
      echo "== (${SECONDS} s) target aarch64-sdk: configure + build (client, SDK, examples, their tests)"
      cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_TOOLCHAIN_FILE="$root/cmake/aarch64-toolchain.cmake" -DPOCKETLLM_AARCH64_STATIC=OFF \
        -DCMAKE_BUILD_TYPE=Release -DPOCKETLLM_BUILD_SERVER=OFF -DPOCKETLLM_BUILD_BENCH=OFF -DPOCKETLLM_UNITY_BUILD=ON > "$dir.configure.log" 2>&1 \
        || { cat "$dir.configure.log"; exit 1; }
      cmake --build "$dir" -j2 --target pocketllm_sdk_tests pocketllm_common_tests pocketllm_core_tests pocketllm_kernel_tests \
        personalize federated_device pocketllm
      file "$dir/bin/pocketllm_sdk_tests" | grep -q "ARM aarch64" || { echo "not an aarch64 binary" >&2; exit 1; }
      echo "== (${SECONDS} s) target aarch64-sdk: tests under qemu-aarch64, $(nproc) at a time"
      jobs_init "$dir/logs"
      # Quantized and half-precision kernels, GGUF models and the paired passes (the same bits on any thread
      # count on the Eigen path too) on each arm64 kernel path: qemu's default CPU has i8mm (the packed
      # smmla kernels) and dotprod (the sdot decode path); a Cortex-A76 has dotprod without i8mm (the
      # packed sdot kernels); a Cortex-A53 (Armv8.0) takes the portable path that compilers vectorise for NEON.
      jobs_add kernels-i8mm 2 qemu-aarch64 "$dir/bin/pocketllm_kernel_tests" "[quant],[gguf],[kernels],[pair]"
      jobs_add kernels-cortex-a76 2 qemu-aarch64 -cpu cortex-a76 "$dir/bin/pocketllm_kernel_tests" "[quant],[gguf]"
      jobs_add kernels-cortex-a53 2 qemu-aarch64 -cpu cortex-a53 "$dir/bin/pocketllm_kernel_tests" "[quant],[kernels]"
      jobs_add device-over-tls 1 "$root/scripts/aarch64-device-check.sh" "$dir/bin" "${POCKETLLM_BUILD_DIR:-$root/build}/bin"
      for t in pocketllm_sdk_tests pocketllm_core_tests pocketllm_common_tests; do
        jobs_add "$t" 2 qemu-aarch64 "$dir/bin/$t"
      done
      jobs_wait
      ;;
    aarch64-mobile)
      dpkg-query -W -f='${Status}' libpcre2-dev:arm64 2>/dev/null | grep -q "install ok installed" \
        || { echo "aarch64-mobile target needs Debian's arm64 PCRE2: scripts/setup.sh --cross-sdk" >&2; exit 1; }
      dir="$build_root/aarch64-mobile"
      echo "== (${SECONDS} s) target aarch64-mobile: configure + build (the mobile SDK, its tests, the C example)"
      cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_TOOLCHAIN_FILE="$root/cmake/aarch64-toolchain.cmake" -DPOCKETLLM_AARCH64_STATIC=OFF \
        -DCMAKE_BUILD_TYPE=Release -DPOCKETLLM_MOBILE=ON -DPOCKETLLM_UNITY_BUILD=ON > "$dir.configure.log" 2>&1 || { cat "$dir.configure.log"; exit 1; }
      cmake --build "$dir" -j2 --target pocketllm_sdk pocketllm_sdk_tests personalize pocketllm_secagg_tests
      "$root/scripts/check-mobile-lib.sh" "$dir/lib/libpocketllm.so" aarch64-linux-gnu-
      echo "== (${SECONDS} s) target aarch64-mobile: SDK tests, secure aggregation's built-in suite and the C example under qemu-aarch64"
      shared="${POCKETLLM_SHARED:-$root/../shared}"
      work="$(mktemp -d)"
      head -n 20 "$shared/data/tinystories/tinystories_sample.txt" > "$work/train.txt"
      tail -n 5 "$shared/data/tinystories/tinystories_sample.txt" > "$work/heldout.txt"
      jobs_init "$dir/logs"
      # The C example (personalize): fine-tunes stories260K for 20 steps and reports the held-out loss.
      jobs_add personalize 3 bash -c 'qemu-aarch64 "$0/bin/personalize" "$1/hub/karpathy/tinyllamas/stories260K" "$2/train.txt" \
        "$2/heldout.txt" "$2/run" 20 > "$2/out.txt" || exit 1
        tr "\r" "\n" < "$2/out.txt" | grep -v "^fine-tuning"; grep -q "held-out loss after fine-tuning" "$2/out.txt"' "$dir" "$shared" "$work"
      jobs_add pocketllm_sdk_tests 2 qemu-aarch64 "$dir/bin/pocketllm_sdk_tests"
      jobs_add pocketllm_secagg_tests 2 qemu-aarch64 "$dir/bin/pocketllm_secagg_tests" "[primitives],[quick]"
      jobs_wait
      rm -rf "$work"
      ;;
    *) echo "unknown target '$t' (portable, O0, aarch64, aarch64-sdk, aarch64-mobile)" >&2; exit 2 ;;
  esac
done
echo "== all targets passed: ${targets[*]} in ${SECONDS} s"
