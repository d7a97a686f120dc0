#!/usr/bin/env bash
# The packed int8 kernels against the path they replace, on this CPU, in one run: every path the CPU has
# (x86: AVX-512 VNNI; arm64: i8mm and dotprod) and POCKETLLM_INT8=off (dequantized tiles + GEMM for
# batches, the direct dot products for decoding). A Llama of PRESET's configuration (random weights)
# written as Q8_0 and Q4_0 GGUF files; per path and type: a training batch (8 x 128 tokens), one
# 512-token prompt and single-token decoding, on THREADS threads, medians of REPS. One JSON line per row,
# with the CPU and the kernel paths `pocketllm info --system` names. Run it on the device whose path is
# being chosen (an arm64 phone or board: build with -DPOCKETLLM_BUILD_BENCH=ON for it).
#   bench/run_int8_paths.sh [REPS] [BUILD_DIR] [OUT_JSONL] [PRESET] [THREADS]   (defaults 5, build, -, 110m, 1)
set -euo pipefail
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
root="$(cd "$(dirname "$0")/.." && pwd)"
reps="${1:-5}"
build="${2:-$root/build}"
out="${3:-$root/bench/results/int8_paths.jsonl}"
preset="${4:-110m}"
threads="${5:-1}"
bench="$build/bin/bench_model"
cli="$build/bin/pocketllm"
for b in "$bench" "$cli"; do [ -x "$b" ] || { echo "build $(basename "$b") first ($b missing)" >&2; exit 1; }; done
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
cpu="$("$root/bench/cpu_name.sh")"
kernels() { POCKETLLM_INT8="$1" "$cli" info --system | sed -n 's/^kernels: *//p'; }
best="$(kernels "" | sed -n 's/.*packed int8 (\([^:]*\):.*/\1/p')"
paths=()
case "$best" in
  "") echo "== $cpu: no packed int8 path on this CPU; nothing to compare" >&2; exit 0 ;;
  i8mm) paths=(i8mm dotprod off) ;;
  *) paths=("$best" off) ;;
esac
echo "== CPU: $cpu; paths: ${paths[*]}"
mkdir -p "$(dirname "$out")"
: > "$out"
for t in q8_0 q4_0; do
  f="$work/$preset-$t.gguf"
  "$bench" --preset "$preset" --write-gguf "$f" --gguf-type "$t" > /dev/null
  for p in "${paths[@]}"; do
    env_path="$p"; [ "$p" = "$best" ] && env_path=""   # the default: what a user gets
    run() { POCKETLLM_INT8="$env_path" "$bench" --model "$f" --threads "$threads" --reps "$reps" "$@"; }
    batch=$(run --mode prompt --batch 8 --seq 128)
    prompt=$(run --mode prompt --batch 1 --seq 512)
    decode=$(run --mode decode)
    /usr/bin/python3 - "$t" "$p" "$threads" "$cpu" "$(kernels "$env_path")" "$batch" "$prompt" "$decode" >> "$out" <<'PY'
import json, sys
t, p, th, cpu, kern = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
batch, prompt, decode = (json.loads(a) for a in sys.argv[6:9])
print(json.dumps({"bench": "int8_paths", "type": t, "path": p, "threads": th,
  "batch8x128_tps": batch["tokens_per_s"], "prompt512_tps": prompt["tokens_per_s"], "decode_tps": decode["tokens_per_s"],
  "batch8x128_peak_rss_kib": batch["peak_rss_kib"], "cpu": cpu, "kernels": kern}))
PY
    tail -1 "$out"
  done
done
echo "== tokens/s by path, and each against POCKETLLM_INT8=off ($out)"
/usr/bin/python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
off = {r["type"]: r for r in rows if r["path"] == "off"}
print("| type | path | batch 8x128 | prompt 512 | decode |")
print("|---|---|---|---|---|")
for r in rows:
    o = off[r["type"]]
    cell = lambda k: f'{r[k]:.0f}' + ('' if r["path"] == "off" else f' ({r[k] / o[k]:.2f}x)')
    print(f'| {r["type"]} | {r["path"]} | {cell("batch8x128_tps")} | {cell("prompt512_tps")} | {cell("decode_tps")} |')
PY
