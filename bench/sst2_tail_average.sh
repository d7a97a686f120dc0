#!/usr/bin/env bash
# Polyak tail averaging of a finished SST-2 run, evaluated on the dev set without new training state: the
# mean of the iterates after steps s+1 .. N is the base model with the run's log replayed, the coefficient
# of entry t scaled by 1 for t < s and (N − t)/(N − s) for t ≥ s (iterate k holds entries t < k). Writes
# that update log (docs/update-log.md JSON form), replays it with `pocketllm replay` and runs `pocketllm
# eval` on glue_sst2_dev.tsv with the run's template and labels (bench/run_sst2.sh's).
#   bench/sst2_tail_average.sh RUN_DIR FRACTION [WORK_DIR]     FRACTION of the steps averaged, 0 < f <= 1
# Prints one JSON line: {"kind": "tail_average", "run": ..., "fraction": f, "accuracy": ..., "loss": ...}.
set -euo pipefail
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${POCKETLLM_BUILD_DIR:-$root/build}/bin/pocketllm"
shared="${POCKETLLM_SHARED:-$root/../shared}"
[ $# -ge 2 ] || { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
run="$1"; frac="$2"; work="${3:-$(mktemp -d)}"
[ -f "$run/log.jsonl" ] && [ -f "$run/spec.json" ] || { echo "sst2_tail_average: $run is not a run directory" >&2; exit 1; }
mkdir -p "$work"
python3 - "$run" "$frac" "$work/average.json" <<'PY'
import json, sys
run, frac, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
if not 0 < frac <= 1:
    sys.exit("sst2_tail_average: FRACTION must be in (0, 1]")
entries = [json.loads(line) for line in open(run + "/log.jsonl")]
n = len(entries)
s = int(n * (1 - frac))
scaled = [{"seed": e["seed"], "coeff": e["coeff"] * (1.0 if t < s else (n - t) / (n - s))} for t, e in enumerate(entries)]
json.dump({"format": "pocketllm.update_log", "version": 1, "entries": scaled}, open(out, "w"))
PY
trainable="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["trainable"])' "$run/spec.json")"
model="$shared/hub/karpathy/tinyllamas/stories260K"
rm -rf "$work/model"
"$bin" replay --model "$model" --log "$work/average.json" --out "$work/model" --tensors "$trainable" > /dev/null
line="$("$bin" eval --model "$work/model" --data "$shared/data/sst2/glue_sst2_dev.tsv" --task classify \
        --template "{text} It was" --labels "0:bad,1:good" | grep -m1 '^examples ')"
acc="$(sed -n 's/.*accuracy \([0-9.]*\)%.*/\1/p' <<< "$line")"
loss="$(sed -n 's/.*loss \([0-9.]*\) .*/\1/p' <<< "$line")"
echo "{\"kind\": \"tail_average\", \"run\": \"$run\", \"fraction\": $frac, \"accuracy\": $acc, \"loss\": $loss}"
