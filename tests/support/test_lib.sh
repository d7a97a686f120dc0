# Sourced by the end-to-end test scripts: a temporary work directory removed at exit (with the process
# in $pid killed), check NAME CONDITION, and finish (the count of failures, and the exit status).
set -uo pipefail
support_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="$(mktemp -d)"
pid=""
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
fails=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); fi; }
finish() {
  echo "$fails failed"
  [ "$fails" -eq 0 ]
}
# A self-signed certificate for 127.0.0.1 in the current directory (cert.pem, key.pem).
make_test_cert() { "$support_dir/make_test_cert.sh"; }
