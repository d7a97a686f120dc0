#!/usr/bin/python3
"""First-order reference for pocketllm's ZO results: fine-tunes the same llama2.c model with Adam and
backpropagation (PyTorch, float32) on the same data and objective, and reports the same metrics.

  ft_reference.py classify --model stories260K.bin --tokenizer tok512.bin --train k.tsv --eval dev.tsv \
      --template "{text} It was" --labels "0:bad,1:good" --steps 1500 --batch-size 16 --lr 1e-3 \
      [--optimizer adam|sgd] [--trainable REGEX] [--add-biases REGEX] [--balanced] [--k-shot 512 --data-seed 1]
      [--sample python|pocketllm] [--order python|pocketllm] [--validation N [--validate-every S]]
      [--min-words W] [--dump-sample FILE]
      [--kv-prefix P | --soft-prompt P] [--precondition hessian-diag [--damping D]] [--decay-to-start L]
      [--label-scoring first|full]   (labels may pool words: "0:bad|awful,1:good|great")
  ft_reference.py lm --model ... --tokenizer ... --train train.txt --eval eval.txt --steps 300 ...
--optimizer sgd is plain SGD (what ZO estimates in expectation); --trainable restricts training to the tensors
whose Hugging Face name matches REGEX; --add-biases gives every projection whose weight name matches REGEX
a zero output bias, trained beside --trainable (pocketllm's --add-biases; --trainable "" still means all
tensors, so pair it with a REGEX such as "norm"); --balanced makes every batch hold the labels in equal shares (as
pocketllm's --balanced does); --k-shot K samples K examples per label from --train with Python's random
(seeded by --data-seed; the same size and balance as pocketllm's k-shot, other sentences), or with
--sample pocketllm by pocketllm's own Philox draw: the very sentences `finetune --k-shot K --data-seed D
[--min-words W]` trains on (--dump-sample writes them out; a pocketllm run on that file with no --k-shot logs
the same losses, which is how the draw was checked). --order pocketllm also takes pocketllm's batches: step t
holds the very sentences of `finetune --data-seed D --batch-size B [--balanced]`'s step t (docs/training.md
"Batches"; checked against a finetune log at lr 1e-30: the mean of each step's two losses equals this script's
batch loss, within 1.1e-5, over 600 steps of pairs across an epoch boundary), so a first-order run here is the
ideal a ZO run of the same data seed follows; the default keeps Python's own order. --validation N holds out
the N rows per label pocketllm's `--validation N` holds out (same carve: the step-0 validation loss and 500
steps of batch losses checked against finetune's the same way), validates every S steps (default steps / 20)
and ends with a line for the weights of the best validation loss ("selected_step").
Small trainable sets and step rules that ZO could use, measured here first in their first-order ideal (README
"Where the convergence target sits"): --kv-prefix P trains a key/value prefix of P positions in every layer
(prefix tuning; initialised with the keys and values the model computes for the first P tokens of a story
opening), --soft-prompt P trains P input embeddings inserted after the first token (prompt tuning; initialised
with real tokens' embeddings) -- both beside --trainable, which may then match nothing ("^$");
--precondition hessian-diag scales every coordinate's step by mean|h| / (|h_i| + D mean|h|), h the Hessian
diagonal of the loss at the start (Hutchinson, --hessian-samples Rademacher probes on a balanced batch of up to
256 training examples; what HiZOO estimates from forward passes, here exact up to the probes); --decay-to-start L
adds L (theta - theta_0) to every trained tensor's gradient. The read-out: --label-scoring first (pocketllm's
classify task) scores a label word by its first token's logit, full by the log-probability of every token it adds
after the prompt (one forward per word); a label with several words scores the log of their summed probabilities.
Prints JSON lines: {"step": s, "eval_loss": ..., "eval_accuracy"|"eval_perplexity": ..., "examples": e,
"train_seconds": t} — e examples trained on so far, t the wall time of the training steps alone (no evaluation).
"""
import argparse
import json
import math
import os
import random
import re
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_llama import Llama, Llama2cTokenizer, load_llama2c  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from perturbation_reference import philox4x32_10  # noqa: E402  (the spec's Philox, written from the spec)


