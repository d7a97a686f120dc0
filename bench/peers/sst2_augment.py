#!/usr/bin/python3
"""Augmented copies of the SST-2 preset's training sample, for measuring data augmentation under ZO with the
trainer as it is (README "Where the convergence target sits", session 25).

  sst2_augment.py OUT_DIR [--copies N] [--drop P] [--seed S] [--data-seed D]

Writes OUT_DIR/train.tsv: the k = 512 per-class sample `finetune --preset sst2 --k-shot 512 --data-seed D`
trains on (pocketllm's own Philox draw over the rows of >= 6 words), each sentence N times -- once as it is
with the preset's prompt tail " It was", and N - 1 times with every word dropped with probability P (at least
one word kept) under a tail drawn from " It was", " The movie was", " I felt", " Overall it was" (the label
words " bad" / " good" are the same tokens after each); and OUT_DIR/dev.tsv: the dev set with " It was"
appended. The prompt is part of the text, so train with `--template "{text}"` and no --k-shot:

  pocketllm finetune --model stories260K --data OUT_DIR/train.tsv --preset sst2 --template "{text}" \\
      --steps 4800 --seed 0 --eval-data OUT_DIR/dev.tsv --out RUN

`pocketllm eval --data OUT_DIR/dev.tsv --task classify --template "{text}" --labels 0:bad,1:good` scores
the very strings `--preset sst2` scores on the plain dev set (same loss and accuracy).
"""
import argparse
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ft_reference import count_words, pocketllm_k_shot, read_tsv  # noqa: E402

SHARED = os.environ.get("POCKETLLM_SHARED", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared"))
TAILS = (" It was", " The movie was", " I felt", " Overall it was")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--copies", type=int, default=8)
    ap.add_argument("--drop", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--data-seed", type=int, default=1)
    a = ap.parse_args()
    if a.copies < 1 or not 0 <= a.drop < 1:
        sys.exit("sst2_augment: --copies >= 1 and --drop in [0, 1)")
    rows = [r for r in read_tsv(os.path.join(SHARED, "data/sst2/glue_sst2_train.tsv")) if count_words(r[0]) >= 6]
    sample = pocketllm_k_shot(rows, [label for _, label in rows], 512, a.data_seed)
    rng = random.Random(a.seed)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "train.tsv"), "w", encoding="utf-8") as f:
        f.write("sentence\tlabel\n")
        for text, label in sample:
            f.write(f"{text}{TAILS[0]}\t{label}\n")
            for _ in range(a.copies - 1):
                words = text.split(" ")
                kept = [w for w in words if rng.random() >= a.drop] or words
                f.write(f"{' '.join(kept)}{rng.choice(TAILS)}\t{label}\n")
    with open(os.path.join(a.out, "dev.tsv"), "w", encoding="utf-8") as f:
        f.write("sentence\tlabel\n")
        for text, label in read_tsv(os.path.join(SHARED, "data/sst2/glue_sst2_dev.tsv")):
            f.write(f"{text}{TAILS[0]}\t{label}\n")
    print(f"{len(sample)} sentences x {a.copies} -> {os.path.join(a.out, 'train.tsv')}; dev with the prompt -> {os.path.join(a.out, 'dev.tsv')}")


if __name__ == "__main__":
    main()
