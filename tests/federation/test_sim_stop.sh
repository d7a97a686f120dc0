#!/usr/bin/env bash
# Ctrl-C on a simulation: the first SIGINT stops pocketllm-sim after the round in progress, and every
# output (rounds.csv, rounds.json, plot.svg, log.jsonl, --save-shared) still covers the rounds done; the
# exit status is 130 and the summary counts the rounds that ran, not the ones asked for.
#   test_sim_stop.sh BIN_DIR SHARED_DIR
source "$(dirname "$0")/../support/test_lib.sh"
bin="$(realpath "$1")"; shared="$(realpath "$2")"
model="$shared/hub/karpathy/tinyllamas/stories260K"
cd "$work"
sed -n '2,201p' "$shared/data/sst2/glue_sst2_dev.tsv" | cut -f1 > train.txt
"$bin/pocketllm-sim" --model "$model" --data train.txt --devices 10 --rounds 100000 --tau 2 --batch-size 2 \
  --max-length 32 --threads 1 --out out --save-shared shared.safetensors > sim.log 2>&1 &
pid=$!
for _ in $(seq 600); do grep -q '^round 3:' sim.log 2>/dev/null && break; sleep 0.05; done
kill -INT "$pid"
for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && { echo "FAIL still running 60 s after SIGINT"; exit 1; }
wait "$pid"; status=$?
pid=""
check "exit status 130 after the first SIGINT (got $status)" '[ "$status" = 130 ] || { tail -5 sim.log; false; }'
done_rounds=$(($(wc -l < out/rounds.csv) - 1))
check "it stopped early, after at least 3 rounds ($done_rounds)" '[ "$done_rounds" -ge 3 ] && [ "$done_rounds" -lt 100000 ]'
check "it said where it stopped" 'grep -q "stopped after round $done_rounds of 100000" sim.log && grep -q "^$done_rounds rounds in" sim.log'
check "rounds.json lists the same rounds as rounds.csv" 'python3 - out/rounds.json "$done_rounds" <<PY
import json, sys
rows = json.load(open(sys.argv[1]))["rounds"]
sys.exit(0 if [r["round"] for r in rows] == list(range(1, int(sys.argv[2]) + 1)) else 1)
PY'
check "plot.svg and the shared weights were written" '[ -s out/plot.svg ] && [ -s shared.safetensors ]'
check "the shared log holds tau entries for each round done" '[ "$(wc -l < out/log.jsonl)" = "$((2 * done_rounds))" ]'
finish
