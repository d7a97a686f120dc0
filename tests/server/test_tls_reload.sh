#!/usr/bin/env bash
# A renewed certificate goes live without a restart: on SIGHUP the server reads its certificate and key
# again; new connections get the new certificate, a connection opened before keeps working, a reload
# that fails (a key of another certificate, a cut-off file) keeps the certificate in use and says why,
# /metrics shows the served certificate's expiry and counts reloads, and SIGHUP never stops the server
# (plain HTTP included).
#   test_tls_reload.sh POCKETLLM_SERVER_BINARY
source "$(dirname "$0")/../support/test_lib.sh"
server_bin="$(realpath "$1")"
cd "$work"
cert() {  # cert NAME CN DAYS: NAME.crt, NAME.key for 127.0.0.1
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$3" -subj "/CN=$2" \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$1.key" -out "$1.crt" > /dev/null 2>&1
}
cert first first.test 365
cert second second.test 5
cat first.crt second.crt > both.crt  # curl trusts either
cp first.crt served.crt; cp first.key served.key
echo "tls-reload-admin-token-0123456789" > admin
"$server_bin" --listen 127.0.0.1:0 --port-file port --tls-cert served.crt --tls-key served.key --store store.db \
  --admin-token-file admin 2> server.log &
pid=$!
wait_for_port "$pid" server.log
port=$(cat port); url="https://127.0.0.1:$port"
served_cn() { openssl s_client -connect "127.0.0.1:$port" < /dev/null 2> /dev/null | openssl x509 -noout -subject 2> /dev/null | sed 's/.*CN *= *//'; }
metric() { curl -sS --cacert both.crt "$url/metrics" | awk -v n="$1" '$1 == n { print $2 }'; }
enddate() { date -u -d "$(openssl x509 -noout -enddate -in "$1" | cut -d= -f2)" +%s; }
hup_and_wait() {  # hup_and_wait PATTERN [LOG]: sends SIGHUP, waits for a new log line matching PATTERN
  local log=${2:-server.log} seen
  seen=$(wc -l < "$log")
  kill -HUP "$pid"
  for _ in $(seq 100); do tail -n +"$((seen + 1))" "$log" | grep -q "$1" && return 0; sleep 0.05; done
  return 1
}

spki_pin() {  # the key pin of a certificate, computed the usual way with openssl
  echo "sha256/$(openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)"
}
check "the start-up log names the served certificate, its key pin and its expiry" \
  'grep -q "serving the TLS certificate CN=first.test (key pin $(spki_pin first.crt)), valid until 20" server.log'
check "a connection gets the first certificate" '[ "$(served_cn)" = first.test ]'
check "/metrics gives its notAfter" '[ "$(metric pocketllm_tls_certificate_expiry_timestamp_seconds)" = "$(enddate first.crt)" ]'

# A keep-alive connection opened now, used again after the reload (an authenticated request keeps it
# open between requests).
cat > keepalive.py << 'EOF'
import http.client, os, ssl, sys, time
ctx = ssl.create_default_context(cafile="both.crt")
conn = http.client.HTTPSConnection("127.0.0.1", int(sys.argv[1]), context=ctx)
headers = {"Authorization": "Bearer " + open("admin").read().strip()}
statuses = []
conn.request("GET", "/v1/admin/devices", headers=headers); r = conn.getresponse(); r.read(); statuses.append(r.status)
open("first_done", "w").close()
for _ in range(200):
    if os.path.exists("reloaded"): break
    time.sleep(0.05)
conn.request("GET", "/v1/admin/devices", headers=headers); r = conn.getresponse(); r.read(); statuses.append(r.status)
cn = dict(x[0] for x in conn.sock.getpeercert()["subject"])["commonName"]
print(*statuses, cn)
EOF
python3 keepalive.py "$port" > keepalive.out 2> keepalive.err &
keepalive=$!
for _ in $(seq 100); do [ -e first_done ] && break; sleep 0.05; done

