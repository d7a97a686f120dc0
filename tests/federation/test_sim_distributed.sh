#!/usr/bin/env bash
# Distributed simulation: four pocketllm-sim worker processes (--device-range 0:3, 3:6, 6:9, 9:12) against
# one server give the same log and the same shared weights as one process simulating all twelve devices
# with the same seeds — with participation, dropouts and stragglers drawn from the seed.
#   test_sim_distributed.sh BIN_DIR SHARED_DIR
source "$(dirname "$0")/../support/test_lib.sh"
bin="$(realpath "$1")"; shared="$(realpath "$2")"
model="$shared/hub/karpathy/tinyllamas/stories260K"
cd "$work"
start_test_server "$bin"
tail -n +2 "$shared/data/sst2/glue_sst2_dev.tsv" | cut -f1 | head -240 > train.txt
common=(--model "$model" --data train.txt --tau 4 --batch-size 4 --lr 1e-3 --max-length 32 --threads 1 --mode loopback
        --server "$url" --ca cert.pem --admin-token-file admin --devices 12 --rounds 3 --seed 11
        --participation 0.8 --dropout 0.1 --straggler 0.1 --min-submissions 1)
"$bin/pocketllm-sim" "${common[@]}" --task-id one --out one --save-shared one.safetensors > one.out 2>&1
check "one process simulated the twelve devices" '[ $? -eq 0 ] && [ -s one/log.jsonl ]'
start=$(date +%s.%N)
for r in 0:3 3:6 6:9 9:12; do
  "$bin/pocketllm-sim" "${common[@]}" --task-id four --device-range "$r" --out "w${r%:*}" --save-shared "w${r%:*}.safetensors" \
    > "w${r%:*}.out" 2>&1 &
  workers+=($!)
done
status=0
for w in "${workers[@]}"; do wait "$w" || status=1; done
seconds=$(python3 -c "import time; print(round(time.time() - $start, 1))")
check "four worker processes finished" '[ $status -eq 0 ]'
check "the log has entries and a nonzero update" 'python3 -c "import json,sys; e=[json.loads(l) for l in open(\"one/log.jsonl\")]; sys.exit(0 if len(e) == 12 and any(x[\"coeff\"] != 0 for x in e) else 1)"'
for w in 0 3 6 9; do
  check "worker $w's log equals the single process's, entry for entry" "cmp -s one/log.jsonl w$w/log.jsonl"
  check "worker $w's shared weights equal the single process's, byte for byte" "cmp -s one.safetensors w$w.safetensors"
done
# The draws really spread over the workers: the control is that each worker saw devices of its own.
check "each worker enrolled only its three devices" 'for w in 0 3 6 9; do grep -q "worker for devices $w..$((w + 2)) of 12" w$w.out || exit 1; done'
echo "four workers: $seconds s for 12 devices x 3 rounds"
[ $fails -eq 0 ] || { for f in one.out w0.out w3.out w6.out w9.out; do echo "--- $f"; tail -20 "$f"; done; tail -20 server.log; }
kill $pid 2>/dev/null
finish
