#!/usr/bin/env python3
"""ggml itself (libggml-base.so from node-llama-cpp's prebuilt binaries, through ctypes) against pocketllm's
block formats and quantizers:
  - dequantization: a tiny llama GGUF whose matrices are random blocks of every type pocketllm reads (Q8_0, Q4_0,
    Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K) is converted
    by `pocketllm convert --type f32`; every value must equal ggml's dequantize_row_* of the same blocks, bit
    for bit;
  - quantization: an F32 GGUF converted by `pocketllm convert --type q8_0|q4_0` must hold exactly the blocks
    ggml's quantize_row_q8_0_ref / quantize_row_q4_0_ref make of the same rows.
  quant_check.py POCKETLLM_BINARY LIBGGML_BASE WORK_DIR   -> one JSON line per check; exit 1 on a mismatch"""
import ctypes, json, os, random, struct, subprocess, sys

pocketllm, libpath, work = sys.argv[1:4]
ggml = ctypes.CDLL(libpath)
BLOCK = {"F32": (0, 1, 4), "Q4_0": (2, 32, 18), "Q4_1": (3, 32, 20), "Q5_0": (6, 32, 22), "Q5_1": (7, 32, 24), "Q8_0": (8, 32, 34),
         "Q2_K": (10, 256, 84), "Q3_K": (11, 256, 110), "Q4_K": (12, 256, 144), "Q5_K": (13, 256, 176), "Q6_K": (14, 256, 210)}
