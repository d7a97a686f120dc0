#!/usr/bin/env bash
# kill -9 at random moments during `pocketllm finetune`, resume each time, and check the finished run
# is byte-identical (log and final weights) to an uninterrupted run.
#   test_kill_resume.sh POCKETLLM_BINARY SHARED_DIR
set -uo pipefail
bin="$1"; shared="$2"
model="$shared/hub/karpathy/tinyllamas/stories260K"
data="$shared/data/sst2/glue_sst2_dev.tsv"
if [ ! -f "$model/stories260K.bin" ] || [ ! -f "$data" ]; then
  echo "skip: $model or $data not found (set POCKETLLM_SHARED)"; exit 0
fi
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
head -301 "$data" | tail -300 | cut -f1 > "$work/train.txt"
args=(--model "$model" --data "$work/train.txt" --task lm --steps 150 --batch-size 8 --lr 1e-4
      --snapshot-every 7 --fsync-every 1 --seed 0x5eed --threads 2)

t0=$(date +%s%N)
"$bin" finetune "${args[@]}" --out "$work/reference" 2> "$work/ref.err" || { cat "$work/ref.err"; exit 1; }
# Kill moments are drawn within the uninterrupted run's duration, so the test means the same on a
# fast machine and a loaded one.
run_ms=$(( ($(date +%s%N) - t0) / 1000000 )); [ "$run_ms" -ge 20 ] || run_ms=20

kills=0
for attempt in $(seq 1 200); do
  if [ -f "$work/killed/spec.json" ]; then
    "$bin" finetune --resume --out "$work/killed" --threads 2 2> "$work/run.err" &
  else
    "$bin" finetune "${args[@]}" --out "$work/killed" 2> "$work/run.err" &
  fi
  pid=$!
  sleep "$(awk -v ms=$(( run_ms * (RANDOM % 20 + 5) / 100 )) 'BEGIN { printf "%.3f", ms / 1000 }')"
  if kill -9 "$pid" 2> /dev/null; then kills=$((kills + 1)); fi
  wait "$pid" 2> /dev/null; rc=$?
  if [ $rc -eq 0 ]; then break; fi
  if [ $rc -ne 137 ]; then echo "finetune failed with $rc:"; cat "$work/run.err"; exit 1; fi
done
echo "killed $kills times (uninterrupted run: $run_ms ms)"
[ $kills -ge 3 ] || { echo "FAIL: too few kills to mean anything ($kills)"; exit 1; }
# Whatever was left unfinished, finish it.
if ! grep -q '"step":149' "$work/killed/log.jsonl"; then
  "$bin" finetune --resume --out "$work/killed" --threads 2 2> "$work/run.err" || { cat "$work/run.err"; exit 1; }
fi
cmp "$work/reference/log.jsonl" "$work/killed/log.jsonl" || { echo "FAIL: logs differ"; exit 1; }
cmp "$work/reference/snapshot.safetensors" "$work/killed/snapshot.safetensors" || { echo "FAIL: final weights differ"; exit 1; }
echo "ok: resumed run equals the uninterrupted run (log and weights)"