def read_tsv(path):
    rows = []
    for i, line in enumerate(open(path, encoding="utf-8")):
        line = line.rstrip("\n")
        if not line.strip():
            continue
        parts = line.split("\t")
        if i == 0 and parts[0] in ("sentence", "text"):
            continue
        rows.append((parts[0].rstrip(" "), parts[1].strip() if len(parts) > 1 else ""))
    return rows


def count_words(text):
    """Words as pocketllm's --min-words counts them: runs of characters other than ASCII blanks."""
    return len([w for w in re.split(r"[ \t\n\r\v\f]+", text) if w])


def philox_shuffle(items, seed, stream0, stream1):
    """common/seeds.h philox_shuffle: a Fisher-Yates shuffle from the end, in place, driven by Philox-4x32-10
    (key = the seed's low and high words, counter = (draw, draw >> 32, stream0, stream1))."""
    key = (seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF)
    draw = 0
    for i in range(len(items), 1, -1):
        x = philox4x32_10((draw & 0xFFFFFFFF, draw >> 32, stream0, stream1), key)
        j = ((x[0] << 32) | x[1]) % i
        items[i - 1], items[j] = items[j], items[i - 1]
        draw += 1
    return items


def pocketllm_k_shot(rows, labels, k, seed):
    """pocketllm's k-shot draw (client/src/task.cpp k_shot_indices, common/seeds.h philox_shuffle): a
    Fisher-Yates shuffle from the end driven by Philox-4x32-10 (key = the seed's low and high words, counter
    = (draw, draw >> 32, "shot", "k")), then the first k rows of each label in shuffled order, returned in
    file order -- the same sentences finetune trains on with --k-shot k --data-seed seed."""
    order = philox_shuffle(list(range(len(rows))), seed, 0x73686F74, 0x6B)
    taken = {}
    picked = []
    for i in order:
        taken[labels[i]] = taken.get(labels[i], 0) + 1
        if taken[labels[i]] <= k:
            picked.append(i)
    return [rows[i] for i in sorted(picked)]


def pocketllm_epoch_order(n, labels, seed, epoch):
    """pocketllm's order of epoch `epoch` over n training rows (docs/training.md "Batches",
    client/src/trainer.cpp build_epoch_order): a Fisher-Yates shuffle from the end driven by Philox (key =
    the data seed, counter = (draw, draw >> 32, epoch, "data")); with labels (balanced batches) that
    permutation split by label, keeping its order within each label, and dealt round-robin over the labels
    in label-word order. labels is None for unbalanced batches."""
    perm = philox_shuffle(list(range(n)), seed, epoch & 0xFFFFFFFF, 0x64617461)
    if labels is None:
        return perm
    members = [[] for _ in range(max(labels) + 1)]
    for i in perm:
        members[labels[i]].append(i)
    dealt = []
    for r in range(max(len(m) for m in members)):
        dealt += [m[r] for m in members if r < len(m)]
    return dealt


def pocketllm_validation_split(labels, n, seed):
    """pocketllm's --validation N carve (docs/training.md "Validation and the best step", client/src/task.cpp
    carve_validation) over a training sample listed in file order: its indices shuffled by Philox (key = the
    data seed, counter = (draw, draw >> 32, "vali", "d")), the first n of every label in that order form
    the validation split; both parts are returned sorted."""
    order = philox_shuffle(list(range(len(labels))), seed, 0x76616C69, 0x64)
    taken, validation, kept = {}, [], []
    for i in order:
        taken[labels[i]] = taken.get(labels[i], 0) + 1
        (validation if taken[labels[i]] <= n else kept).append(i)
    if any(c <= n for c in taken.values()):
        sys.exit(f"--validation {n}: a label would have nothing left to train on")
    return sorted(kept), sorted(validation)


