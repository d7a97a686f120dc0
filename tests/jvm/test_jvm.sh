#!/usr/bin/env bash
# The Java binding on the host JVM: starts a real pocketllm-server over TLS on loopback, creates a task
# for stories260K and an enrolment token, then runs dev.pocketllm.test.PocketLlmTest (load, generate,
# train with cancel and resume, the memory estimate, private examples, LoRA with early stopping and its
# export, a federated round through java.net.http, and a masked secure round of two Java devices at once)
# under -Xcheck:jni, failing on any JNI warning.
#   test_jvm.sh BIN_DIR LIB_DIR TEST_JAR SHARED_DIR
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$(realpath "$1")"; lib="$(realpath "$2")"; test_jar="$(realpath "$3")"; shared="$(realpath "$4")"
model="$shared/hub/karpathy/tinyllamas/stories260K"
work="$(mktemp -d)"; pid=""
cleanup() { if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"
source "$here/../support/local_server.sh"
start_local_server "$bin" "$model" jvm 6
# A second task with secure aggregation: two Java devices take a masked round together.
model_id=$("$bin/pocketllm" info --model "$model" --id | awk '/model id/ {print $3}')
curl -sS --fail --cacert cert.pem -H "Authorization: Bearer $(cat admin)" -X POST "$url/v1/admin/tasks" -d '{"id":"jvmsa","base_model_id":"'"$model_id"'","trainable":"norms","tau":2,"batch_size":2,"round_seconds":30,"goal_submissions":2,"min_submissions":2,"device":{"task":"lm","max_length":16},"secagg":{"mode":"masked","bound":0.1}}' > /dev/null
python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["Once upon a time"]["text"], end="")' \
  "$shared/golden/stories260K_greedy_golden.json" > golden.txt
mkdir work
java -Djava.library.path="$lib" -Xcheck:jni -cp "$lib/pocketllm.jar:$test_jar" dev.pocketllm.test.PocketLlmTest \
  "$model" "$work/work" golden.txt "$url" cert.pem "$token" jvm jvmsa 2>&1 | tee jvm.out
# -Xcheck:jni only warns (a local reference table past its capacity, say); on Android the same misuse
# aborts the app, so here any warning fails the test.
if grep -q "WARNING: JNI\|WARNING in native method\|FATAL ERROR in native method" jvm.out; then
  echo "test_jvm.sh: the JNI glue misuses JNI (-Xcheck:jni above)" >&2
  exit 1
fi
