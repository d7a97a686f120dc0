#!/usr/bin/python3
"""PyTorch peer for bench/bench_model: the same Llama configuration and batch, random weights.

  torch_model_bench.py --preset 110m|stories260k --mode forward|mezo|weights [--threads N] [--reps R]

forward: median time of one forward + next-token cross-entropy (torch.inference_mode) -> tokens/s
mezo:    one MeZO step as princeton-nlp/MeZO implements it (four passes over the parameters: perturb
         +eps, loss, perturb -2 eps, loss, restore +eps, then update; z regenerated from torch.manual_seed,
         Gaussian), median step time
Prints one JSON line with ru_maxrss (peak RSS) last; run modes as separate processes.
"""
import argparse
import json
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_llama import Llama  # noqa: E402

PRESETS = {
    "110m": dict(vocab_size=32000, hidden_size=768, intermediate_size=2048, num_hidden_layers=12,
                 num_attention_heads=12, num_key_value_heads=12, tie=True, batch=8, seq=128),
    "stories260k": dict(vocab_size=512, hidden_size=64, intermediate_size=172, num_hidden_layers=5,
                        num_attention_heads=8, num_key_value_heads=4, tie=True, batch=32, seq=64),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="110m", choices=PRESETS)
    ap.add_argument("--mode", default="forward", choices=["forward", "mezo", "weights"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    p = PRESETS[a.preset]
    cfg = dict(p, rms_norm_eps=1e-5, rope_theta=10000.0)
    d, ff, V = p["hidden_size"], p["intermediate_size"], p["vocab_size"]
    kvd = p["num_key_value_heads"] * d // p["num_attention_heads"]
    torch.manual_seed(1)
    w = {"model.embed_tokens.weight": torch.randn(V, d) * 0.02, "model.norm.weight": torch.ones(d)}
    for l in range(p["num_hidden_layers"]):
        q = f"model.layers.{l}."
        w.update({q + "input_layernorm.weight": torch.ones(d), q + "self_attn.q_proj.weight": torch.randn(d, d) * 0.02,
                  q + "self_attn.k_proj.weight": torch.randn(kvd, d) * 0.02,
                  q + "self_attn.v_proj.weight": torch.randn(kvd, d) * 0.02,
                  q + "self_attn.o_proj.weight": torch.randn(d, d) * 0.02,
                  q + "post_attention_layernorm.weight": torch.ones(d),
                  q + "mlp.gate_proj.weight": torch.randn(ff, d) * 0.02, q + "mlp.up_proj.weight": torch.randn(ff, d) * 0.02,
                  q + "mlp.down_proj.weight": torch.randn(d, ff) * 0.02})
    params = sum(t.numel() for t in w.values())
    if a.mode == "weights":
        print(json.dumps({"mode": "weights", "preset": a.preset, "params": params,
                          "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
        return
    model = Llama(cfg, w)
    B, T = p["batch"], p["seq"]
    tokens = torch.randint(0, V, (B, T))
    targets = torch.randint(0, V, (B, T))
    lengths = torch.full((B,), T)

    def loss():
        logits = model.logits(tokens, lengths)
        return torch.nn.functional.cross_entropy(logits.view(-1, V), targets.view(-1))

    def timed(fn):
        fn()
        ts = []
        for _ in range(a.reps):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return sorted(ts)[len(ts) // 2]

    with torch.inference_mode():
        fwd = timed(loss)
        if a.mode == "forward":
            print(json.dumps({"mode": "forward", "preset": a.preset, "threads": a.threads, "batch": B, "seq": T,
                              "params": params, "forward_ms": fwd * 1e3, "tokens_per_s": B * T / fwd,
                              "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
            return
        eps, lr = 1e-3, 1e-6
        state = {"seed": 0}

        def perturb(scale, seed):  # MeZO's zo_perturb_parameters
            torch.manual_seed(seed)
            for t in w.values():
                z = torch.normal(mean=0, std=1, size=t.size(), dtype=t.dtype)
                t.data = t.data + scale * z * eps

        def mezo_step():
            seed = state["seed"] = state["seed"] + 1
            perturb(1, seed)
            l1 = loss()
            perturb(-2, seed)
            l2 = loss()
            perturb(1, seed)
            g = float((l1 - l2) / (2 * eps))
            torch.manual_seed(seed)
            for t in w.values():
                z = torch.normal(mean=0, std=1, size=t.size(), dtype=t.dtype)
                t.data = t.data - lr * g * z

        step = timed(mezo_step)
        print(json.dumps({"mode": "mezo", "preset": a.preset, "threads": a.threads, "batch": B, "seq": T,
                          "forward_ms": fwd * 1e3, "step_ms": step * 1e3, "overhead": step / (2 * fwd),
                          "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


if __name__ == "__main__":
    main()
