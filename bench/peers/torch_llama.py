"""A Llama forward pass in PyTorch written from the architecture's published equations (RMSNorm,
rotary embedding in Hugging Face's half-split convention, grouped-query attention, SwiGLU), used as an
independent reference and benchmark peer for pocketllm. Not part of the product.

Weights are a dict {canonical Hugging Face name: tensor}. Works in float32 or float64.
"""
import json
import math
import struct

import torch


def rms_norm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rotary(x, pos, theta):
    # x: [B, T, H, hd]; pairs (i, i + hd/2) rotated by pos * theta^(-2i/hd)
    hd = x.shape[-1]
    inv = 1.0 / (theta ** (torch.arange(0, hd // 2, dtype=torch.float64) * 2.0 / hd))
    ang = pos[:, None].to(torch.float64) * inv[None, :]  # [T, hd/2]
    cos = torch.cos(ang).to(x.dtype)[None, :, None, :]
    sin = torch.sin(ang).to(x.dtype)[None, :, None, :]
    a, b = x[..., : hd // 2], x[..., hd // 2:]
    return torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)


class Llama:
    def __init__(self, cfg, weights, linear=None):
        self.c = cfg
        self.w = weights
        # linear(h, name) -> h @ W^T for the weight `name`; a hook for adapters (LoRA) in fixtures.
        self.lin = linear or (lambda h, name: h @ weights[name].T)

    def hidden(self, tokens, lengths, kv_prefix=None, soft_prompt=None, capture=None):
        """Final hidden states [B, T, d]. kv_prefix: per layer a pair (keys, values) [P, n_kv_heads, head_dim]
        every position attends to before its own (prefix tuning; the keys taken as stored, no rotation);
        soft_prompt: [P, d] embeddings inserted after the first token (prompt tuning) -- then the result has
        T + P positions and a row's read position moves by P. capture: a list that receives every layer's
        (keys, values) [B, T, n_kv_heads, head_dim] as attention sees them (keys rotated)."""
        c, w = self.c, self.w
        d, nh, nkv = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
        hd = d // nh
        eps, theta = c.get("rms_norm_eps", 1e-5), c.get("rope_theta", 10000.0)
        x = w["model.embed_tokens.weight"][tokens]
        if soft_prompt is not None:
            x = torch.cat([x[:, :1], soft_prompt[None].expand(x.shape[0], -1, -1), x[:, 1:]], dim=1)
            lengths = lengths + soft_prompt.shape[0]
        B, T = x.shape[0], x.shape[1]
        pos = torch.arange(T)
        keys = torch.arange(T)
        causal = keys[None, :] <= pos[:, None]  # [T, T]
        valid = keys[None, :] < lengths[:, None]  # [B, T]
        mask = causal[None, :, :] & valid[:, None, :]  # [B, Tq, Tk]
        if kv_prefix is not None:
            mask = torch.cat([torch.ones(B, T, kv_prefix[0][0].shape[0], dtype=torch.bool), mask], dim=2)
        for l in range(c["num_hidden_layers"]):
            p = f"model.layers.{l}."
            h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
            q = self.lin(h, p + "self_attn.q_proj.weight").view(B, T, nh, hd)
            k = self.lin(h, p + "self_attn.k_proj.weight").view(B, T, nkv, hd)
            v = self.lin(h, p + "self_attn.v_proj.weight").view(B, T, nkv, hd)
            q, k = rotary(q, pos, theta), rotary(k, pos, theta)
            if capture is not None:
                capture.append((k.detach().clone(), v.detach().clone()))
            if kv_prefix is not None:
                k = torch.cat([kv_prefix[l][0][None].expand(B, -1, -1, -1), k], dim=1)
                v = torch.cat([kv_prefix[l][1][None].expand(B, -1, -1, -1), v], dim=1)
            rep = nh // nkv
            k = k.repeat_interleave(rep, dim=2)
            v = v.repeat_interleave(rep, dim=2)
            s = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(hd)
            s = s.masked_fill(~mask[:, None, :, :], float("-inf"))
            a = torch.softmax(s, dim=-1)
            o = torch.einsum("bhqk,bkhd->bqhd", a, v).reshape(B, T, nh * hd)
            x = x + self.lin(o, p + "self_attn.o_proj.weight")
            h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
            g = self.lin(h, p + "mlp.gate_proj.weight")
            u = self.lin(h, p + "mlp.up_proj.weight")
            x = x + self.lin(torch.nn.functional.silu(g) * u, p + "mlp.down_proj.weight")
        return rms_norm(x, w["model.norm.weight"], eps)

    def head(self):
        return self.w.get("lm_head.weight", self.w["model.embed_tokens.weight"])

    def logits(self, tokens, lengths):
        return self.hidden(tokens, lengths) @ self.head().T


def load_llama2c(path):
    """stories260K-style llama2.c checkpoint -> (config, weights with HF names and HF q/k row order)."""
    raw = open(path, "rb").read()
    dim, hidden, layers, heads, kvh, vocab, seq = struct.unpack("<7i", raw[:28])
    shared = vocab > 0
    vocab = abs(vocab)
    hd = dim // heads
    kvd = kvh * hd
    data = torch.frombuffer(bytearray(raw[28:]), dtype=torch.float32)
    at = [0]

    def take(*shape):
        n = math.prod(shape)
        t = data[at[0]: at[0] + n].view(*shape).clone()
        at[0] += n
        return t

    def permute(w, n_heads):  # Meta interleaved pairs -> HF halves (the HF conversion script's permute)
        rows, cols = w.shape
        return w.view(n_heads, rows // n_heads // 2, 2, cols).transpose(1, 2).reshape(rows, cols)

    w = {"model.embed_tokens.weight": take(vocab, dim)}
    rms_att, wq, wk = take(layers, dim), take(layers, dim, dim), take(layers, kvd, dim)
    wv, wo, rms_ffn = take(layers, kvd, dim), take(layers, dim, dim), take(layers, dim)
    w1, w2, w3 = take(layers, hidden, dim), take(layers, dim, hidden), take(layers, hidden, dim)
    w["model.norm.weight"] = take(dim)
    take(seq, hd)  # freq_cis tables
    if not shared:
        w["lm_head.weight"] = take(vocab, dim)
    for l in range(layers):
        p = f"model.layers.{l}."
        w[p + "input_layernorm.weight"] = rms_att[l]
        w[p + "self_attn.q_proj.weight"] = permute(wq[l], heads)
        w[p + "self_attn.k_proj.weight"] = permute(wk[l], kvh)
        w[p + "self_attn.v_proj.weight"] = wv[l]
        w[p + "self_attn.o_proj.weight"] = wo[l]
        w[p + "post_attention_layernorm.weight"] = rms_ffn[l]
        w[p + "mlp.gate_proj.weight"] = w1[l]
        w[p + "mlp.down_proj.weight"] = w2[l]
        w[p + "mlp.up_proj.weight"] = w3[l]
    cfg = {"hidden_size": dim, "intermediate_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
           "num_key_value_heads": kvh, "vocab_size": vocab, "max_position_embeddings": seq, "rms_norm_eps": 1e-5,
           "rope_theta": 10000.0, "tie_word_embeddings": shared}
    return cfg, w


def write_safetensors(path, tensors):
    """Minimal safetensors writer (F32/F64 little-endian), names in the given order."""
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        t = t.contiguous()
        b = t.numpy().tobytes()
        dtype = {torch.float32: "F32", torch.float64: "F64"}[t.dtype]
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


class Llama2cTokenizer:
    """llama2.c's tokenizer.bin encode (run.c): dummy prefix space, code points, byte fallback, greedy merges."""

    def __init__(self, path, vocab_size):
        raw = open(path, "rb").read()
        at = 4
        self.pieces, self.scores = [], []
        for _ in range(vocab_size):
            score, n = struct.unpack("<fi", raw[at: at + 8])
            at += 8
            self.pieces.append(raw[at: at + n])
            self.scores.append(score)
            at += n
        self.lookup = {}
        for i, p in enumerate(self.pieces):
            self.lookup.setdefault(p, i)

    def encode(self, text, bos=True):
        ids = [1] if bos else []
        if text:
            ids.append(self.lookup[b" "])
        for ch in text:
            b = ch.encode("utf-8")
            if b in self.lookup:
                ids.append(self.lookup[b])
            else:
                ids.extend(x + 3 for x in b)
        first = 1 if bos else 0
        while True:
            best, best_id, best_at = -1e10, -1, -1
            for i in range(first, len(ids) - 1):
                j = self.lookup.get(self.pieces[ids[i]] + self.pieces[ids[i + 1]])
                if j is not None and self.scores[j] > best:
                    best, best_id, best_at = self.scores[j], j, i
            if best_id < 0:
                break
            ids[best_at: best_at + 2] = [best_id]
        return ids