# Byte offsets of a block's f16 scales (set to small finite values; a random f16 could be inf or nan).
SCALES = {"Q8_0": [0], "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q2_K": [80, 82], "Q3_K": [108],
          "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208]}
rng = random.Random(11)

def write_gguf(path, tensors, vocab=8):
    def s(x):
        b = x.encode(); return struct.pack("<Q", len(b)) + b
    kv = []
    def add(k, t, payload): kv.append(s(k) + struct.pack("<I", t) + payload)
    add("general.architecture", 8, s("llama"))
    for k, v in [("context_length", 64), ("embedding_length", 256), ("block_count", 1), ("feed_forward_length", 256),
                 ("attention.head_count", 2), ("attention.head_count_kv", 2)]:
        add("llama." + k, 4, struct.pack("<I", v))
    toks = ["<unk>", "<s>", "</s>"] + ["\u2581t%d" % i for i in range(vocab - 3)]
    add("tokenizer.ggml.model", 8, s("llama"))
    add("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, len(toks)) + b"".join(s(t) for t in toks))
    add("tokenizer.ggml.scores", 9, struct.pack("<IQ", 6, len(toks)) + struct.pack("<%df" % len(toks), *([0.0] * len(toks))))
    infos, blob = b"", b""
    for name, dims, tname, raw in tensors:
        infos += s(name) + struct.pack("<I", len(dims)) + struct.pack("<%dQ" % len(dims), *dims) + struct.pack("<IQ", BLOCK[tname][0], len(blob))
        blob += raw + b"\0" * ((-len(raw)) % 32)
    head = struct.pack("<IIQQ", 0x46554747, 3, len(tensors), len(kv)) + b"".join(kv) + infos
    open(path, "wb").write(head + b"\0" * ((-len(head)) % 32) + blob)

def read_gguf_tensors(path):
    b = open(path, "rb").read()
    _, _, nt, nkv = struct.unpack_from("<IIQQ", b, 0); at = 24
    def string():
        nonlocal at
        n, = struct.unpack_from("<Q", b, at); at += 8; v = b[at:at + n]; at += n; return v
    size = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    for _ in range(nkv):
        string(); t, = struct.unpack_from("<I", b, at); at += 4
        if t == 8: string()
        elif t == 9:
            et, n = struct.unpack_from("<IQ", b, at); at += 12
            for _ in range(n):
                if et == 8: string()
                else: at += size[et]
        else: at += size[t]
    infos = []
    for _ in range(nt):
        name = string().decode(); nd, = struct.unpack_from("<I", b, at); at += 4
        dims = struct.unpack_from("<%dQ" % nd, b, at); at += 8 * nd
        t, off = struct.unpack_from("<IQ", b, at); at += 12
        infos.append((name, dims, t, off))
    data = (at + 31) // 32 * 32
    by_id = {v[0]: k for k, v in BLOCK.items()}
    out = {}
    for name, dims, t, off in infos:
        n = 1
        for d in dims: n *= d
        _, be, bb = BLOCK[by_id[t]] if t in by_id else (t, 1, 2)
        out[name] = (by_id.get(t, "F16"), b[data + off: data + off + n // be * bb])
    return out

def random_blocks(tname, n_elements):
    _, be, bb = BLOCK[tname]
    raw = bytearray(rng.getrandbits(8) for _ in range(n_elements // be * bb))
    for i in range(0, len(raw), bb):  # finite, small f16 scales at the format's scale offsets
        for o in SCALES[tname]: raw[i + o:i + o + 2] = struct.pack("<e", rng.uniform(-0.02, 0.02))
    return bytes(raw)

def ggml_dequantize(tname, raw, n):
    fn = getattr(ggml, "dequantize_row_" + tname.lower().replace("_k", "_K"))
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    out = (ctypes.c_float * n)()
    buf = ctypes.create_string_buffer(raw, len(raw))
    fn(buf, out, n)
    return struct.pack("<%df" % n, *out)

def ggml_quantize(tname, floats_raw, n):
    fn = getattr(ggml, "quantize_row_" + tname.lower() + "_ref")
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    _, be, bb = BLOCK[tname]
    out = ctypes.create_string_buffer(n // be * bb)
    src = ctypes.create_string_buffer(floats_raw, len(floats_raw))
    fn(src, out, n)
    return out.raw

failures = 0
names = ["token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.attn_v.weight", "blk.0.attn_output.weight",
         "blk.0.ffn_gate.weight", "blk.0.ffn_up.weight", "blk.0.ffn_down.weight"]
norms = [("output_norm.weight", [256], "F32", struct.pack("<256f", *([1.0] * 256))),
         ("blk.0.attn_norm.weight", [256], "F32", struct.pack("<256f", *([1.0] * 256))),
         ("blk.0.ffn_norm.weight", [256], "F32", struct.pack("<256f", *([1.0] * 256)))]
for tname in ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]:
    tensors = list(norms)
    for nm in names:
        dims = [256, 8] if nm == "token_embd.weight" else [256, 256]
        tensors.append((nm, dims, tname, random_blocks(tname, dims[0] * dims[1])))
    src = os.path.join(work, "deq-%s.gguf" % tname); dst = os.path.join(work, "deq-%s-f32.gguf" % tname)
    write_gguf(src, tensors)
    subprocess.run([pocketllm, "convert", "--model", src, "--out", dst, "--type", "f32"], check=True, stdout=subprocess.DEVNULL)
    got = read_gguf_tensors(dst)
    values = differing = 0
    for nm, dims, _, raw in tensors[3:]:
        n = dims[0] * dims[1]
        want = ggml_dequantize(tname, raw, n)
        values += n
        if got[nm][1] != want:
            differing += sum(1 for i in range(n) if want[4 * i:4 * i + 4] != got[nm][1][4 * i:4 * i + 4])
    print(json.dumps({"check": "dequantize", "type": tname, "values": values, "differing": differing}))
    failures += differing != 0

for tname in ["Q8_0", "Q4_0"]:
    tensors = list(norms)
    for nm in names:
        dims = [256, 8] if nm == "token_embd.weight" else [256, 256]
        vals = [rng.gauss(0, 0.05) for _ in range(dims[0] * dims[1])]
        vals[5] = 0.0
        tensors.append((nm, dims, "F32", struct.pack("<%df" % len(vals), *vals)))
    src = os.path.join(work, "q-src-%s.gguf" % tname); dst = os.path.join(work, "q-%s.gguf" % tname)
    write_gguf(src, tensors)
    subprocess.run([pocketllm, "convert", "--model", src, "--out", dst, "--type", tname.lower()], check=True, stdout=subprocess.DEVNULL)
    got = read_gguf_tensors(dst)
    blocks = differing = 0
    _, be, bb = BLOCK[tname]
    for nm, dims, _, raw in tensors[3:]:
        n = dims[0] * dims[1]
        want = ggml_quantize(tname, raw, n)
        blocks += n // be
        differing += sum(1 for i in range(n // be) if want[i * bb:(i + 1) * bb] != got[nm][1][i * bb:(i + 1) * bb])
    print(json.dumps({"check": "quantize", "type": tname, "blocks": blocks, "differing": differing}))
    failures += differing != 0
sys.exit(1 if failures else 0)
