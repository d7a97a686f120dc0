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

# Seed groups (docs/protocol.md section 5): the same three processes on a task with 64 groups. Each
# device trains its own group's seeds; the log holds, per group with a device, tau entries on that
# group's seeds — recomputed here from the public formulas (FNV-1a-64, SplitMix64), not from the server.
python3 -c "import json; t = json.load(open('simout/task.json')); t['id'] = 'grp'; t['goal_submissions'] = 3; t['seed_groups'] = 64; print(json.dumps(t))" > grp_task.json
curl -sS --cacert cert.pem "${A[@]}" -X POST -d @grp_task.json "$url/v1/admin/tasks" > /dev/null
token=$(curl -sS --cacert cert.pem "${A[@]}" -X POST -d '{"uses":3}' "$url/v1/admin/enrolment-tokens" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
pids=()
for i in 0 1 2; do
  "$bin/pocketllm" federate --server "$url" --ca cert.pem --enrol-token "$token" --state "grp$i" --task grp \
    --model "$model" --data train.txt --shard "$i/3" --partition iid --partition-seed 7 --rounds 1 --threads 1 > "grp$i.out" 2>&1 &
  pids+=($!)
done
wait "${pids[@]}" 2>/dev/null
curl -sS --cacert cert.pem "${A[@]}" "$url/v1/admin/tasks/grp/rounds/1" > grp_round.json
curl -sS --cacert cert.pem "${A[@]}" "$url/v1/tasks/grp/log?since=0" > grp_log.json
check "with seed groups, the log holds tau entries per group with a device, on that group's seeds" 'python3 - grp_task.json grp_round.json grp_log.json <<"PY"
import json, sys
M = (1 << 64) - 1
def sm(x):
    x = (x + 0x9e3779b97f4a7c15) & M
    x = ((x ^ (x >> 30)) * 0xbf58476d1ce4e5b9) & M
    x = ((x ^ (x >> 27)) * 0x94d049bb133111eb) & M
    return x ^ (x >> 31)
def fnv(b):
    h = 0xcbf29ce484222325
    for c in b: h = ((h ^ c) * 0x100000001b3) & M
    return h
task, rnd, log = (json.load(open(f)) for f in sys.argv[1:])
key, tau, G = int(task["seed_key"], 16), task["tau"], task["seed_groups"]
devices = [s["device"] for s in rnd["submission_list"]]
groups = sorted({sm(fnv(d.encode()) ^ sm(1)) % G for d in devices})
def seed(g, k):
    kk = key if g == 0 else sm(key ^ sm(0x67726f7570 + g))
    return "%016x" % sm(kk ^ sm((1 << 8) | k))
want = [seed(g, k) for g in groups for k in range(tau)]
got = [e["seed"] for e in log["entries"]]
print("devices", len(devices), "groups", groups, "entries", len(got))
sys.exit(0 if len(devices) == 3 and got == want and any(e["coeff"] != 0 for e in log["entries"]) else 1)
PY'
check "the grouped devices end with the same shared weights" 'cmp -s grp0/shared.safetensors grp1/shared.safetensors && cmp -s grp0/shared.safetensors grp2/shared.safetensors'
# More devices than examples: the simulation says how many hold no data (they are never asked).
head -3 train.txt > three.txt
"$bin/pocketllm-sim" --model "$model" --data three.txt --devices 5 --rounds 1 --tau 2 --batch-size 1 --max-length 32 \
  --threads 1 --out few > few.out 2>&1
check "with 3 examples for 5 devices, 2 are said to hold no training example, and 3 are asked" \
  '[ $? -eq 0 ] && grep -q "^2 of 5 devices hold no training example (3 examples, --partition iid)" few.out &&
   grep -q "round 1: 3 asked" few.out'
[ $fails -eq 0 ] || { echo "--- sim"; cat sim.out; for i in 0 1 2; do echo "--- dev$i"; cat dev$i.out; echo "--- grp$i"; cat grp$i.out; done; tail -20 server.log; }
finish
