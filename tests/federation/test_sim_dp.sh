#!/usr/bin/env bash
# A private federation end to end in the simulator (in-process server): devices clip their vectors (every
# stored submission within the clip norm, no loss statistics stored), the server samples devices, epsilon
# grows round by round in rounds.csv and stays within the target, and the run stops when no further round
# fits in the budget.
#   test_sim_dp.sh BIN_DIR SHARED_DIR
source "$(dirname "$0")/../support/test_lib.sh"
bin="$(realpath "$1")"; shared="$(realpath "$2")"
model="$shared/hub/karpathy/tinyllamas/stories260K"
cd "$work"
sed -n '2,401p' "$shared/data/sst2/glue_sst2_dev.tsv" | cut -f1 > train.txt
sed -n '402,481p' "$shared/data/sst2/glue_sst2_dev.tsv" | cut -f1 > heldout.txt
"$bin/pocketllm-sim" --model "$model" --data train.txt --eval-data heldout.txt --devices 40 --rounds 12 --tau 4 --batch-size 4 \
  --lr 3e-4 --max-length 32 --threads 1 --seed 7 --dp central --clip-norm 0.004 --sampling-rate 0.3 --target-epsilon 4 \
  --noise-multiplier 1.3 --out out > sim.log 2>&1
check "the simulation ran" '[ $? -eq 0 ] || { tail -5 sim.log; false; }'
fit=$("$bin/pocketllm" privacy rounds --epsilon 4 --sampling-rate 0.3 --noise-multiplier 1.3 --delta 1e-5 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["rounds"])')
check "it stopped when the budget was spent (after the $fit rounds that fit, fewer than the 12 asked)" \
  '[ "$fit" -lt 12 ] && [ "$(($(wc -l < out/rounds.csv) - 1))" = "$fit" ] && grep -q "privacy budget is spent" sim.log'
check "epsilon grows each round and ends within the target" 'python3 - out/rounds.csv <<PY
import csv, sys
eps = [float(r["epsilon"]) for r in csv.DictReader(open(sys.argv[1]))]
sys.exit(0 if len(eps) >= 3 and all(a < b for a, b in zip(eps, eps[1:])) and 0 < eps[-1] <= 4.0 else 1)
PY'
check "every stored submission is within the clip norm and carries no loss statistics" 'python3 - out/sim-store.db <<PY
import math, sqlite3, struct, sys
rows = sqlite3.connect(sys.argv[1]).execute("select coeffs, stats from submissions").fetchall()
norms = [math.sqrt(sum(x * x for x in struct.unpack("<%df" % (len(c) // 4), c))) for c, _ in rows]
clipped = sum(1 for n in norms if n > 0.0039)
ok = rows and max(norms) <= 0.004 * (1 + 1e-5) and clipped > 0 and all("mean" not in s for _, s in rows)
print(f"{len(rows)} submissions, max norm {max(norms):.6f}, {clipped} at the bound")
sys.exit(0 if ok else 1)
PY'
check "fewer devices than all took part: the server sampled them" 'python3 - out/rounds.csv <<PY
import csv, sys
asked = [int(r["asked"]) for r in csv.DictReader(open(sys.argv[1]))]
sys.exit(0 if all(0 < a < 40 for a in asked) else 1)
PY'
finish
