#!/usr/bin/env bash
# Sanitizer and fuzzing checks, part of the README test command (scripts/test.sh):
#   asan   clang-14 build of everything with AddressSanitizer + UndefinedBehaviorSanitizer (errors are
#          fatal) and libFuzzer coverage: the whole test suite, then every fuzz harness for FUZZ_RUNS
#          executions (default 20000) on its seed corpus (tests/fuzz/make_corpus.py)
#   tsan   ThreadSanitizer build of the server, the thread pool, the federation tests and a short simulation
#   scripts/test-sanitizers.sh [asan] [tsan]       (default: both)
set -euo pipefail
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
root="$(cd "$(dirname "$0")/.." && pwd)"
build_root="${POCKETLLM_BUILD_ROOT:-$root/build-sanitizers}"
shared="${POCKETLLM_SHARED:-$root/../shared}"
runs="${FUZZ_RUNS:-20000}"
steps=("$@"); [ ${#steps[@]} -eq 0 ] && steps=(asan tsan)
command -v clang++-14 >/dev/null || { echo "needs clang-14 and libfuzzer-14-dev: scripts/setup.sh" >&2; exit 1; }
source "$root/scripts/parallel-jobs.sh"
mkdir -p "$build_root"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

configure() {  # dir, flags, flags of the test programs' own code, cmake arguments…
  local dir="$1" flags="$2" test_flags="$3"; shift 3
  # Libraries in unity batches, test programs' own code at -O0: the sanitizers watch the libraries, and
  # the instrumented -O1 test TUs took twice as long to compile (the full suite then also runs against a
  # unity build of the libraries, the native one against per-file TUs).
  CC=clang-14 CXX=clang++-14 cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPOCKETLLM_BUILD_BENCH=OFF \
    -DPOCKETLLM_UNITY_BUILD=ON "-DPOCKETLLM_TEST_OPT=$test_flags" \
    "-DCMAKE_C_FLAGS=$flags" "-DCMAKE_CXX_FLAGS=$flags" "$@" > "$dir.configure.log" 2>&1 || { cat "$dir.configure.log"; return 1; }
}

for step in "${steps[@]}"; do
  case "$step" in
    asan)
      dir="$build_root/asan"
      echo "== asan: configure + build (ASan + UBSan + libFuzzer coverage, clang-14)"
      # Examples off: the C example links with the C driver, which lacks the C++ part of the UBSan runtime.
      # The libraries carry libFuzzer's coverage (the harnesses need it there); the test programs' own code
      # does not, and keeps only line tables for the reports' stacks (a test TU compiles ~30 % faster).
      configure "$dir" "-fsanitize=address,undefined,fuzzer-no-link -fno-sanitize-recover=all -fno-omit-frame-pointer" \
        "-O0;-fno-sanitize=fuzzer-no-link;-gline-tables-only" -DPOCKETLLM_FUZZ=ON -DPOCKETLLM_BUILD_EXAMPLES=OFF
      cmake --build "$dir" -j"$(nproc)"
      echo "== asan: built at ${SECONDS} s; the test suite"
      ASAN_OPTIONS="detect_leaks=1:abort_on_error=0" ctest --test-dir "$dir" -j"$(nproc)" --output-on-failure --timeout 1800
      echo "== fuzz (at ${SECONDS} s): $runs executions per harness"
      corpus="$build_root/corpus"
      rm -rf "$corpus"; python3 "$root/tests/fuzz/make_corpus.py" "$corpus" "$root/tests/fixtures" "$shared"
      jobs_init "$build_root/fuzz-logs"
      for fuzzer in "$dir"/fuzz/fuzz_*; do
        name="$(basename "$fuzzer")"
        mkdir -p "$corpus/$name"
        jobs_add "$name" 1 "$fuzzer" -seed=1 -runs="$runs" -max_len=65536 -rss_limit_mb=4096 "$corpus/$name"  # ends on "Done N runs"
      done
      jobs_wait
      ;;
    tsan)
      dir="$build_root/tsan"
      echo "== tsan (at ${SECONDS} s): configure + build (server, thread pool, federation, SDK cancellation and simulator tests)"
      configure "$dir" "-fsanitize=thread -fno-omit-frame-pointer" "-O0;-gline-tables-only"
      cmake --build "$dir" -j"$(nproc)" --target pocketllm_server_tests pocketllm_core_tests pocketllm_federation_tests pocketllm-sim \
        pocketllm_sdk_tests
      jobs_init "$build_root/tsan-logs"
      for t in pocketllm_server_tests pocketllm_federation_tests pocketllm_sdk_tests pocketllm_core_tests; do
        jobs_add "$t" 2 env TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1" "$dir/bin/$t"
      done
      model="$shared/hub/karpathy/tinyllamas/stories260K"
      if [ -f "$model/stories260K.bin" ]; then  # the simulator: devices, thread pool and in-process server together
        sed -n '2,121p' "$shared/data/sst2/glue_sst2_dev.tsv" | cut -f1 > "$build_root/sim-train.txt"
        jobs_add pocketllm-sim 1 env TSAN_OPTIONS="halt_on_error=1" "$dir/bin/pocketllm-sim" --model "$model" \
          --data "$build_root/sim-train.txt" --devices 4 --rounds 2 --tau 2 --batch-size 2 --max-length 24 --threads 2 \
          --out "$build_root/sim-tsan"
      else
        echo "skip pocketllm-sim under TSan: $model not found"
      fi
      jobs_wait
      ;;
    *) echo "unknown step '$step' (asan, tsan)" >&2; exit 2 ;;
  esac
done
echo "== sanitizers passed: ${steps[*]} in ${SECONDS} s"
