#!/usr/bin/env bash
# Installs exactly the Debian 12 packages pocketllm needs to build, test and run its demo.
# Idempotent: packages already present are skipped, and nothing is fetched when all are there.
# Works as root or through sudo. Benchmark peers (python3-torch) are installed by the bench scripts
# that need them, not here.
#
#   scripts/setup.sh            build + test dependencies (native)
#   scripts/setup.sh --cross    also the aarch64 cross toolchain and qemu-user (the cross-target check)
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libboost-dev libeigen3-dev nlohmann-json3-dev catch2 libssl-dev libsqlite3-dev libpcre2-dev
  python3 openssl curl
)
for arg in "$@"; do
  case "$arg" in
    --cross) packages+=(g++-aarch64-linux-gnu qemu-user) ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

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
