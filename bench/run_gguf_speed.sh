#!/usr/bin/env bash
# pocketllm against llama.cpp on the same GGUF files, same machine, same run (docs/gguf.md, README):
# the 110M Llama configuration (random weights, synthetic 32 000-token vocabulary) as F32, F16, Q8_0 and
# Q4_0 (written by pocketllm), and Q4_K, Q5_K, Q6_K (every matrix quantized by ggml's own reference
# quantizer from the F32 file: bench/peers/llamacpp/requantize.py); prompt processing of one 512-token
# sequence and of 8 x 128 (a training batch), and single-token decoding, on 1 and 2 threads; medians of
# REPS. GFLOP/s are set against the Eigen SGEMM peak measured in the same run.
#   bench/run_gguf_speed.sh [REPS] [BUILD_DIR] [OUT_JSONL] [TYPES]   (TYPES default "f32 f16 q8_0 q4_0 q4_k q6_k")
set -euo pipefail
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
root="$(cd "$(dirname "$0")/.." && pwd)"
reps="${1:-5}"
build="${2:-$root/build}"
out="${3:-$root/bench/results/gguf_speed.jsonl}"
bench="$build/bin/bench_model"
peer="$root/bench/peers/llamacpp"
[ -x "$bench" ] || { echo "build bench_model first"; exit 1; }
if [ ! -d "$peer/node_modules/node-llama-cpp" ]; then
  (cd "$peer" && npm i --no-audit --no-fund -E node-llama-cpp@3.21.1 @huggingface/gguf@0.4.6 > /dev/null)
fi
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
cpu="$("$root/bench/cpu_name.sh")"
flags="$(grep -o -w 'avx2\|avx512f\|avx512_vnni\|avx_vnni\|amx_int8' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "== CPU: $cpu ($flags)"
mkdir -p "$(dirname "$out")"
: > "$out"
gemm=$("$bench" --mode gemm --reps "$reps" | python3 -c 'import json,sys; print(json.load(sys.stdin)["gflops_1thread"])')
echo "{\"bench\":\"gguf_speed\",\"what\":\"sgemm_peak_1thread\",\"gflops\":$gemm,\"cpu\":\"$cpu\"}" >> "$out"
types="${4:-f32 f16 q8_0 q4_0 q4_k q6_k}"
ggml="$(ls "$peer"/node_modules/@node-llama-cpp/linux-x64/bins/*/libggml-base.so | head -1)"
for t in $types; do
  f="$work/llama110m-$t.gguf"
  case "$t" in
    q4_k|q5_k|q6_k)
      [ -f "$work/llama110m-f32.gguf" ] || "$bench" --preset 110m --write-gguf "$work/llama110m-f32.gguf" --gguf-type f32
      python3 "$peer/requantize.py" "$ggml" "$work/llama110m-f32.gguf" "$f" "$t" ;;
    *) "$bench" --preset 110m --write-gguf "$f" --gguf-type "$t" ;;
  esac
  for th in 1 2; do
    p512=$("$bench" --model "$f" --mode prompt --batch 1 --seq 512 --threads "$th" --reps "$reps")
    p8=$("$bench" --model "$f" --mode prompt --batch 8 --seq 128 --threads "$th" --reps "$reps")
    dec=$("$bench" --model "$f" --mode decode --threads "$th" --reps "$reps")
    peer_json=$(cd "$peer" && node peer.mjs speed "$f" "$th" "$reps")
    python3 - "$t" "$th" "$cpu" "$gemm" "$p512" "$p8" "$dec" "$peer_json" >> "$out" <<'PY'
import json, sys
t, th, cpu, gemm = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
p512, p8, dec, peer = (json.loads(a) for a in sys.argv[5:9])
print(json.dumps({"bench": "gguf_speed", "type": t, "threads": th, "cpu": cpu,
  "pocketllm_prompt512_tps": p512["tokens_per_s"], "llamacpp_prompt512_tps": round(peer["prompt512_tokens_per_s"], 1),
  "pocketllm_batch8x128_tps": p8["tokens_per_s"], "llamacpp_batch8x128_tps": round(peer["batch8x128_tokens_per_s"], 1),
  "pocketllm_decode_tps": dec["tokens_per_s"], "llamacpp_decode_tps": round(peer["decode_tokens_per_s"], 1),
  "pocketllm_prompt512_gflops": p512["gflops"], "sgemm_peak_gflops_1thread": gemm,
  "pocketllm_peak_rss_kib": p8["peak_rss_kib"]}))
PY
    tail -1 "$out"
  done
done
echo "== table ($out)"
python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
peak = next(r["gflops"] for r in rows if r.get("what") == "sgemm_peak_1thread")
print(f"SGEMM peak (Eigen, 1 thread): {peak} GFLOP/s")
print("| type | threads | prompt 512: pocketllm / llama.cpp | ratio | batch 8x128 | ratio | decode tok/s | ratio | GFLOP/s (1 thr: % of SGEMM peak) |")
print("|---|---|---|---|---|---|---|---|---|")
for r in rows:
    if "type" not in r: continue
    ratio = lambda a, b: r[a] / r[b]
    g = r["pocketllm_prompt512_gflops"]
    share = f"{g:.0f} ({100 * g / peak:.0f} %)" if r["threads"] == 1 else f"{g:.0f}"
    print(f"| {r['type']} | {r['threads']} | {r['pocketllm_prompt512_tps']:.0f} / {r['llamacpp_prompt512_tps']:.0f} | {ratio('pocketllm_prompt512_tps','llamacpp_prompt512_tps'):.2f}x | "
          f"{r['pocketllm_batch8x128_tps']:.0f} / {r['llamacpp_batch8x128_tps']:.0f} | {ratio('pocketllm_batch8x128_tps','llamacpp_batch8x128_tps'):.2f}x | "
          f"{r['pocketllm_decode_tps']:.0f} / {r['llamacpp_decode_tps']:.0f} | {ratio('pocketllm_decode_tps','llamacpp_decode_tps'):.2f}x | {share} |")
PY