class PocketllmBatches:
    """pocketllm's batches: example j of step t is position t * B + j of an endless sequence of epochs."""

    def __init__(self, n, labels, seed, batch_size):
        self.n, self.labels, self.seed, self.b = n, labels, seed, batch_size
        self.epoch, self.perm = -1, []

    def __call__(self, t):
        out = []
        for j in range(self.b):
            g = t * self.b + j
            if g // self.n != self.epoch:
                self.epoch = g // self.n
                self.perm = pocketllm_epoch_order(self.n, self.labels, self.seed, self.epoch)
            out.append(self.perm[g % self.n])
        return out


def answer_tokens(tok, template, words, full=False):
    """The tokens of each label word after the prompt: the first token the word adds (what pocketllm's
    classify task reads by default), or with full=True every token it adds (whole-word scoring)."""
    probe = tok.encode(template.replace("{text}", "x"))
    cand = []
    for word in words:
        full_ids = tok.encode(template.replace("{text}", "x") + word)
        k = 0
        while k < len(probe) and probe[k] == full_ids[k]:
            k += 1
        if full and k != len(probe):
            sys.exit(f"label word {word!r} changes the prompt's last token: whole-word scoring needs a clean boundary")
        cand.append(full_ids[k:] if full else full_ids[k])
    return cand


def pad(seqs):
    T = max(len(s) for s in seqs)
    t = torch.zeros(len(seqs), T, dtype=torch.long)
    for i, s in enumerate(seqs):
        t[i, : len(s)] = torch.tensor(s)
    return t, torch.tensor([len(s) for s in seqs])


