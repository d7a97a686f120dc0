#!/usr/bin/env bash
# stories260K (32 x 64 tokens) forward on 1 and 2 threads and the ZO step on 2, beside PyTorch's forward
# and MeZO-style step in the same run, in alternating rounds; optionally beside another build of the
# engine (a base commit) so a change to threading is measured against its own baseline on one machine.
#   bench/run_stories_threads.sh [--base BUILD_DIR] [--rounds N] [--reps R]
#   results: $OUT (default bench/results/stories260k_threads.jsonl), medians on stdout
set -euo pipefail
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
root="$(cd "$(dirname "$0")/.." && pwd)"
base="" rounds=3 reps=20
while [ $# -gt 0 ]; do
  case "$1" in
    --base) base="${2:?--base needs a build directory}"; shift 2 ;;
    --rounds) rounds="${2:?--rounds needs a number}"; shift 2 ;;
    --reps) reps="${2:?--reps needs a number}"; shift 2 ;;
    *) echo "run_stories_threads.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
new="${POCKETLLM_BUILD_DIR:-$root/build}/bin/bench_model"
[ -x "$new" ] || { echo "run_stories_threads.sh: $new not built" >&2; exit 1; }
[ -z "$base" ] || [ -x "$base/bin/bench_model" ] || { echo "run_stories_threads.sh: $base/bin/bench_model not built" >&2; exit 1; }
"$root/bench/setup_peers.sh" > /dev/null
. "$root/bench/openblas_coretype.sh"
py=(env GLIBC_TUNABLES=glibc.malloc.mmap_threshold=536870912:glibc.malloc.trim_threshold=1073741824
    /usr/bin/python3 "$root/bench/peers/torch_model_bench.py" --preset stories260k --reps "$reps")
out="${OUT:-$root/bench/results/stories260k_threads.jsonl}"
mkdir -p "$(dirname "$out")"
: > "$out"
cpu="$("$root/bench/cpu_name.sh")"
row() { sed "s|}\$|,\"engine\":\"$1\",\"round\":$2,\"cpu\":\"$cpu\"}|" | tee -a "$out"; }
for round in $(seq "$rounds"); do
  for engine in ${base:+base} new; do
    bin="$new"; [ "$engine" = base ] && bin="$base/bin/bench_model"
    for t in 1 2; do "$bin" --preset stories260k --mode forward --threads $t --reps "$reps" | row $engine $round; done
    "$bin" --preset stories260k --mode step --threads 2 --reps "$reps" | row $engine $round
  done
  for t in 1 2; do OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t "${py[@]}" --mode forward --threads $t | row torch $round; done
  OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 "${py[@]}" --mode mezo --threads 2 | row torch $round
done
/usr/bin/python3 - "$out" <<'PY'
import collections, json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
ms = collections.defaultdict(list)
for r in rows:
    ms[(r["engine"], r["mode"], r["threads"])].append(r["step_ms"] if r["mode"] in ("step", "mezo") else r["forward_ms"])
print(f"{rows[0]['cpu']}: medians over {max(r['round'] for r in rows)} rounds (ms)")
for k in sorted(ms):
    print(f"  {k[0]:5s} {k[1]:7s} {k[2]} thread(s): {statistics.median(ms[k]):8.2f}   (all: {', '.join(f'{v:.2f}' for v in ms[k])})")
PY
