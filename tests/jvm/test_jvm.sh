#!/usr/bin/env bash
# The Java binding on the host JVM: starts a real pocketllm-server over TLS on loopback, creates a task
# for stories260K and an enrolment token, then runs dev.pocketllm.test.PocketLlmTest (load, generate,
# train with cancel and resume, a federated round through java.net.http).
#   test_jvm.sh BIN_DIR LIB_DIR TEST_JAR SHARED_DIR
set -euo pipefail
bin="$(realpath "$1")"; lib="$(realpath "$2")"; test_jar="$(realpath "$3")"; shared="$(realpath "$4")"
model="$shared/hub/karpathy/tinyllamas/stories260K"
work="$(mktemp -d)"; pid=""
cleanup() { if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=IP:127.0.0.1 -keyout key.pem -out cert.pem >/dev/null 2>&1
echo "jvm-test-admin-token-000000000000" > admin
"$bin/pocketllm-server" --listen 127.0.0.1:0 --port-file port --tls-cert cert.pem --tls-key key.pem \
  --store store.db --admin-token-file admin 2> server.log &
pid=$!
for _ in $(seq 100); do [ -s port ] && break; sleep 0.05; done
url="https://127.0.0.1:$(cat port)"
A=(-H "Authorization: Bearer $(cat admin)")
model_id=$("$bin/pocketllm" info --model "$model" --id | awk '/model id/ {print $3}')
curl -sS --fail --cacert cert.pem "${A[@]}" -X POST "$url/v1/admin/tasks" -d '{"id":"jvm","base_model_id":"'"$model_id"'","trainable":"norms","tau":2,"batch_size":2,"round_seconds":1,"min_submissions":1,"device":{"task":"lm","max_length":16}}' > /dev/null
token=$(curl -sS --fail --cacert cert.pem "${A[@]}" -X POST "$url/v1/admin/enrolment-tokens" -d '{"uses":4}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["Once upon a time"]["text"], end="")' \
  "$shared/golden/stories260K_greedy_golden.json" > golden.txt
mkdir work
java -Djava.library.path="$lib" -Xcheck:jni -cp "$lib/pocketllm.jar:$test_jar" dev.pocketllm.test.PocketLlmTest \
  "$model" "$work/work" golden.txt "$url" cert.pem "$token" jvm
