#!/usr/bin/python3
"""Post-hoc checks on finished SST-2 runs (README "Where the convergence target sits", session 24).

  sst2_posthoc.py average OUT.json TAIL RUN_DIR...
      One update log (docs/update-log.md, JSON form) whose replay onto the base model gives the mean of the
      runs' weights (a "soup" of direction seeds), each run first averaged over the iterates of its last
      TAIL fraction of steps (0: its final weights). Averaging is linear in the entries, so the result is
      the runs' entries with their coeffs scaled: by 1/N for N runs, and by (T - t + 1) / (T - T0 + 1) for
      step t > T0 = T (1 - TAIL) (the number of averaged iterates that contain step t). Replay it with
      `pocketllm replay --model M --log OUT.json --out DIR --tensors PATTERNS` and score DIR with
      `pocketllm eval`.
  sst2_posthoc.py calibrate [MODEL.safetensors]
      Label-word margins (logit good - logit bad) of stories260K, with the norms of MODEL.safetensors (an
      exported run) if given, on the dev set and on data seed 1's k = 512 sample of rows of >= 6 words
      (the preset's sample): raw accuracy, the share predicted "good", per-class recall, and the accuracy
      with an offset added to the margin, chosen on the training sample (best accuracy there; the median,
      which balances the predictions) and, as an upper bound no recipe may use, on dev itself. PyTorch.
  sst2_posthoc.py probe [MODEL.safetensors]
      A linear read-out refitted on the final hidden state at the read position (the model as calibrate
      loads it; forward passes only, no backpropagation through the model): L2-regularised logistic
      regression with a bias, started from -- and pulled towards -- the label words' head rows ("prior")
      or from zero, the strength chosen by 4-fold cross-validation on the training sample alone; prints,
      per strength, the cross-validated, training and dev accuracy, and the chosen one's dev accuracy.
      PyTorch (L-BFGS, float64).
"""
import json
import os
import struct
import sys

