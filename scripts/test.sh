#!/usr/bin/env bash
# README command two: sets up a fresh Debian 12 machine, builds, and runs the whole test suite —
# unit and end-to-end tests of the native build, then the cross-target bit-exactness checks
# (portable, -O0, aarch64 under qemu) and the SDK cross-built for aarch64 with its tests under qemu,
# then the sanitizer builds (the whole suite under ASan + UBSan, the server and threads under TSan) and
# a short run of every fuzz harness, then the Docker image and the compose cluster profile under podman.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
start=$(date +%s)
"$root/scripts/setup.sh" --cross-sdk
"$root/scripts/build.sh"
ctest --test-dir "${POCKETLLM_BUILD_DIR:-$root/build}" -j"$(nproc)" --output-on-failure --timeout 1200
"$root/scripts/check-targets.sh"
"$root/scripts/test-sanitizers.sh"
"$root/scripts/docker-check.sh"  # the image (podman) and the compose cluster profile
echo "test.sh: all passed in $(( $(date +%s) - start )) s"
