#!/usr/bin/env bash
# Ctrl-C on `pocketllm federate` while it waits for its round to close: it stops within seconds with
# exit status 130 and says the state is saved; run again from that state, it trains the round again and
# its upload is the very one the server already holds (answered duplicate: nothing counted twice).
#   test_federate_stop.sh BIN_DIR SHARED_DIR
source "$(dirname "$0")/../support/test_lib.sh"
bin="$(realpath "$1")"; shared="$(realpath "$2")"
model="$shared/hub/karpathy/tinyllamas/stories260K"
cd "$work"
start_test_server "$bin"
tail -n +2 "$shared/data/sst2/glue_sst2_dev.tsv" | cut -f1 | head -40 > train.txt
# A task as pocketllm-sim writes one, then a copy whose round waits for 5 devices over 10 minutes.
"$bin/pocketllm-sim" --model "$model" --data train.txt --tau 2 --batch-size 2 --max-length 32 --threads 1 --mode loopback \
  --server "$url" --ca cert.pem --admin-token-file admin --devices 1 --rounds 1 --task-id sim --out simout > sim.out 2>&1
python3 -c "import json; t = json.load(open('simout/task.json')); t['id'] = 'slow'; t['goal_submissions'] = 5; t['min_submissions'] = 5; t['round_seconds'] = 600; print(json.dumps(t))" > slow.json
A=(-H "Authorization: Bearer $(cat admin)")
curl -sS --cacert cert.pem "${A[@]}" -X POST -d @slow.json "$url/v1/admin/tasks" > /dev/null
token=$(curl -sS --cacert cert.pem "${A[@]}" -X POST -d '{"uses":1}' "$url/v1/admin/enrolment-tokens" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
fed=(--server "$url" --ca cert.pem --state dev --task slow --model "$model" --data train.txt --threads 1)
"$bin/pocketllm" federate "${fed[@]}" --enrol-token "$token" --rounds 1 > run1.out 2> run1.err &
dev=$!
for _ in $(seq 300); do grep -q "^round 1: accepted" run1.out 2>/dev/null && break; sleep 0.1; done
check "the device submitted to round 1 and waits for it to close" 'grep -q "^round 1: accepted" run1.out && kill -0 $dev'
start=$(date +%s%N)
kill -INT "$dev"
for _ in $(seq 100); do kill -0 "$dev" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$dev" 2>/dev/null; then kill -9 "$dev"; status=timeout; else wait "$dev"; status=$?; fi
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "SIGINT stops it in ${ms} ms with exit status 130 ($status)" '[ "$status" = 130 ] && [ "$ms" -lt 5000 ]'
check "it says the state is saved and how to go on" 'grep -q "stopped; the device state in dev is saved: run the same command again" run1.err'
"$bin/pocketllm" federate "${fed[@]}" --rounds 1 > run2.out 2> run2.err &
dev=$!
for _ in $(seq 300); do grep -q "^round 1: " run2.out 2>/dev/null && break; sleep 0.1; done
kill -INT "$dev" 2>/dev/null; wait "$dev"; status=$?
check "run again from the saved state, its round-1 upload is the one the server holds (duplicate), and it stops again" \
  '[ "$status" = 130 ] && grep -q "^round 1: duplicate" run2.out || { cat run2.out run2.err; false; }'
finish
