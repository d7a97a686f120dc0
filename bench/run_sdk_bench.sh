#!/usr/bin/env bash
# The SDK's own figures for README and docs/mobile.md (issue: a mobile SDK an app can ship):
#   - library size: the desktop build and the mobile profile for aarch64 (stripped)
#   - load time and RSS through the C ABI: stories260K and a 125M-parameter model (OPT-125m shape,
#     random weights, written by bench_memory), one process per load, median of N
#   - cancellation latency: request -> return for load, evaluate, tokenise, enrol
#   - the cost of the cancellation checks on an evaluation (with a flag installed vs none)
#   - JNI call overhead (host JVM)
# Prints the CPU model first. Needs a build (scripts/build.sh) and, for the mobile size, the aarch64-mobile
# target of scripts/check-targets.sh.
#   bench/run_sdk_bench.sh [LOADS]
set -euo pipefail
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${POCKETLLM_BUILD_DIR:-$root/build}"
shared="${POCKETLLM_SHARED:-$root/../shared}"
loads="${1:-5}"
model="$shared/hub/karpathy/tinyllamas/stories260K"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores"
cmake --build "$build" --target bench_sdk bench_memory pocketllm_jni pocketllm_java > /dev/null

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
field() { python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())[sys.argv[1]])' "$1"; }

strip -o "$work/desktop.so" "$build/lib/libpocketllm.so"
echo "size: desktop libpocketllm.so (x86-64, this build's ISA, stripped): $(( $(stat -c %s "$work/desktop.so") / 1024 )) KiB"
mobile="$root/build-targets/aarch64-mobile/lib/libpocketllm.so"
if [ -f "$mobile" ]; then
  aarch64-linux-gnu-strip -o "$work/mobile.so" "$mobile"
  echo "size: mobile libpocketllm.so (aarch64, armv8-a, stripped): $(( $(stat -c %s "$work/mobile.so") / 1024 )) KiB"
else
  echo "size: mobile aarch64 library not built (scripts/check-targets.sh aarch64-mobile)"
fi

"$build/bin/bench_memory" write --arch opt-125m --dtype f32 --out "$work/opt125m" > /dev/null
for m in "$model" "$work/opt125m"; do
  for _ in $(seq "$loads"); do "$build/bin/bench_sdk" load "$m"; done > "$work/load.jsonl"
  params=$(head -1 "$work/load.jsonl" | field params)
  ms=$(while read -r l; do echo "$l" | field load_ms; done < "$work/load.jsonl" | median)
  rss=$(while read -r l; do echo "$l" | field rss_after_kib; done < "$work/load.jsonl" | median)
  peak=$(while read -r l; do echo "$l" | field peak_rss_kib; done < "$work/load.jsonl" | median)
  echo "load: $(basename "$m") ($params parameters): median of $loads: ${ms} ms, RSS after load ${rss} KiB, peak ${peak} KiB"
done

echo "cancel (stories260K for evaluate/tokenise/enrol; the 125M model for load):"
"$build/bin/bench_sdk" cancel "$work/opt125m" | head -1
"$build/bin/bench_sdk" cancel "$model" | tail -n +2
"$build/bin/bench_sdk" abort-cost "$model" 9

javac -d "$work/jvm" -cp "$build/lib/pocketllm.jar" "$root/bench/jvm/JniBench.java"
java -Djava.library.path="$build/lib" -cp "$build/lib/pocketllm.jar:$work/jvm" JniBench "$model"