cp second.crt served.crt; cp second.key served.key
check "SIGHUP reloads: the log names the new certificate and warns that it expires within 14 days" \
  'hup_and_wait "WARNING: received SIGHUP: new connections get the reloaded TLS certificate CN=second.test (key pin $(spki_pin second.crt)), valid until .*: it expires in [45] days"'
touch reloaded
wait "$keepalive"
check "a new connection gets the new certificate" '[ "$(served_cn)" = second.test ]'
check "the connection opened before the reload goes on, with the certificate it began with ($(cat keepalive.out))" \
  '[ "$(cat keepalive.out)" = "200 200 first.test" ]'
check "/metrics: the new notAfter, one reload loaded" \
  '[ "$(metric pocketllm_tls_certificate_expiry_timestamp_seconds)" = "$(enddate second.crt)" ] && [ "$(metric "pocketllm_tls_reloads_total{result=\"loaded\"}")" = 1 ]'

# A renewal that keeps the key (certbot --reuse-key): a device pinning the key goes on; curl checks the
# logged pin independently (--pinnedpubkey).
pin=$(spki_pin second.crt)
check "curl accepts the server under the logged key pin" \
  '[ "$(curl -s -o /dev/null -w "%{http_code}" --cacert both.crt --pinnedpubkey "sha256//${pin#sha256/}" "$url/healthz")" = 200 ]'
openssl req -x509 -new -key second.key -days 90 -subj /CN=renewed.test -addext subjectAltName=IP:127.0.0.1 -out renewed.crt 2> /dev/null
cat renewed.crt >> both.crt; cp renewed.crt served.crt
check "renewed with the same key: reloaded, the same key pin logged" \
  'hup_and_wait "received SIGHUP: new connections get the reloaded TLS certificate CN=renewed.test (key pin $pin), valid until"'
check "and a client pinning that key still connects to the renewed certificate" \
  '[ "$(served_cn)" = renewed.test ] && [ "$(curl -s -o /dev/null -w "%{http_code}" --cacert both.crt --pinnedpubkey "sha256//${pin#sha256/}" "$url/healthz")" = 200 ]'
cp second.crt served.crt
check "back to the second certificate" 'hup_and_wait "CN=second.test (key pin $pin), valid until .*it expires in [45] days"'

cp first.key served.key  # the first certificate's key beside the second certificate
check "a key of another certificate: the reload fails with the reason and the certificate in use stays" \
  'hup_and_wait "ERROR: received SIGHUP: TLS reload failed, still serving the previous certificate: TLS key served.key" && [ "$(served_cn)" = second.test ]'
cp second.key served.key; head -c 200 second.crt > served.crt  # cut off mid-write
check "a cut-off certificate file: the reload fails and the certificate in use stays" \
  'hup_and_wait "ERROR: .*TLS certificate served.crt" && [ "$(served_cn)" = second.test ]'
check "/metrics counts the two failed reloads; the expiry is still the served certificate's" \
  '[ "$(metric "pocketllm_tls_reloads_total{result=\"failed\"}")" = 2 ] && [ "$(metric pocketllm_tls_certificate_expiry_timestamp_seconds)" = "$(enddate second.crt)" ]'
check "the server is up and stops cleanly on SIGTERM" \
  'kill -0 "$pid" && kill -TERM "$pid" && wait "$pid"'
pid=""

rm -f port
"$server_bin" --insecure --listen 127.0.0.1:0 --port-file port --store plain.db --admin-token-file admin 2> plain.log &
pid=$!
wait_for_port "$pid" plain.log
check "serving plain HTTP, SIGHUP is logged and the server goes on" \
  'hup_and_wait "no certificate to reload" plain.log && [ "$(curl -s -o /dev/null -w "%{http_code}" "http://127.0.0.1:$(cat port)/healthz")" = 200 ]'
kill -TERM "$pid"; wait "$pid"; pid=""
finish
