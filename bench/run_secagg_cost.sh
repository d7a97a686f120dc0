#!/usr/bin/env bash
# The cost of secure aggregation per round (issue 20, docs/secagg.md §6): bench_secagg at n = 100, 1 000
# and 10 000 in-process devices (SecAgg+ graph, a fifth dropping after sharing keys) against the plain
# protocol in the same run; medians of REPEAT rounds, appended to bench/results/secagg_cost.jsonl.
#   bench/run_secagg_cost.sh [BUILD_DIR] [REPEAT]
set -euo pipefail
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(realpath "${1:-$root/build}")"
repeat="${2:-3}"
[ -x "$build/bin/bench_secagg" ] || cmake --build "$build" --target bench_secagg
mkdir -p "$root/bench/results"
"$build/bin/bench_secagg" --n 100,1000,10000 --repeat "$repeat" --json "$root/bench/results/secagg_cost.jsonl"
