#!/usr/bin/env python3
"""The 110M forward's speed as a share of the best SGEMM on the machine (issue 17's 85 % goal).

  bench/forward_vs_best_sgemm.py SHOOTOUT.jsonl MODEL_BENCH.jsonl [--threads 1] [--m 1024]

SHOOTOUT.jsonl is bench/run_gemm_shootout.sh's output, MODEL_BENCH.jsonl bench/run_model_bench.sh's, from
the same session. For each shape of the forward (query/key/value/output 768 x 768 four times a layer, the
gate and up 2048 x 768 twice, the down 768 x 2048 once, the LM head 32000 x 768) the fastest backend of the
shoot-out at M rows and the thread count is taken; the "best SGEMM" is the rate at which those fastest
products would run the forward's GEMM FLOPs (the time of each shape's FLOP share at its best rate, summed),
and the forward's GFLOP/s (pocketllm's row of the model bench) is divided by it.

Files with several measurements of a backend and shape, or several forward rows (bench/run_forward_vs_sgemm.sh
writes both into one file, in rounds), give each its median; rows carrying a "round" also give the ratio of
each round, the forward against the best SGEMM of its own round, and their median.
"""
import argparse
import json
import statistics
import sys

LAYERS = 12
# Multiply-adds of one token per shape class: (N, K, count per layer or None for once per forward).
SHAPES = {
    "qkv_o": (768, 768, 4),
    "ffn_up": (2048, 768, 2),
    "ffn_down": (768, 2048, 1),
    "lm_head": (32000, 768, None),
}


def rows(path):
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"{path}:{n}: not JSON ({e})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("shootout")
    ap.add_argument("model_bench")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--m", type=int, default=1024)
    a = ap.parse_args()

    shoot = [r for r in rows(a.shootout) if r.get("bench") == "gemm_shootout" and r.get("threads") == a.threads
             and r.get("m") == a.m and r.get("shape") in SHAPES]
    forward = [r for r in rows(a.model_bench) if r.get("mode") == "forward" and r.get("preset") == "110m"
               and r.get("threads") == a.threads and "gflops" in r]
    best = best_per_shape(shoot)
    missing = [s for s in SHAPES if s not in best]
    if missing:
        sys.exit(f"{a.shootout}: no rows at {a.threads} thread(s), M = {a.m} for {', '.join(missing)}")
    if not forward:
        sys.exit(f"{a.model_bench}: no pocketllm 110m forward row at {a.threads} thread(s)")
    fwd = statistics.median(r["gflops"] for r in forward)
    best_rate = mix_rate(best)
    for s in SHAPES:
        print(f"{s:9s} share {MACS[s] / TOTAL:6.1%}  best {best[s][0]:6.1f} GFLOP/s ({best[s][1]})")
    print(f"best SGEMM at the forward's FLOP mix: {best_rate:.1f} GFLOP/s")
    n = f", medians of {len(forward)}" if len(forward) > 1 else ""
    print(f"forward ({a.threads} thread(s){n}): {fwd:.1f} GFLOP/s = {fwd / best_rate:.1%} of it")

    rounds = sorted({r["round"] for r in forward if "round" in r} & {r["round"] for r in shoot if "round" in r})
    ratios = []
    for k in rounds:
        b = best_per_shape([r for r in shoot if r.get("round") == k])
        f = [r["gflops"] for r in forward if r.get("round") == k]
        if len(b) == len(SHAPES) and f:
            ratios.append(statistics.median(f) / mix_rate(b))
    if ratios:
        print(f"per round: {' '.join(f'{x:.1%}' for x in ratios)}; median {statistics.median(ratios):.1%} "
              f"(min {min(ratios):.1%}, max {max(ratios):.1%})")


# Multiply-adds of one forward per shape class.
MACS = {s: n * k * (c * LAYERS if c else 1) for s, (n, k, c) in SHAPES.items()}
TOTAL = sum(MACS.values())


def best_per_shape(shoot):
    """shape -> (GFLOP/s, backend): the backend with the highest median over its rows."""
    by = {}
    for r in shoot:
        by.setdefault((r["shape"], r["backend"]), []).append(r["gflops"])
    best = {}
    for (s, b), v in by.items():
        m = statistics.median(v)
        if s not in best or m > best[s][0]:
            best[s] = (m, b)
    return best


def mix_rate(best):
    """The rate at which the forward's GEMM FLOPs would run, each shape at its best rate."""
    return 1.0 / sum(MACS[s] / TOTAL / best[s][0] for s in SHAPES)


if __name__ == "__main__":
    main()
