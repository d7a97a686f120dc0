#!/usr/bin/env bash
# Robustness of the server's default aggregation to Byzantine devices (issue 14): pocketllm-sim with
# 20 % attacking devices, every strategy the defaults allow (weighted mean, median, trimmed mean, all
# with the automatic clipping, capped example weights and min_submissions 3), against the clean run of
# the same strategy in the same script run. Task: causal-LM personalisation of the real stories260K on
# SST-2 sentences (the demo's task), norms trainable, 20 devices, 10 rounds of tau 8.
#   bench/run_byzantine.sh [BUILD_DIR] [ROUNDS]     prints a Markdown table and writes byzantine.json
set -euo pipefail
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(realpath "${1:-$root/build}")"; rounds="${2:-10}"
shared="${POCKETLLM_SHARED:-$root/../shared}"
model="$shared/hub/karpathy/tinyllamas/stories260K"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
sed -n '2,701p' "$shared/data/sst2/glue_sst2_dev.tsv" | cut -f1 > "$work/train.txt"
sed -n '702,873p' "$shared/data/sst2/glue_sst2_dev.tsv" | cut -f1 > "$work/heldout.txt"
common=(--model "$model" --data "$work/train.txt" --eval-data "$work/heldout.txt" --devices 20 --rounds "$rounds" --tau 8
        --batch-size 8 --lr 1e-3 --trainable norms --max-length 48 --threads 1 --min-submissions 3 --seed 0x5eed)
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1)" >&2
results="$work/results.jsonl"
for strategy in weighted_mean median trimmed_mean; do
  for attack in none flt_max sign_flip random inner_product; do
    byz=0.2; [ "$attack" = none ] && byz=0
    out="$work/$strategy-$attack"
    "$build/bin/pocketllm-sim" "${common[@]}" --strategy "$strategy" --byzantine "$byz" --attack "$attack" --out "$out" > "$out.log" 2>&1 \
      || { cat "$out.log"; exit 1; }
    python3 - "$out/rounds.json" "$strategy" "$attack" >> "$results" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print(json.dumps({"strategy": sys.argv[2], "attack": sys.argv[3], "start": s["eval_loss_start"],
                  "final": s["rounds"][-1]["eval_loss"], "applied": sum(1 for r in s["rounds"] if r["version"] > 0)}))
PY
    echo "done $strategy $attack" >&2
  done
done
python3 - "$results" <<'PY' | tee "${BYZANTINE_JSON:-byzantine.json}.md"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
clean = {r["strategy"]: r for r in rows if r["attack"] == "none"}
print("| strategy | attack (20 % of devices) | held-out loss start → end | vs clean end | clean improvement kept |")
print("|---|---|---|---|---|")
ok = True
for r in rows:
    c = clean[r["strategy"]]
    rel = (r["final"] - c["final"]) / c["final"]
    kept = (r["start"] - r["final"]) / (c["start"] - c["final"]) if c["start"] != c["final"] else float("nan")
    ok = ok and abs(rel) <= 0.10
    print(f"| {r['strategy']} | {r['attack']} | {r['start']:.4f} → {r['final']:.4f} | {100 * rel:+.2f} % | {100 * kept:.0f} % |")
print()
print("every attacked run within 10 % of its clean run's held-out loss:", "yes" if ok else "NO")
PY
cp "$results" "${BYZANTINE_JSON:-byzantine.json}"
