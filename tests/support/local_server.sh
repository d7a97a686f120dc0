# Sourced by scripts that need a real pocketllm-server with one stories260K task: starts it over TLS on
# a free loopback port in the current directory (cert.pem, admin, store.db, server.log), creates task
# TASK_ID (norms, tau 2, batch 2, 3 s rounds — extended once when empty, so a device slowed by a loaded
# machine still finds its round open — one submission enough) and an enrolment token.
#   start_local_server BIN_DIR MODEL TASK_ID TOKEN_USES   -> sets pid, url, token; the caller kills $pid
source "$(dirname "${BASH_SOURCE[0]}")/wait_port.sh"
start_local_server() {
  local bin="$1" model="$2" task="$3" uses="$4"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -addext subjectAltName=IP:127.0.0.1 -keyout key.pem -out cert.pem >/dev/null 2>&1
  echo "local-server-admin-token-00000000" > admin
  "$bin/pocketllm-server" --listen 127.0.0.1:0 --port-file port --tls-cert cert.pem --tls-key key.pem \
    --store store.db --admin-token-file admin 2> server.log &
  pid=$!
  wait_for_port "$pid" server.log
  url="https://127.0.0.1:$(cat port)"
  local auth=(-H "Authorization: Bearer $(cat admin)") model_id
  model_id=$("$bin/pocketllm" info --model "$model" --id | awk '/model id/ {print $3}')
  curl -sS --fail --cacert cert.pem "${auth[@]}" -X POST "$url/v1/admin/tasks" -d '{"id":"'"$task"'","base_model_id":"'"$model_id"'","trainable":"norms","tau":2,"batch_size":2,"round_seconds":3,"min_submissions":1,"device":{"task":"lm","max_length":16}}' > /dev/null
  token=$(curl -sS --fail --cacert cert.pem "${auth[@]}" -X POST "$url/v1/admin/enrolment-tokens" -d '{"uses":'"$uses"'}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
}