SHARED = os.environ.get("POCKETLLM_SHARED", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared"))


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def average(out, tail, runs):
    if not runs or not 0 <= tail < 1:
        sys.exit("average: give TAIL in [0, 1) and at least one run directory")
    entries = []
    for r in runs:
        log = [json.loads(line) for line in open(os.path.join(r, "log.jsonl"))]
        steps = len(log)
        first = int(round(steps * (1 - tail)))  # T0: iterates T0 .. T are averaged
        for e in log:
            t = e["step"] + 1
            w = 1.0 if tail == 0 or t <= first else (steps - t + 1) / (steps - first + 1)
            entries.append({"seed": e["seed"], "coeff": f32(e["coeff"] * w / len(runs))})
    with open(out, "w") as f:
        json.dump({"format": "pocketllm.update_log", "version": 1, "entries": entries}, f)
    print(f"{len(entries)} entries from {len(runs)} run(s), tail {tail}")


def read_safetensors(path, torch):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        if v["dtype"] != "F32":
            sys.exit(f"{path}: {k} is {v['dtype']}, not F32 (export with --format hf)")
        a, b = v["data_offsets"]
        out[k] = torch.frombuffer(bytearray(raw[8 + n + a:8 + n + b]), dtype=torch.float32).view(*v["shape"])
    return out


def load_run(model_path):
    """stories260K with the norm tensors of MODEL.safetensors (an exported run) if given; the model, the
    tokenizer, the label words' candidate tokens, the preset's training sample and the dev rows."""
    import torch
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from torch_llama import Llama, Llama2cTokenizer, load_llama2c
    from ft_reference import answer_tokens, count_words, pocketllm_k_shot, read_tsv
    hub = os.path.join(SHARED, "hub/karpathy/tinyllamas/stories260K")
    cfg, w = load_llama2c(os.path.join(hub, "stories260K.bin"))
    tok = Llama2cTokenizer(os.path.join(hub, "tok512.bin"), cfg["vocab_size"])
    if model_path:
        changed = 0
        for k, v in read_safetensors(model_path, torch).items():
            if "norm" in k and k in w:
                changed += int(bool((w[k] != v).any()))
                w[k] = v.clone()
        print(f"norm tensors taken from {model_path}: {changed} differ from the base")
    cand = answer_tokens(tok, TEMPLATE, (" bad", " good"))
    rows = [r for r in read_tsv(os.path.join(SHARED, "data/sst2/glue_sst2_train.tsv")) if count_words(r[0]) >= 6]
    sample = pocketllm_k_shot(rows, [r[1] for r in rows], 512, 1)
    return Llama(cfg, w), tok, cand, sample, read_tsv(os.path.join(SHARED, "data/sst2/glue_sst2_dev.tsv"))


TEMPLATE = "{text} It was"


def read_positions(model, tok, rows):
    """Final hidden states at every row's read position (the template's last token) and the labels."""
    import torch
    from ft_reference import pad
    enc = [(tok.encode(TEMPLATE.replace("{text}", t)), int(label)) for t, label in rows]
    h, y = [], []
    with torch.no_grad():
        for i in range(0, len(enc), 64):
            items = enc[i:i + 64]
            toks, lens = pad([s for s, _ in items])
            h.append(model.hidden(toks, lens)[torch.arange(len(items)), lens - 1])
            y += [label for _, label in items]
    return torch.cat(h), torch.tensor(y)


def calibrate(model_path):
    import torch
    model, tok, cand, sample, dev_rows = load_run(model_path)

    def margins(rows):
        h, y = read_positions(model, tok, rows)
        logits = h @ model.head()[cand].T
        return logits[:, 1] - logits[:, 0], y

    def acc(d, y, b):
        return float(((d + b > 0).long() == y).float().mean()) * 100

    def best_offset(d, y):
        best = (acc(d, y, 0.0), 0.0)
        for b in sorted(set((-d + 1e-6).tolist())):
            a = acc(d, y, b)
            if a > best[0]:
                best = (a, b)
        return best

    dd, dy = margins(dev_rows)
    td, ty = margins(sample)
    train_acc, train_b = best_offset(td, ty)
    median_b = -float(td.median())
    dev_acc, dev_b = best_offset(dd, dy)
    print(json.dumps({
        "dev_accuracy": round(acc(dd, dy, 0.0), 2), "dev_share_good": round(float((dd > 0).float().mean()), 3),
        "dev_recall_bad": round(acc(dd[dy == 0], dy[dy == 0], 0.0), 2), "dev_recall_good": round(acc(dd[dy == 1], dy[dy == 1], 0.0), 2),
        "sample_accuracy": round(acc(td, ty, 0.0), 2),
        "offset_best_on_sample": round(train_b, 4), "dev_accuracy_with_it": round(acc(dd, dy, train_b), 2),
        "offset_median_on_sample": round(median_b, 4), "dev_accuracy_with_median": round(acc(dd, dy, median_b), 2),
        "offset_best_on_dev_upper_bound": round(dev_b, 4), "dev_accuracy_upper_bound": round(dev_acc, 2)}))


def probe(model_path):
    import torch
    model, tok, cand, sample, dev_rows = load_run(model_path)
    xt, yt = read_positions(model, tok, sample)
    xd, yd = read_positions(model, tok, dev_rows)
    xt, xd = xt.double(), xd.double()
    head = model.head().double()
    prior = (head[cand[1]] - head[cand[0]]).detach()

    def acc(x, y, u, b):
        return float((((x @ u + b) > 0).long() == y).double().mean()) * 100

    def fit(x, y, lam, start):
        u0 = start.clone()
        u = start.clone().requires_grad_(True)
        b = torch.zeros((), dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([u, b], max_iter=200, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ u + b, y.double()) + lam * ((u - u0) ** 2).sum()
            loss.backward()
            return loss
        opt.step(closure)
        return u.detach(), b.detach()

    folds = torch.randperm(len(yt), generator=torch.Generator().manual_seed(0))
    print(json.dumps({"label_margin_sample_accuracy": round(acc(xt, yt, prior, 0.0), 2),
                      "label_margin_dev_accuracy": round(acc(xd, yd, prior, 0.0), 2)}))
    for name, start in (("prior", prior), ("zero", torch.zeros_like(prior))):
        best = None
        for lam in (1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0):
            cv = []
            for f in range(4):
                held = folds[f::4]
                keep = torch.ones(len(yt), dtype=torch.bool)
                keep[held] = False
                u, b = fit(xt[keep], yt[keep], lam, start)
                cv.append(acc(xt[held], yt[held], u, b))
            u, b = fit(xt, yt, lam, start)
            row = {"start": name, "l2": lam, "cv_accuracy": round(sum(cv) / len(cv), 2),
                   "sample_accuracy": round(acc(xt, yt, u, b), 2), "dev_accuracy": round(acc(xd, yd, u, b), 2)}
            print(json.dumps(row))
            if best is None or row["cv_accuracy"] > best["cv_accuracy"]:
                best = row
        print(json.dumps({"chosen_by_cv": best}))


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "average" and len(sys.argv) >= 5:
        average(sys.argv[2], float(sys.argv[3]), sys.argv[4:])
    elif len(sys.argv) in (2, 3) and sys.argv[1] == "calibrate":
        calibrate(sys.argv[2] if len(sys.argv) == 3 else "")
    elif len(sys.argv) in (2, 3) and sys.argv[1] == "probe":
        probe(sys.argv[2] if len(sys.argv) == 3 else "")
    else:
        sys.exit(__doc__)
