#!/usr/bin/env bash
# SIGTERM ends the server with exit status 0 whatever its connections are doing: idle keep-alive,
# half a request head, half a body, and draining after a 413 — over TLS and over plain TCP.
#   test_shutdown.sh POCKETLLM_SERVER_BINARY
source "$(dirname "$0")/../support/test_lib.sh"
server_bin="$(realpath "$1")"
cd "$work"
make_test_cert
echo "shutdown-test-admin-token-0123456789" > admin

# Opens connections in each state and keeps them open until killed.
hold_connections() {  # port tls
  python3 - "$1" "$2" <<'PY' &
import socket, ssl, sys, time
port, tls = int(sys.argv[1]), sys.argv[2] == "tls"
def conn():
    s = socket.create_connection(("127.0.0.1", port))
    if tls:
        ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
        s = ctx.wrap_socket(s)
    return s
held = []
for state in ("idle", "head", "body", "drain"):
    s = conn()
    if state == "idle":
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); s.recv(4096)      # keep-alive, now idle
    elif state == "head":
        s.sendall(b"POST /v1/enrol HTTP/1.1\r\nHost: x\r\n")                       # head not finished
    elif state == "body":
        s.sendall(b"POST /v1/enrol HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"tok")  # body half sent
    else:
        s.sendall(b"POST /v1/enrol HTTP/1.1\r\nHost: x\r\nContent-Length: 9999999\r\n\r\n" + b"x" * 5000)  # 413, draining
    held.append(s)
print("held", flush=True)
time.sleep(60)
PY
}

for mode in tls plain; do
  rm -f port
  if [ $mode = tls ]; then flags=(--tls-cert cert.pem --tls-key key.pem); else flags=(--insecure); fi
  "$server_bin" --listen 127.0.0.1:0 --port-file port "${flags[@]}" --store "store-$mode.db" --admin-token-file admin \
    --max-body-bytes 4096 --shutdown-grace 1 2> "server-$mode.log" &
  pid=$!
  wait_for_port "$pid" "server-$mode.log"
  hold_connections "$(cat port)" $mode > "held-$mode" 2>&1
  holder=$!
  for _ in $(seq 100); do grep -q held "held-$mode" && break; sleep 0.05; done
  check "$mode: four connections in four states are open" 'grep -q held "held-$mode"'
  kill -TERM "$pid"
  wait "$pid"; status=$?
  pid=""
  kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
  check "$mode: SIGTERM exits 0 (got $status)" '[ $status -eq 0 ]'
  check "$mode: the server logged a clean stop" 'grep -q "stopped" "server-$mode.log"'
done
finish
