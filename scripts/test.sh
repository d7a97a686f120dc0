#!/usr/bin/env bash
# README command two: sets up a fresh Debian 12 machine, builds, and runs the whole test suite —
# unit and end-to-end tests of the native build, then the cross-target bit-exactness checks
# (portable, -O0, aarch64 under qemu) and the SDK cross-built for aarch64 with its tests under qemu,
# then the sanitizer builds (the whole suite under ASan + UBSan, the server and threads under TSan) and
# a short run of every fuzz harness, then the Docker image and the compose cluster profile under podman.
set -euo pipefail
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
root="$(cd "$(dirname "$0")/.." && pwd)"
start=$(date +%s)
timings=()
# Runs one stage and keeps its wall time: the summary at the end shows where CI's time goes (the
# budget is 45 minutes on 2 cores).
stage() {
  local name="$1" t0
  shift
  t0=$(date +%s)
  "$@"
  timings+=("$name $(( $(date +%s) - t0 )) s")
}
stage setup "$root/scripts/setup.sh" --cross-sdk
stage build "$root/scripts/build.sh"
stage ctest ctest --test-dir "${POCKETLLM_BUILD_DIR:-$root/build}" -j"$(nproc)" --output-on-failure --timeout 1200
stage targets "$root/scripts/check-targets.sh"
stage sanitizers "$root/scripts/test-sanitizers.sh"
stage podman "$root/scripts/docker-check.sh"  # the image (podman) and the compose cluster profile
echo "test.sh: stages: $(IFS=,; echo "${timings[*]}" | sed 's/,/, /g')"
echo "test.sh: all passed in $(( $(date +%s) - start )) s"
