#!/usr/bin/env bash
# One client cannot take the server offline (issue 14 finding 3): with the fd limit Docker uses (1024),
# 1200 hostile TLS connections from one address (never finishing a request: TCP only, half a
# handshake, half a head) are held or refused at accept, a 413 followed by a byte-at-a-time trickle is
# cut off, and a legitimate client on another address keeps getting /healthz answers throughout;
# the server does not spin (CPU) while at its caps.
#   test_connections.sh POCKETLLM_SERVER_BINARY
source "$(dirname "$0")/../support/test_lib.sh"
server_bin="$(realpath "$1")"
cd "$work"
make_test_cert
echo "connections-test-admin-token-0123456789" > admin
( ulimit -n 1024 2>/dev/null || true; exec "$server_bin" --listen 127.0.0.1:0 --port-file port --tls-cert cert.pem --tls-key key.pem --store s.db \
    --admin-token-file admin --max-body-bytes 4096 --drain-timeout 2 2> server.log ) &
pid=$!
wait_for_port "$pid" server.log
port=$(cat port)
check "the server states its connection caps" 'grep -Eq "at most [0-9]+ connections \(256 per address\)" server.log'

# The attacker: 1000 connections from 127.0.0.2, kept open; and a trickle after a 413.
python3 - "$port" > hostile.out 2>&1 <<'PY' &
import resource, socket, ssl, sys, time
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY and hard < 4096 else 4096, hard))
port = int(sys.argv[1])
held = []
for i in range(min(1200, resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 50)):
    s = socket.socket(); s.bind(("127.0.0.2", 0))
    try:
        s.connect(("127.0.0.1", port))
        if i % 3 == 1: s.send(b"\x16\x03\x01\x00\x05")      # half a TLS ClientHello
        held.append(s)
    except OSError:
        pass
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
t = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.3", 0)))
t.sendall(b"POST /v1/enrol HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n")
t.settimeout(1); print("413 reply:", t.recv(200).split(b"\r\n")[0].decode(), flush=True)
start, cut = time.time(), None
while time.time() - start < 8:                          # one byte every 0.5 s, forever
    try:
        t.send(b"x"); time.sleep(0.5)
    except OSError:
        cut = time.time() - start; break
print("opened", len(held), "trickle cut after", cut, flush=True)
time.sleep(30)
PY
hostile=$!
sleep 3
ok=0; slow=0
for i in $(seq 20); do
  t0=$(date +%s%N)
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert cert.pem "https://127.0.0.1:$port/healthz")
  [ "$code" = 200 ] && ok=$((ok + 1))
  [ $(( ($(date +%s%N) - t0) / 1000000 )) -gt 1000 ] && slow=$((slow + 1))
done
check "a legitimate client got 20 of 20 /healthz answers during the attack ($ok)" '[ $ok -eq 20 ]'
check "none of them took over a second ($slow slow)" '[ $slow -eq 0 ]'
cpu0=$(awk '{print $14 + $15}' /proc/$pid/stat); sleep 2; cpu1=$(awk '{print $14 + $15}' /proc/$pid/stat)
check "the server idles at its caps (CPU ticks in 2 s: $((cpu1 - cpu0)))" '[ $((cpu1 - cpu0)) -lt 60 ]'
for _ in $(seq 40); do grep -q "trickle cut" hostile.out && break; sleep 0.25; done
check "the 413 was answered" 'grep -q "413 reply: HTTP/1.1 413" hostile.out'
check "the trickle after the 413 was cut within the drain timeout" 'grep -Eq "trickle cut after [0-3]\." hostile.out'
kill "$hostile" 2>/dev/null; wait "$hostile" 2>/dev/null
kill -TERM "$pid"; wait "$pid"; status=$?; pid=""
check "SIGTERM exits 0 after the attack" '[ $status -eq 0 ]'
[ $fails -eq 0 ] || { cat hostile.out; tail -5 server.log; }
finish