def hessian_step_scale(batch_loss, train, params, samples, damping, seed):
    """--precondition hessian-diag: per tensor, mean|h| / (|h_i| + damping mean|h|), h the Hessian diagonal of
    the mean loss over a label-balanced batch of up to 256 training examples (Hutchinson: `samples` Rademacher
    probes z, h ~ mean of z * Hz). Prints the diagonal's summary as a JSON line."""
    by_y = {}
    for i, (_, y) in enumerate(train):
        by_y.setdefault(y, []).append(i)
    probe = [train[i] for y in sorted(by_y) for i in by_y[y][: 256 // len(by_y)]]
    l, _ = batch_loss(probe)
    g = torch.autograd.grad(l / len(probe), params, create_graph=True)
    diag = [torch.zeros_like(p) for p in params]
    gen = torch.Generator().manual_seed(seed)
    for _ in range(samples):
        z = [torch.randint(0, 2, p.shape, generator=gen).float() * 2 - 1 for p in params]
        hz = torch.autograd.grad(g, params, grad_outputs=z, retain_graph=True)
        for dg, zi, hzi in zip(diag, z, hz):
            dg += zi * hzi.detach() / samples
    flat = torch.cat([dg.flatten() for dg in diag])
    mean_h = float(flat.abs().mean())
    print(json.dumps({"hessian_diag": {"mean_abs": mean_h, "median_abs": float(flat.abs().median()),
                                       "negative_share": round(float((flat < 0).float().mean()), 3),
                                       "probes": samples, "examples": len(probe)}}), flush=True)
    return [mean_h / (dg.abs() + damping * mean_h) for dg in diag]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("task", choices=["classify", "lm"])
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--train", required=True)
    ap.add_argument("--eval", required=True)
    ap.add_argument("--template", default="{text} It was")
    ap.add_argument("--labels", default="0:bad,1:good",
                    help="LABEL:WORD[|WORD...],...: several words per label are pooled (log of the summed probabilities)")
    ap.add_argument("--label-scoring", choices=["first", "full"], default="first",
                    help="a label word's score: the logit of its first token, or the log-probability of all its tokens")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--schedule", choices=["constant", "cosine"], default="constant",
                    help="cosine: lr * (1 + cos(pi t / steps)) / 2 at step t, as pocketllm's --schedule cosine")
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    ap.add_argument("--trainable", default="", help="regex over tensor names (default: all)")
    ap.add_argument("--add-biases", default="", help="regex over projection weight names that get a zero, trained bias")
    ap.add_argument("--balanced", action="store_true")
    ap.add_argument("--k-shot", type=int, default=0)
    ap.add_argument("--data-seed", type=int, default=1)
    ap.add_argument("--sample", choices=["python", "pocketllm"], default="python",
                    help="k-shot draw: Python's random, or pocketllm's own (Philox, the same sentences as finetune)")
    ap.add_argument("--order", choices=["python", "pocketllm"], default="python",
                    help="batch order: Python's random (balanced: equal shares from per-label queues), or "
                         "pocketllm's own (Philox epochs, dealt round-robin by label with --balanced; the "
                         "batches finetune --data-seed takes)")
    ap.add_argument("--validation", type=int, default=0,
                    help="classify: hold N rows per label out of the training sample (pocketllm's carve), "
                         "validate every --validate-every steps and end with the best validation loss's weights")
    ap.add_argument("--validate-every", type=int, default=0, help="default: steps / 20")
    ap.add_argument("--min-words", type=int, default=0,
                    help="classify: train only on rows of at least W words, filtered before the k-shot draw")
    ap.add_argument("--dump-sample", default="", help="classify: also write the training rows drawn as a TSV")
    ap.add_argument("--kv-prefix", type=int, default=0, help="train a key/value prefix of P positions per layer")
    ap.add_argument("--soft-prompt", type=int, default=0, help="train P input embeddings after the first token")
    ap.add_argument("--precondition", choices=["none", "hessian-diag"], default="none")
    ap.add_argument("--damping", type=float, default=0.1, help="hessian-diag: D in mean|h| / (|h_i| + D mean|h|)")
    ap.add_argument("--hessian-samples", type=int, default=32)
    ap.add_argument("--decay-to-start", type=float, default=0.0, help="add L (theta - theta_0) to the gradient")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    cfg, w = load_llama2c(a.model)
    tok = Llama2cTokenizer(a.tokenizer, cfg["vocab_size"])
    names = [n for n in w if not a.trainable or re.search(a.trainable, n)]
    biases = {n: torch.zeros(w[n].shape[0], requires_grad=True)
              for n in w if a.add_biases and n.endswith("_proj.weight") and re.search(a.add_biases, n)}
    if a.add_biases and not biases:
        sys.exit("--add-biases matches no projection")
    if not names and not (a.kv_prefix or a.soft_prompt):
        sys.exit("--trainable matches no tensor")
    if a.kv_prefix and a.soft_prompt:
        sys.exit("--kv-prefix and --soft-prompt: one at a time")
    for n in names:
        w[n].requires_grad_(True)
    model = Llama(cfg, w, linear=(lambda h, n: h @ w[n].T + biases[n] if n in biases else h @ w[n].T) if biases else None)
    params = [w[n] for n in names] + list(biases.values())
    opening = tok.encode("Once upon a time there was a little girl named Lily. She loved to play")[1:]
    kv_prefix = soft_prompt = None
    if a.kv_prefix:
        if a.kv_prefix > len(opening):
            sys.exit(f"--kv-prefix: at most {len(opening)} positions")
        captured = []
        with torch.no_grad():
            model.hidden(torch.tensor([opening[: a.kv_prefix]]), torch.tensor([a.kv_prefix]), capture=captured)
        kv_prefix = [(k[0].clone().requires_grad_(True), v[0].clone().requires_grad_(True)) for k, v in captured]
        params += [t for kv in kv_prefix for t in kv]
    if a.soft_prompt:
        if a.soft_prompt > len(opening):
            sys.exit(f"--soft-prompt: at most {len(opening)} embeddings")
        soft_prompt = w["model.embed_tokens.weight"][torch.tensor(opening[: a.soft_prompt])].detach().clone().requires_grad_(True)
        params.append(soft_prompt)
    shift = a.soft_prompt
    opt = torch.optim.Adam(params, lr=a.lr) if a.optimizer == "adam" else torch.optim.SGD(params, lr=a.lr)

    validation = []  # classify with --validation: the rows held out of the training sample
    if a.task == "classify":
        words, word_label = [], []
        for l in a.labels.split(","):
            label, alternatives = l.split(":", 1)
            for wd in alternatives.split("|"):
                words.append(" " + wd.strip())
                word_label.append(label.strip())
        label_names = list(dict.fromkeys(word_label))
        label_index = {l: i for i, l in enumerate(label_names)}
        word_class = torch.tensor([label_index[l] for l in word_label])
        cand = answer_tokens(tok, a.template, words, full=a.label_scoring == "full")

        def pool(word_scores):  # [B, W] -> [B, C]: log of the summed (unnormalised) word probabilities
            return torch.stack([torch.logsumexp(word_scores[:, word_class == c], dim=1)
                                for c in range(len(label_names))], dim=1)

        def encode(rows):
            return [(tok.encode(a.template.replace("{text}", t)), label_index[l]) for t, l in rows]

        rows = read_tsv(a.train)
        if a.min_words > 0:
            rows = [r for r in rows if count_words(r[0]) >= a.min_words]
        if a.k_shot > 0 and a.sample == "pocketllm":
            rows = pocketllm_k_shot(rows, [label_index[l] for _, l in rows], a.k_shot, a.data_seed)
        elif a.k_shot > 0:
            order = list(range(len(rows)))
            random.Random(a.data_seed).shuffle(order)
            taken = {}
            picked = []
            for i in order:
                if taken.get(rows[i][1], 0) < a.k_shot:
                    taken[rows[i][1]] = taken.get(rows[i][1], 0) + 1
                    picked.append(rows[i])
            rows = picked
        if a.dump_sample:
            with open(a.dump_sample, "w", encoding="utf-8") as f:
                f.write("sentence\tlabel\n" + "".join(f"{t}\t{l}\n" for t, l in rows))
        train, dev = encode(rows), encode(read_tsv(a.eval))
        if a.validation > 0:
            kept, held = pocketllm_validation_split([y for _, y in train], a.validation, a.data_seed)
            train, validation = [train[i] for i in kept], [train[i] for i in held]
        dev.sort(key=lambda e: len(e[0]))  # less padding; accuracy does not depend on the order

        def batch_loss(items):
            y = torch.tensor([c for _, c in items])
            if a.label_scoring == "first":
                toks, lens = pad([s for s, _ in items])
                h = model.hidden(toks, lens, kv_prefix, soft_prompt)
                rows = h[torch.arange(len(items)), lens - 1 + shift]
                logits = pool(rows @ model.head()[torch.tensor(cand)].T)
            else:  # one forward per label word over prompt + word; the word's tokens' log-probabilities summed
                scores = []
                for ids in cand:
                    toks, lens = pad([s + ids for s, _ in items])
                    h = model.hidden(toks, lens, kv_prefix, soft_prompt)
                    lp = 0.0
                    for j, t in enumerate(ids):
                        pos = lens - len(ids) - 1 + j + shift
                        lp = lp + torch.log_softmax(h[torch.arange(len(items)), pos] @ model.head().T, dim=-1)[:, t]
                    scores.append(lp)
                logits = pool(torch.stack(scores, dim=1))
            return torch.nn.functional.cross_entropy(logits, y, reduction="sum"), logits

        def evaluate():
            with torch.no_grad():
                total, correct = 0.0, 0
                for i in range(0, len(dev), 64):
                    items = dev[i: i + 64]
                    l, logits = batch_loss(items)
                    total += float(l)
                    correct += int((logits.argmax(-1) == torch.tensor([y for _, y in items])).sum())
                return {"eval_loss": total / len(dev), "eval_accuracy": correct / len(dev)}
    else:
        train = [tok.encode(l.rstrip("\n")) for l in open(a.train, encoding="utf-8") if l.strip()]
        dev = [tok.encode(l.rstrip("\n")) for l in open(a.eval, encoding="utf-8") if l.strip()]

        def batch_loss(items):
            toks, lens = pad(items)
            logits = model.logits(toks, lens)
            total, count = 0.0, 0
            for b, s in enumerate(items):
                n = len(s)
                total = total + torch.nn.functional.cross_entropy(logits[b, : n - 1], toks[b, 1:n], reduction="sum")
                count += n - 1
            return total, count

        def evaluate():
            with torch.no_grad():
                total, count = 0.0, 0
                for i in range(0, len(dev), 64):
                    l, c = batch_loss(dev[i: i + 64])
                    total += float(l)
                    count += c
                return {"eval_loss": total / count, "eval_perplexity": math.exp(total / count)}

    if (a.kv_prefix or a.soft_prompt) and a.task != "classify":
        sys.exit("--kv-prefix / --soft-prompt: classify only")
    start = [p.detach().clone() for p in params] if a.decay_to_start else None
    step_scale = None
    if a.precondition == "hessian-diag":
        if a.task != "classify":
            sys.exit("--precondition hessian-diag: classify only")
        step_scale = hessian_step_scale(batch_loss, train, params, a.hessian_samples, a.damping, a.seed)
    print(json.dumps({"step": 0, **evaluate(), "examples": 0, "train_seconds": 0.0}), flush=True)
    if a.validation > 0 and a.task != "classify":
        sys.exit("--validation: classify only")
    validate_every = a.validate_every or max(1, a.steps // 20)
    best = {"loss": math.inf, "step": 0, "params": None}

    def validate(step):  # pocketllm's rule: a strictly lower mean loss wins; a tie keeps the earlier step
        with torch.no_grad():
            total = sum(float(batch_loss(validation[i: i + 64])[0]) for i in range(0, len(validation), 64))
        loss = total / len(validation)
        if loss < best["loss"]:
            best.update(loss=loss, step=step, params=[p.detach().clone() for p in params])
        print(json.dumps({"step": step, "validation_loss": loss, "best": best["step"] == step}), flush=True)

    if validation:
        validate(0)
    trained = 0.0
    seen = 0
    order = []
    by_label = {}
    if a.task == "classify" and a.balanced:
        for i, (_, y) in enumerate(train):
            by_label.setdefault(y, []).append(i)
    queues = {y: [] for y in by_label}
    pocketllm_batches = None
    if a.order == "pocketllm":
        labels = [y for _, y in train] if a.task == "classify" and a.balanced else None
        pocketllm_batches = PocketllmBatches(len(train), labels, a.data_seed, a.batch_size)
    for step in range(a.steps):
        if pocketllm_batches is not None:
            items = [train[i] for i in pocketllm_batches(step)]
        elif by_label:  # labels in equal shares: B / C from each label's own shuffled queue
            share = max(1, a.batch_size // len(by_label))
            items = []
            for y in sorted(by_label):
                if len(queues[y]) < share:
                    idx = by_label[y][:]
                    rng.shuffle(idx)
                    queues[y] += idx
                items += [train[i] for i in queues[y][:share]]
                del queues[y][:share]
        else:
            if len(order) < a.batch_size:
                idx = list(range(len(train)))
                rng.shuffle(idx)
                order += idx
            items = [train[i] for i in order[: a.batch_size]]
            del order[: a.batch_size]
        t0 = time.perf_counter()
        if a.schedule == "cosine":
            for g in opt.param_groups:
                g["lr"] = a.lr * 0.5 * (1.0 + math.cos(math.pi * step / a.steps))
        opt.zero_grad()
        if a.task == "classify":
            l, _ = batch_loss(items)
            (l / len(items)).backward()
        else:
            l, c = batch_loss(items)
            (l / c).backward()
        if step_scale is not None:
            for p, sc in zip(params, step_scale):
                p.grad *= sc
        if a.decay_to_start:
            for p, p0 in zip(params, start):
                p.grad += a.decay_to_start * (p.detach() - p0)
        opt.step()
        trained += time.perf_counter() - t0
        seen += len(items)
        if validation and ((step + 1) % validate_every == 0 or step + 1 == a.steps):
            validate(step + 1)
        if (step + 1) % a.eval_every == 0 or step + 1 == a.steps:
            print(json.dumps({"step": step + 1, **evaluate(), "examples": seen, "train_seconds": round(trained, 3)}), flush=True)
    if validation:
        with torch.no_grad():
            for p, b in zip(params, best["params"]):
                p.copy_(b)
        print(json.dumps({"step": a.steps, **evaluate(), "selected_step": best["step"], "examples": seen,
                          "train_seconds": round(trained, 3)}), flush=True)


if __name__ == "__main__":
    main()
