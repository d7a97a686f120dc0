#!/usr/bin/env bash
# The aarch64 build of examples/federated_device (the SDK's C++ layer over the C ABI), run under
# qemu-aarch64, joins a federated task on a native pocketllm-server over TLS on loopback: enrols,
# personalises, takes part in two rounds, syncs, evaluates and generates.
#   scripts/aarch64-device-check.sh AARCH64_BIN_DIR NATIVE_BIN_DIR
set -euo pipefail
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
arm_bin="$(realpath "$1")"; native_bin="$(realpath "$2")"
root="$(cd "$(dirname "$0")/.." && pwd)"
shared="${POCKETLLM_SHARED:-$root/../shared}"
model="$shared/hub/karpathy/tinyllamas/stories260K"
if [ ! -x "$native_bin/pocketllm-server" ] || [ ! -e "$model" ]; then
  echo "aarch64 device check skipped: needs $native_bin/pocketllm-server and $model" >&2
  exit 1
fi
work="$(mktemp -d)"; pid=""
cleanup() { if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"
source "$root/tests/support/local_server.sh"
start_local_server "$native_bin" "$model" arm 1
A=(-H "Authorization: Bearer $(cat admin)")
printf '%s\n' "the cat sat on the mat" "a bird sang in the tree" "the dog ran to the park" "she read a book" > data.txt
qemu-aarch64 "$arm_bin/federated_device" "$url" cert.pem "$token" arm "$model" data.txt state 2 | tee device.out
grep -q "submitted to round 2" device.out
for _ in $(seq 50); do  # round 2 closes at its deadline
  version=$(curl -sS --cacert cert.pem "${A[@]}" "$url/v1/tasks/arm" | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
  [ "$version" -ge 4 ] && break
  sleep 0.1
done
[ "$version" -ge 4 ] || { echo "expected the server log to hold the device's two rounds, version $version" >&2; exit 1; }
echo "aarch64 device check passed: two rounds over TLS from an arm64 build of the SDK; server log version $version"
