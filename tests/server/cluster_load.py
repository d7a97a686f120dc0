#!/usr/bin/env python3
"""Load and checks for the replica cluster test (test_cluster.sh).

Devices (threads) take every round of one task through the load balancer for DURATION seconds, as a
real device does: read the current round, submit once (retrying through connection errors and 503s
with the same scalars), and read the log. Recorded: every acknowledged submission, every log prefix any
device read, and when the version grew. Then checked against the store (psql):
  - every acknowledged submission is in the store with the scalars that were sent;
  - every log prefix a device saw is a prefix of the final log (nothing applied was ever lost or changed);
  - rounds kept closing: the version grew after the last fault, and the longest pause is reported.
usage: cluster_load.py URL ADMIN_TOKEN PG_URL DEVICES DURATION_S OUT_JSON
"""
import http.client
import json
import random
import subprocess
import sys
import threading
import time
import urllib.parse

url, admin, pg_url, n_devices, duration, out_path = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
host = urllib.parse.urlparse(url)
TASK = "cluster"


def call(method, path, body=None, token=None, timeout=5):
    """One request on a fresh connection; (status, json or None). Connection errors: (0, None)."""
    try:
        c = http.client.HTTPConnection(host.hostname, host.port, timeout=timeout)
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = "Bearer " + token
        c.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        r = c.getresponse()
        data = r.read()
        c.close()
        try:
            return r.status, json.loads(data) if data else None
        except ValueError:
            return r.status, None
    except (OSError, http.client.HTTPException):
        return 0, None


def must(method, path, body=None, token=None):
    for _ in range(100):
        status, j = call(method, path, body, token)
        if 200 <= status < 300:
            return j
        time.sleep(0.1)
    raise SystemExit(f"{method} {path}: no 2xx after retries")


lock = threading.Lock()
acked = {}          # (round, device) -> coeffs
logs_seen = []      # (time, [entries as (seed, coeff)])
version_times = []  # (time, version) whenever a device saw a larger version
errors = {}


def note_error(kind):
    with lock:
        errors[kind] = errors.get(kind, 0) + 1


def device_loop(cred, name, stop_at, rng):
    done_rounds = set()
    while time.time() < stop_at:
        status, r = call("GET", f"/v1/tasks/{TASK}/rounds/current", token=cred)
        if status != 200:
            note_error(f"round_{status}")
            time.sleep(0.05)
            continue
        rid = r["round"]
        if r["state"] == "open" and rid not in done_rounds:
            coeffs = [round(rng.uniform(-1, 1), 6) for _ in r["seeds"]]
            body = {"coeffs": coeffs, "examples": 1 + rng.randrange(4), "base_version": r["base_version"]}
            code = ""
            for attempt in range(50):  # the same scalars until an answer that is not a failure of the path
                s, j = call("POST", f"/v1/tasks/{TASK}/rounds/{rid}/submissions", body, cred)
                if s in (200, 201):
                    with lock:
                        acked[(rid, name)] = coeffs
                    break
                if s in (0, 502, 503, 504):
                    note_error(f"submit_retry_{s}")
                    time.sleep(0.05)
                    continue
                code = (j or {}).get('error', {}).get('code', '')
                note_error(f"submit_{s}_{code}")
                break
            if code != "unknown_round":  # a round no store holds (yet): read the current one again
                done_rounds.add(rid)
        if rng.random() < 0.3:
            s, j = call("GET", f"/v1/tasks/{TASK}/log?since=0&limit=100000", token=cred)
            if s == 200:
                entries = [(e["seed"], e["coeff"]) for e in j["entries"]]
                with lock:
                    logs_seen.append((time.time(), entries))
                    if not version_times or len(entries) > version_times[-1][1]:
                        version_times.append((time.time(), len(entries)))
        time.sleep(0.02 + rng.random() * 0.05)


def main():
    tok = must("POST", "/v1/admin/enrolment-tokens", {"uses": n_devices}, admin)["token"]
    creds = [must("POST", "/v1/enrol", {"token": tok})["credential"] for _ in range(n_devices)]
    start = time.time()
    stop_at = start + duration
    threads = [threading.Thread(target=device_loop, args=(c, c.split(".")[0], stop_at, random.Random(i)), daemon=True)
               for i, c in enumerate(creds)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # The store's view, read straight from PostgreSQL.
    def sql(q):
        return subprocess.run(["psql", "-X", "-q", "-t", "-A", "-F", "\t", pg_url, "-c", q], check=True, capture_output=True, text=True).stdout
    stored = {}
    for line in sql(f"SELECT round, device, encode(coeffs, 'hex') FROM submissions WHERE task='{TASK}'").splitlines():
        rnd, dev, hexed = line.split("\t")
        import struct
        raw = bytes.fromhex(hexed)
        stored[(int(rnd), dev)] = list(struct.unpack(f"<{len(raw) // 4}f", raw))
    final = []
    for line in sql(f"SELECT seed, coeff_bits FROM log WHERE task='{TASK}' ORDER BY version").splitlines():
        seed, bits = line.split("\t")
        import struct
        final.append((int(seed) & (2**64 - 1), struct.unpack("<f", struct.pack("<I", int(bits) & 0xffffffff))[0]))
    lost = [k for k in acked if k not in stored]
    changed = [k for k in acked if k in stored and any(abs(a - b) > 1e-6 * max(1, abs(a)) for a, b in zip(acked[k], stored[k]))]
    final_hex = [(format(s, "016x"), c) for s, c in final]
    bad_prefix = 0
    for _, entries in logs_seen:
        if len(entries) > len(final_hex) or any(entries[i][0] != final_hex[i][0] or abs(entries[i][1] - final_hex[i][1]) > 1e-6 * max(1, abs(final_hex[i][1]))
                                                 for i in range(len(entries))):
            bad_prefix += 1
    applied = sql(f"SELECT COUNT(*) FROM rounds WHERE task='{TASK}' AND state='applied'").strip()
    gaps = [b[0] - a[0] for a, b in zip(version_times, version_times[1:])]
    result = {
        "acknowledged": len(acked), "lost": len(lost), "changed": len(changed), "log_reads": len(logs_seen),
        "log_reads_not_a_prefix": bad_prefix, "final_version": len(final), "applied_rounds": int(applied),
        "longest_pause_s": round(max(gaps), 2) if gaps else None, "version_times": [(round(t - start, 2), v) for t, v in version_times],
        "errors": errors, "start": start,
    }
    with open(out_path, "w") as f:
        json.dump(result, f)
    print(json.dumps({k: v for k, v in result.items() if k != "version_times"}))
    ok = not lost and not changed and bad_prefix == 0 and len(acked) > 0
    sys.exit(0 if ok else 1)


main()
