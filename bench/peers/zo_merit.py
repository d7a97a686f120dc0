#!/usr/bin/python3
"""How fast can zeroth-order training learn with a given trainable set? (issue 18, analysis tool)

For stories260K on SST-2 (k-shot sample of --data-seed, `{text} It was` -> bad/good) and each trainable set
given, PyTorch autograd computes at the base weights: the full-sample gradient G, the second moment of the
gradient of random batches of --batch-size, and their ratio SNR = |G|^2 / E|g_B|^2. A ZO-SGD step along
z ~ N(0, I) decreases the loss by about lr |G|^2 and adds about lr^2/2 E|g_B|^2 tr(H): with the best lr,
progress per step is ~ |G|^2 SNR / tr(H), and with tr(H) ~ d (trainable parameters) times a curvature
scale, `merit = |G|^2 SNR / d` compares sets (higher learns faster per step, at the start).

  /usr/bin/python3 bench/peers/zo_merit.py pat:norm "pat:^model.norm" "lora:8/q_proj,v_proj" ...
    pat:REGEX         tensors whose name matches REGEX
    lora:R/T1,T2,...  LoRA adapters of rank R on modules ending in T (A ~ N(0, 1/in), B = 0)
Needs Debian's python3-torch (a bench peer, bench/setup_peers.sh).
"""
import argparse
import os
import random
import re
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ft_reference import answer_tokens, pad, read_tsv  # noqa: E402
from torch_llama import Llama, Llama2cTokenizer, load_llama2c  # noqa: E402

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ap = argparse.ArgumentParser()
ap.add_argument("sets", nargs="+")
ap.add_argument("--shared", default=os.environ.get("POCKETLLM_SHARED", os.path.join(root, "..", "shared")))
ap.add_argument("--k-shot", type=int, default=512)
ap.add_argument("--data-seed", type=int, default=1)
ap.add_argument("--batch-size", type=int, default=16)
ap.add_argument("--batches", type=int, default=24)
a = ap.parse_args()
torch.set_num_threads(1)
hub = os.path.join(a.shared, "hub", "karpathy", "tinyllamas", "stories260K")
cfg, w = load_llama2c(os.path.join(hub, "stories260K.bin"))
tok = Llama2cTokenizer(os.path.join(hub, "tok512.bin"), cfg["vocab_size"])
template = "{text} It was"
cand = answer_tokens(tok, template, (" bad", " good"))
rows = read_tsv(os.path.join(a.shared, "data", "sst2", "glue_sst2_train.tsv"))
order = list(range(len(rows)))
random.Random(a.data_seed).shuffle(order)
taken, picked = {}, []
for i in order:
    if taken.get(rows[i][1], 0) < a.k_shot:
        taken[rows[i][1]] = taken.get(rows[i][1], 0) + 1
        picked.append(rows[i])
data = [(tok.encode(template.replace("{text}", t)), int(l)) for t, l in picked]
adapters = {}


def linear(h, name):
    y = h @ w[name].T
    if name in adapters:
        A, B = adapters[name]
        y = y + (h @ A.T) @ B.T
    return y


model = Llama(cfg, w, linear=linear)


def loss(items):
    toks, lens = pad([s for s, _ in items])
    h = model.hidden(toks, lens)
    last = h[torch.arange(len(items)), lens - 1]
    return torch.nn.functional.cross_entropy(last @ model.head()[cand].T, torch.tensor([y for _, y in items]))


def select(spec):
    adapters.clear()
    kind, _, arg = spec.partition(":")
    if kind == "pat":
        return [w[n] for n in w if re.search(arg, n)]
    r, targets = arg.split("/")[:2]
    params = []
    for n, t in w.items():
        if ".layers." in n and t.dim() == 2 and any(n.endswith(x + ".weight") for x in targets.split(",")):
            A = torch.randn(int(r), t.shape[1]) / t.shape[1] ** 0.5
            B = torch.zeros(t.shape[0], int(r))
            adapters[n] = (A, B)
            params += [A, B]
    return params


print(f"{'trainable set':44s} {'d':>7s} {'|G|^2':>10s} {'E|g_B|^2':>10s} {'SNR':>7s} {'merit':>10s}")
for spec in a.sets:
    torch.manual_seed(0)
    for t in w.values():
        t.requires_grad_(False)
    params = select(spec)
    if not params:
        sys.exit(f"{spec}: selects nothing")
    for p in params:
        p.requires_grad_(True)
    d = sum(p.numel() for p in params)
    G = [torch.zeros_like(p) for p in params]
    for i in range(0, len(data), 64):
        chunk = data[i: i + 64]
        for g, gi in zip(G, torch.autograd.grad(loss(chunk) * len(chunk) / len(data), params)):
            g += gi
    g2 = sum(float((g * g).sum()) for g in G)
    rng = random.Random(0)
    m2 = 0.0
    for _ in range(a.batches):
        gs = torch.autograd.grad(loss(rng.sample(data, a.batch_size)), params)
        m2 += sum(float((g * g).sum()) for g in gs) / a.batches
    print(f"{spec:44s} {d:7d} {g2:10.3e} {m2:10.3e} {g2 / m2:7.3f} {g2 * g2 / m2 / d:10.3e}", flush=True)
