#!/usr/bin/env bash
# Configures and builds pocketllm (native instruction set, Release) into build/.
#   scripts/build.sh [extra cmake -D options]      e.g. -DPOCKETLLM_PORTABLE=ON for a portable binary
set -euo pipefail
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${POCKETLLM_BUILD_DIR:-$root/build}"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" > /dev/null
cmake --build "$build" -j"$(nproc)"
