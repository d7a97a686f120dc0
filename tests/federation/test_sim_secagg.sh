#!/usr/bin/env bash
# Secure aggregation in the simulator (in-process server): with a fifth of the devices vanishing in
# every phase, `--secagg` writes the same shared log, byte for byte, as `--secagg-plain` (the same
# fixed-point sum without masks) — and its server stored no device's scalars while the plain one did; the
# same run against the real server over TLS writes the same log. A private task runs under secure
# aggregation too (the devices add the noise in shares).
#   test_sim_secagg.sh BIN_DIR SHARED_DIR
source "$(dirname "$0")/../support/test_lib.sh"
bin="$(realpath "$1")"; shared="$(realpath "$2")"
model="$shared/hub/karpathy/tinyllamas/stories260K"
cd "$work"
sed -n '2,401p' "$shared/data/sst2/glue_sst2_dev.tsv" | cut -f1 > train.txt
common=(--model "$model" --data train.txt --devices 30 --rounds 5 --tau 4 --batch-size 4 --lr 3e-4 --max-length 32 --threads 2
        --seed 7 --dropout 0.2 --secagg-bound 0.01)
"$bin/pocketllm-sim" "${common[@]}" --secagg --out masked > masked.log 2>&1
check "the masked simulation ran" '[ $? -eq 0 ] || { tail -5 masked.log; false; }'
"$bin/pocketllm-sim" "${common[@]}" --secagg-plain --out plain > plain.log 2>&1
check "the plain simulation ran" '[ $? -eq 0 ] || { tail -5 plain.log; false; }'
check "every round was applied (20 log entries) with devices dropped" \
  '[ "$(wc -l < masked/log.jsonl)" = 20 ] && python3 -c "import csv,sys; r=list(csv.DictReader(open(\"masked/rounds.csv\"))); sys.exit(0 if len(r)==5 and sum(int(x[\"dropped\"]) for x in r) > 0 else 1)"'
check "--secagg and --secagg-plain wrote the same log, byte for byte" 'cmp masked/log.jsonl plain/log.jsonl'
check "the masked server stored no device's scalars; the plain one did" 'python3 - <<PY
import sqlite3, sys
m = sqlite3.connect("masked/sim-store.db").execute("select count(*) from submissions").fetchone()[0]
p = sqlite3.connect("plain/sim-store.db").execute("select count(*) from submissions").fetchone()[0]
print(m, p)
sys.exit(0 if m == 0 and p > 0 else 1)
PY'
# The same masked simulation against the real server over TLS (it unmasks on a thread of its own): the
# first three rounds write the same log as in process.
source "$support_dir/local_server.sh"
start_local_server "$bin" "$model" unused 1  # (its cleanup kills $pid)
"$bin/pocketllm-sim" "${common[@]}" --rounds 3 --secagg --mode loopback --server "$url" --ca cert.pem --admin-token-file admin \
  --out loopback > loopback.log 2>&1
check "the masked simulation over TLS ran" '[ $? -eq 0 ] || { tail -5 loopback.log; false; }'
check "over TLS with the real server: the same log as in process" 'cmp loopback/log.jsonl <(head -12 masked/log.jsonl)'
"$bin/pocketllm-sim" "${common[@]}" --rounds 2 --secagg --dp central --clip-norm 0.004 --target-epsilon 20 --noise-multiplier 1.0 \
  --out private > private.log 2>&1
check "a private task under secure aggregation applies its rounds" '[ $? -eq 0 ] && [ "$(wc -l < private/log.jsonl)" = 8 ]'
check "its coefficients carry the devices' noise: they differ from the noiseless ones" '! cmp -s private/log.jsonl <(head -8 masked/log.jsonl)'
finish
