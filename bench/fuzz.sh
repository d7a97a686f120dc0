#!/usr/bin/env bash
# A fuzzing campaign: builds the libFuzzer harnesses (clang-14, ASan + UBSan) and runs each for
# MINUTES minutes on its corpus (seeded by tests/fuzz/make_corpus.py, grown across campaigns in
# build-fuzz/corpus), two at a time; prints executions and crashes per harness. A crash leaves its
# input in build-fuzz/crashes/ — make it a regression test.
#   bench/fuzz.sh [MINUTES] [HARNESS…]
set -euo pipefail
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
root="$(cd "$(dirname "$0")/.." && pwd)"
minutes="${1:-5}"; shift || true
dir="$root/build-fuzz"
CC=clang-14 CXX=clang++-14 cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPOCKETLLM_FUZZ=ON \
  -DPOCKETLLM_BUILD_TESTS=OFF -DPOCKETLLM_BUILD_BENCH=OFF -DPOCKETLLM_BUILD_EXAMPLES=OFF \
  "-DCMAKE_CXX_FLAGS=-fsanitize=address,undefined,fuzzer-no-link -fno-sanitize-recover=all" \
  "-DCMAKE_C_FLAGS=-fsanitize=address,undefined,fuzzer-no-link" > "$dir.configure.log" 2>&1
cmake --build "$dir" -j"$(nproc)" > /dev/null
harnesses=("$@"); [ ${#harnesses[@]} -eq 0 ] && harnesses=($(cd "$dir/fuzz" && ls fuzz_*))
[ -d "$dir/corpus" ] || python3 "$root/tests/fuzz/make_corpus.py" "$dir/corpus" "$root/tests/fixtures" "${POCKETLLM_SHARED:-$root/../shared}"
mkdir -p "$dir/crashes"
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1); $minutes min per harness"
run() {
  local n="$1"; mkdir -p "$dir/corpus/$n"
  "$dir/fuzz/$n" -max_total_time=$((minutes * 60)) -max_len=65536 -rss_limit_mb=4096 -artifact_prefix="$dir/crashes/$n-" \
    "$dir/corpus/$n" > "$dir/$n.campaign.log" 2>&1 || true
  local execs; execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$dir/$n.campaign.log" | grep -o '[0-9]*$' || true)
  [ -n "$execs" ] || execs=$(grep -oE '#[0-9]+' "$dir/$n.campaign.log" | tail -1 | tr -d '#')
  local crashes; crashes=$(ls "$dir/crashes" | grep -c "^$n-" || true)
  echo "| $n | $execs | $crashes |"
}
echo "| harness | executions | crash inputs |"
echo "|---|---|---|"
for ((i = 0; i < ${#harnesses[@]}; i += 2)); do
  run "${harnesses[i]}" &
  [ $((i + 1)) -lt ${#harnesses[@]} ] && run "${harnesses[i + 1]}" &
  wait
done
