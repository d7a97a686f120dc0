#!/usr/bin/env bash
# Old-snapshot load against the server (issue 14 finding 4): a task whose trainables are 16 MiB
# (4 Mi floats) with 5120 log entries; 12 concurrent requests for old versions while a client measures
# /healthz, then 20 latest-snapshot requests whose replies are never read, with the server's RSS.
#   bench/run_snapshot_stall.sh [BUILD_DIR]
set -euo pipefail
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(realpath "${1:-$root/build}")"
work="$(mktemp -d)"; pid=""
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"
"$root/tests/support/make_test_cert.sh"
echo "bench-snapshot-admin-token-0123456789" > admin
python3 - <<'PY'
import json, struct
n = 4 << 20
h = json.dumps({"w": {"dtype": "F32", "shape": [n], "data_offsets": [0, 4 * n]}}).encode()
h += b" " * ((8 - len(h) % 8) % 8)
with open("base.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + b"\0" * (4 * n))
PY
"$build/bin/pocketllm-server" --listen 127.0.0.1:0 --port-file port --tls-cert cert.pem --tls-key key.pem --store s.db \
  --admin-token-file admin --device-rate 0 --durability normal 2> server.log &
pid=$!
for _ in $(seq 100); do [ -s port ] && break; sleep 0.05; done
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
python3 - "$(cat port)" "$pid" "$work" <<'PY'
import json, socket, ssl, statistics, sys, threading, time
port, pid, work = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile="cert.pem"); ctx.check_hostname = False
admin = open("admin").read().strip()
def req(method, target, body=b"", bearer=None, read=True, timeout=120):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=timeout))
    head = f"{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {len(body)}\r\n"
    if bearer: head += f"Authorization: Bearer {bearer}\r\n"
    s.sendall(head.encode() + b"\r\n" + body)
    if not read: return s
    data = b""
    while True:
        c = s.recv(1 << 20)
        if not c: break
        data += c
    s.close()
    return data
def rss():
    return int([l for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")][0].split()[1]) // 1024
task = {"id": "big", "base_model_id": "a" * 64, "tau": 256, "min_submissions": 1, "goal_submissions": 1, "round_seconds": 3600,
        "base_weights": work + "/base.safetensors"}
req("POST", "/v1/admin/tasks", json.dumps(task).encode(), admin)
tok = json.loads(req("POST", "/v1/admin/enrolment-tokens", b'{"uses":1}', admin).split(b"\r\n\r\n", 1)[1])["token"]
cred = json.loads(req("POST", "/v1/enrol", json.dumps({"token": tok}).encode()).split(b"\r\n\r\n", 1)[1])["credential"]
for r in range(1, 21):
    body = json.dumps({"coeffs": [1e-4 * ((k % 7) - 3) for k in range(256)], "examples": 1, "base_version": 256 * (r - 1)}).encode()
    req("POST", f"/v1/tasks/big/rounds/{r}/submissions", body, cred)
    while b'"version":%d' % (256 * r) not in req("GET", "/v1/tasks/big", bearer=cred): time.sleep(0.05)
def healthz_ms(n, out):
    for _ in range(n):
        t0 = time.perf_counter(); req("GET", "/healthz"); out.append(1000 * (time.perf_counter() - t0)); time.sleep(0.02)
idle = []; healthz_ms(50, idle)
busy = []
old = [threading.Thread(target=req, args=("GET", f"/v1/tasks/big/snapshot?version={300 + 317 * i}"), kwargs={"bearer": cred}) for i in range(12)]
t0 = time.perf_counter()
for t in old: t.start()
probe = threading.Thread(target=healthz_ms, args=(50, busy)); probe.start()
for t in old: t.join()
old_s = time.perf_counter() - t0
probe.join()
q = lambda v: (statistics.median(v), max(v))
print(f"| /healthz idle | median {q(idle)[0]:.1f} ms, max {q(idle)[1]:.1f} ms |")
print(f"| /healthz during 12 old-version snapshot rebuilds ({old_s:.1f} s for all 12) | median {q(busy)[0]:.1f} ms, max {q(busy)[1]:.1f} ms |")
before = rss()
unread = [req("GET", "/v1/tasks/big/snapshot", bearer=cred, read=False) for _ in range(20)]
time.sleep(3)
print(f"| RSS before / with 20 unread latest-snapshot replies (16 MiB each) | {before} MiB / {rss()} MiB |")
for s in unread: s.close()
PY
