# Sourced by the end-to-end test scripts: a temporary work directory removed at exit (with the process
# in $pid killed), check NAME CONDITION, and finish (the count of failures, and the exit status).
set -uo pipefail
support_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$support_dir/wait_port.sh"
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
# Starts BIN_DIR/pocketllm-server over TLS on a free loopback port in the current directory (cert.pem,
# admin, store.db, server.log; device rate limit off); sets pid and url, or fails the test.
start_test_server() {
  make_test_cert
  echo "federation-test-admin-token-000000" > admin
  "$1/pocketllm-server" --listen 127.0.0.1:0 --port-file port --tls-cert cert.pem --tls-key key.pem --store store.db \
    --admin-token-file admin --device-rate 0 2> server.log &
  pid=$!
  wait_for_port "$pid" server.log
  url="https://127.0.0.1:$(cat port)"
}
