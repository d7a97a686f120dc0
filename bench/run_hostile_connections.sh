#!/usr/bin/env bash
# Latency a legitimate client sees for GET /healthz (new TLS connection per request, as a device
# reconnecting) with and without 1200 hostile connections from one address held open, in the same run,
# under the fd limit Docker uses (1024). Prints p50/p99 in ms for both.
#   bench/run_hostile_connections.sh [BUILD_DIR] [REQUESTS]
set -euo pipefail
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(realpath "${1:-$root/build}")"; n="${2:-300}"
work="$(mktemp -d)"; pid=""
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"
"$root/tests/support/make_test_cert.sh"
echo "bench-hostile-admin-token-0123456789" > admin
( ulimit -n 1024 2>/dev/null || true; exec "$build/bin/pocketllm-server" --listen 127.0.0.1:0 --port-file port --tls-cert cert.pem --tls-key key.pem \
    --store s.db --admin-token-file admin 2> server.log ) &
pid=$!
for _ in $(seq 100); do [ -s port ] && break; sleep 0.05; done
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
python3 - "$(cat port)" "$n" <<'PY'
import resource, socket, ssl, statistics, sys, time
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY and hard < 4096 else 4096, hard))
port, n = int(sys.argv[1]), int(sys.argv[2])
ctx = ssl.create_default_context(cafile="cert.pem"); ctx.check_hostname = False
def sample():
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reply = s.recv(100); s.close()
        assert reply.startswith(b"HTTP/1.1 200"), reply
        out.append(1000 * (time.perf_counter() - t0))
    q = statistics.quantiles(out, n=100)
    return statistics.median(out), q[98]
base = sample()
held = []
for i in range(1200):
    s = socket.socket(); s.bind(("127.0.0.2", 0))
    try: s.connect(("127.0.0.1", port)); held.append(s)
    except OSError: pass
time.sleep(1)
attacked = sample()
print(f"| no hostile connections | {base[0]:.2f} ms | {base[1]:.2f} ms |")
print(f"| 1200 hostile connections from one address ({len(held)} opened) | {attacked[0]:.2f} ms | {attacked[1]:.2f} ms |")
PY
