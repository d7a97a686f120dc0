#!/usr/bin/env bash
# A simulated federation (pocketllm-sim, loopback HTTPS) and the same devices as separate
# `pocketllm federate` processes, against the same server with the same seeds, produce the same
# shared log bit for bit and the same shared weights.
#   test_sim_matches_processes.sh BIN_DIR SHARED_DIR
source "$(dirname "$0")/../support/test_lib.sh"
bin="$(realpath "$1")"; shared="$(realpath "$2")"
model="$shared/hub/karpathy/tinyllamas/stories260K"
cd "$work"
start_test_server "$bin"
tail -n +2 "$shared/data/sst2/glue_sst2_dev.tsv" | cut -f1 | head -120 > train.txt

common=(--model "$model" --data train.txt --tau 4 --batch-size 4 --lr 1e-3 --max-length 32 --threads 1)
"$bin/pocketllm-sim" "${common[@]}" --mode loopback --server "$url" --ca cert.pem --admin-token-file admin \
  --devices 3 --rounds 2 --seed 7 --task-id sim --out simout --save-shared sim_shared.safetensors > sim.out 2>&1
check "the simulation ran" '[ $? -eq 0 ] && grep -q "round 2: 3 asked, 3 submitted (3 accepted)" sim.out'

# The same task for the processes (same seed key), closing when all three have submitted.
python3 -c "import json; t = json.load(open('simout/task.json')); t['id'] = 'proc'; t['goal_submissions'] = 3; print(json.dumps(t))" > proc_task.json
A=(-H "Authorization: Bearer $(cat admin)")
curl -sS --cacert cert.pem "${A[@]}" -X POST -d @proc_task.json "$url/v1/admin/tasks" > /dev/null
token=$(curl -sS --cacert cert.pem "${A[@]}" -X POST -d '{"uses":3}' "$url/v1/admin/enrolment-tokens" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
for i in 0 1 2; do
  "$bin/pocketllm" federate --server "$url" --ca cert.pem --enrol-token "$token" --state "dev$i" --task proc \
    --model "$model" --data train.txt --shard "$i/3" --partition iid --partition-seed 7 --rounds 2 --threads 1 > "dev$i.out" 2>&1 &
done
wait %2 %3 %4 2>/dev/null; wait_status=0
for i in 0 1 2; do grep -q "done: 2 rounds, shared version 8" "dev$i.out" || wait_status=1; done
check "three device processes took part in two rounds" '[ $wait_status -eq 0 ]'
curl -sS --cacert cert.pem "${A[@]}" "$url/v1/tasks/sim/log?since=0" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["entries"]))' > sim_log.json
curl -sS --cacert cert.pem "${A[@]}" "$url/v1/tasks/proc/log?since=0" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["entries"]))' > proc_log.json
check "both logs have 8 entries" '[ "$(python3 -c "import json; print(len(json.load(open(\"sim_log.json\"))))")" = 8 ]'
check "the logs are identical (seeds and coefficients)" 'cmp -s sim_log.json proc_log.json'
check "a nonzero update was learned" 'python3 -c "import json,sys; sys.exit(0 if any(e[\"coeff\"] != 0 for e in json.load(open(\"sim_log.json\"))) else 1)"'
for i in 0 1 2; do
  check "device $i's shared weights equal the simulation's, byte for byte" "cmp -s sim_shared.safetensors dev$i/shared.safetensors"
done
[ $fails -eq 0 ] || { echo "--- sim"; cat sim.out; for i in 0 1 2; do echo "--- dev$i"; cat dev$i.out; done; tail -20 server.log; }
finish
