#!/usr/bin/env bash
# Installs exactly the Debian 12 packages pocketllm needs to build, test and run its demo.
# Idempotent: packages already present are skipped, and nothing is fetched when all are there.
# Works as root or through sudo. Benchmark peers (python3-torch) are installed by the bench scripts
# that need them, not here.
#
#   scripts/setup.sh            build + test dependencies (native)
#   scripts/setup.sh --cross    also the aarch64 cross toolchain and qemu-user (the cross-target check)
#   scripts/setup.sh --cross-sdk  --cross plus Debian's arm64 libraries the SDK links (multiarch)
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libboost-dev libeigen3-dev nlohmann-json3-dev catch2 libssl-dev libsqlite3-dev libpq-dev libpcre2-dev
  postgresql-15 haproxy chromium
  python3 openssl curl
  clang-14 libfuzzer-14-dev libclang-rt-14-dev
  openjdk-17-jdk-headless
)
for arg in "$@"; do
  case "$arg" in
    --cross) packages+=(g++-aarch64-linux-gnu qemu-user) ;;
    --cross-sdk)
      packages+=(g++-aarch64-linux-gnu qemu-user file libssl-dev:arm64 libpcre2-dev:arm64 libboost-dev:arm64)
      cross_sdk=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

if [ "${cross_sdk:-0}" = 1 ] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
  if [ "$(id -u)" -eq 0 ]; then dpkg --add-architecture arm64; else sudo dpkg --add-architecture arm64; fi
fi
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then sudo_cmd=(); else sudo_cmd=(sudo); fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
