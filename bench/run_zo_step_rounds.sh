#!/usr/bin/env bash
# The ZO step against the MeZO-style PyTorch step (Llama 110M, batch 8 x 128, 2 threads), in alternating
# rounds so that drift on a shared machine hits both sides alike: round r runs pocketllm first when r is
# even and PyTorch first when r is odd. Prints each round's ratio and the median over rounds.
#   bench/run_zo_step_rounds.sh [rounds (5)] [reps per measurement (3)] [preset (110m)]
#   results: $OUT (default bench/results/zo_step_rounds.jsonl), one row per measurement with its round
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
rounds="${1:-5}"
reps="${2:-3}"
preset="${3:-110m}"
[[ "$rounds" =~ ^[1-9][0-9]*$ && "$reps" =~ ^[1-9][0-9]*$ ]] || { echo "rounds and reps must be positive integers" >&2; exit 2; }
"$root/bench/setup_peers.sh" > /dev/null
bin="${POCKETLLM_BUILD_DIR:-$root/build}/bin/bench_model"
[ -x "$bin" ] || { echo "$bin: not built (scripts/build.sh)" >&2; exit 1; }
# The PyTorch peer keeps freed tensors in the heap instead of returning each one to the kernel: with
# glibc's defaults every large temporary is a fresh mmap whose pages fault in again, which on some VMs
# (the Zen 5 of session 31) made torch's element-wise ops 4-5x slower (a 1024 x 2048 multiply: 7.3 ms,
# 1.6 ms with these settings, numpy 0.4). The peer's best case; pocketllm reuses its own scratch.
py=(env GLIBC_TUNABLES=glibc.malloc.mmap_threshold=536870912:glibc.malloc.trim_threshold=1073741824
    /usr/bin/python3 "$root/bench/peers/torch_model_bench.py")
out="${OUT:-$root/bench/results/zo_step_rounds.jsonl}"
mkdir -p "$(dirname "$out")"
: > "$out"
. "$root/bench/openblas_coretype.sh"
cpu="$("$root/bench/cpu_name.sh")"
tag() { sed "s|}\$|,\"round\":$1,\"cpu\":\"$cpu\"}|"; }
ours() { "$bin" --preset "$preset" --mode step --threads 2 --reps "$reps" | tag "$1" | tee -a "$out" > /dev/null; }
peer() {
  OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 "${py[@]}" --preset "$preset" --mode mezo --threads 2 --reps "$reps" |
    tag "$1" | tee -a "$out" > /dev/null
}
for ((r = 0; r < rounds; ++r)); do
  if ((r % 2 == 0)); then ours $r; peer $r; else peer $r; ours $r; fi
  echo "round $r done" >&2
done
python3 - "$out" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by_round = {}
for r in rows:
    by_round.setdefault(r["round"], {})[r["mode"]] = r
ratios, ours_ms, peer_ms, rss = [], [], [], []
for k in sorted(by_round):
    s, m = by_round[k]["step"], by_round[k]["mezo"]
    ratios.append(m["step_ms"] / s["step_ms"])
    ours_ms.append(s["step_ms"]); peer_ms.append(m["step_ms"])
    rss.append(s["peak_rss_kib"] / m["peak_rss_kib"])
    print(f"round {k}: pocketllm {s['step_ms']:.0f} ms, MeZO-style PyTorch {m['step_ms']:.0f} ms, {ratios[-1]:.2f}x, RSS {rss[-1]:.2f}x")
print(f"median over {len(ratios)} rounds ({rows[0]['cpu']}): pocketllm {statistics.median(ours_ms):.0f} ms, "
      f"PyTorch {statistics.median(peer_ms):.0f} ms, ratio {statistics.median(ratios):.2f}x "
      f"(min {min(ratios):.2f}, max {max(ratios):.2f}), RSS {statistics.median(rss):.2f}x")
EOF
