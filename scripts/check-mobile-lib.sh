#!/usr/bin/env bash
# Checks a mobile-profile libpocketllm.so (docs/mobile.md): it needs only the C and C++ runtimes
# (no OpenSSL, PCRE2, Boost or any other shared library), exports only the C ABI (pllm_*), carries no
# network code, and has a versioned SONAME. Prints its size stripped.
#   scripts/check-mobile-lib.sh LIB [TOOL_PREFIX]     e.g. LIB aarch64-linux-gnu-
set -euo pipefail
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
lib="$(realpath "$1")"; prefix="${2:-}"
fail() { echo "check-mobile-lib: $lib: $*" >&2; exit 1; }
readelf_out="$("${prefix}readelf" -d "$lib")"
needed=$(printf '%s\n' "$readelf_out" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort)
allowed='^(libc\.so\.6|libm\.so\.6|libstdc\+\+\.so\.6|libgcc_s\.so\.1|ld-linux-aarch64\.so\.1|ld-linux-x86-64\.so\.2)$'
for n in $needed; do
  [[ "$n" =~ $allowed ]] || fail "needs $n (only libc, libm, libstdc++ and libgcc are allowed)"
done
soname=$(printf '%s\n' "$readelf_out" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[[ "$soname" =~ ^libpocketllm\.so\.[0-9]+$ ]] || fail "SONAME '$soname' is not versioned (libpocketllm.so.N)"
exports=$("${prefix}nm" -D --defined-only "$lib" | awk '{print $3}' | sort -u)
bad=$(printf '%s\n' "$exports" | grep -v '^pllm_' || true)
[ -z "$bad" ] || fail "exports symbols outside the C ABI: $(echo "$bad" | head -5 | tr '\n' ' ')"
count=$(printf '%s\n' "$exports" | grep -c '^pllm_')
[ "$count" -ge 40 ] || fail "exports only $count pllm_ symbols"
# No network or TLS code compiled in (symbol names survive in the static archives' local symbols
# only when unstripped, so check the strings of the whole file).
if strings "$lib" | grep -Eq 'OpenSSL|SSL_CTX|boost::asio|BoostBeast|getaddrinfo'; then
  fail "contains network/TLS code ($(strings "$lib" | grep -E 'OpenSSL|SSL_CTX|boost::asio|getaddrinfo' | head -3 | tr '\n' ' '))"
fi
tmp="$(mktemp)"
"${prefix}strip" -o "$tmp" "$lib"
size=$(stat -c %s "$tmp"); rm -f "$tmp"
echo "check-mobile-lib: ok — $(basename "$lib"): NEEDED $(echo $needed | tr '\n' ' '); SONAME $soname; $count pllm_ exports, nothing else; stripped $((size / 1024)) KiB"
