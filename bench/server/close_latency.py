#!/usr/bin/env python3
"""Round close latency: N devices submit to one round of a fresh task, then the operator closes it;
the time from the close request until the round reads as applied (any server behind URL) is printed.
usage: close_latency.py URL ADMIN_TOKEN TASK_ID DEVICES   (TLS certificates are not verified: loopback)"""
import http.client, json, ssl, sys, time, urllib.parse
url, admin, task, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
u = urllib.parse.urlparse(url)
ctx = ssl._create_unverified_context()
conn = None
def call(method, path, body=None, token=None):
    global conn
    for _ in range(20):
        try:
            if conn is None:
                conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=30)
            h = {"Content-Type": "application/json"}
            if token: h["Authorization"] = "Bearer " + token
            conn.request(method, path, json.dumps(body) if body is not None else None, h)
            r = conn.getresponse(); data = r.read()
            return r.status, json.loads(data) if data else None
        except (OSError, http.client.HTTPException):
            conn = None; time.sleep(0.05)
    raise SystemExit(f"{method} {path}: no answer")
model = "e" * 64
s, _ = call("POST", "/v1/admin/tasks", {"id": task, "base_model_id": model, "tau": 8, "round_seconds": 86400, "min_submissions": 1}, admin)
assert s == 201, s
_, tok = call("POST", "/v1/admin/enrolment-tokens", {"uses": n}, admin)
t0 = time.time()
creds = [call("POST", "/v1/enrol", {"token": tok["token"]})[1]["credential"] for _ in range(n)]
t1 = time.time()
for i, c in enumerate(creds):
    s, _ = call("POST", f"/v1/tasks/{task}/rounds/1/submissions", {"coeffs": [0.001 * (i % 7)] * 8, "examples": 1, "base_version": 0}, c)
    assert s in (200, 201), s
t2 = time.time()
start = time.time()
s, _ = call("POST", f"/v1/admin/tasks/{task}/rounds/1/close", None, admin)
assert s == 200, s
while True:
    s, r = call("GET", f"/v1/admin/tasks/{task}/rounds/1", None, admin)
    if r and r.get("state") == "applied" and r.get("submissions") == n: break
    if r and r.get("state") not in ("open", "applied"): raise SystemExit(f"round ended {r.get('state')}")
    time.sleep(0.005)
print(json.dumps({"devices": n, "close_ms": round((time.time() - start) * 1000, 1),
                  "enrol_per_s": round(n / (t1 - t0)), "submit_per_s_one_connection": round(n / (t2 - t1))}))
