#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz harness into DIR/<harness>/: small valid inputs built here (and
the committed test fixtures), so the fuzzers start from files that get deep into each parser.
   make_corpus.py DIR FIXTURES_DIR [SHARED_DIR]"""
import json, os, struct, sys

out, fixtures = sys.argv[1], sys.argv[2]
shared = sys.argv[3] if len(sys.argv) > 3 else ""

def put(harness, name, data):
    d = os.path.join(out, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

def safetensors(tensors):
    header, blob = {}, b""
    for name, shape, values in tensors:
        raw = struct.pack("<%df" % len(values), *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + blob

# safetensors: hand-made and the architecture fixtures
put("fuzz_safetensors", "two", safetensors([("a", [2, 3], [0.5] * 6), ("b", [1], [1.0])]))
for arch in ("gpt2", "opt", "roberta"):
    p = os.path.join(fixtures, "arch", arch, "model.safetensors")
    if os.path.exists(p):
        put("fuzz_safetensors", arch, open(p, "rb").read())

# update logs: the binary form (docs/update-log.md) and the JSON form
entries = [(0x00c0ffee12345678, 0.25), (1, -1e-3), (0xffffffffffffffff, 3.0)]
put("fuzz_update_log", "log.json", json.dumps({"format": "pocketllm.update_log", "version": 1,
    "entries": [{"seed": "%016x" % s, "coeff": c} for s, c in entries]}))
def fnv1a64(b):
    h = 0xcbf29ce484222325
    for x in b:
        h = ((h ^ x) * 0x100000001b3) & 0xffffffffffffffff
    return h
binary = b"PLLMLOG1" + struct.pack("<Q", len(entries)) + b"".join(struct.pack("<Qf", s, c) for s, c in entries)
binary += struct.pack("<Q", fnv1a64(binary))
put("fuzz_update_log", "log.bin", binary)

# wire types
put("fuzz_protocol", "round", json.dumps({"task": "t", "round": 3, "state": "open", "base_version": 16, "tau": 2,
    "seeds": ["00c0ffee12345678", "0000000000000001"], "lr": 1e-4, "eps": 1e-3, "batch_size": 16, "dist": "rademacher",
    "trainable": "*", "deadline_ms": 1, "server_time_ms": 0, "submissions": 5, "applied_version": 18}))
put("fuzz_protocol", "task", json.dumps({"id": "t", "base_model_id": "a" * 64, "trainable": "norms", "dist": "gaussian",
    "lr": 1e-4, "eps": 1e-3, "batch_size": 8, "tau": 4, "version": 8, "round": 3, "snapshots": True, "device": {"task": "lm"}}))
put("fuzz_protocol", "error", json.dumps({"error": {"code": "round_closed", "message": "closed"}, "current_round": 4, "version": 12}))
put("fuzz_protocol", "submission", json.dumps({"coeffs": [0.5, -0.25], "examples": 16, "base_version": 4, "loss": {"mean": 2.5}}))

# llama2.c: a tiny valid checkpoint (dim 8, hidden 16, 1 layer, 2 heads, 2 kv heads, vocab 12, seq 4)
dim, hidden, layers, heads, kv, vocab, seq = 8, 16, 1, 2, 2, 12, 4
floats = vocab * dim + layers * dim + 4 * layers * dim * dim + layers * dim + 3 * layers * hidden * dim + dim + seq * (dim // heads)
put("fuzz_llama2c", "tiny", struct.pack("<7i", dim, hidden, layers, heads, kv, vocab, seq) + struct.pack("<%df" % floats, *([0.01] * floats)))
tok = struct.pack("<i", 8) + b"".join(struct.pack("<fi", float(i), len(t)) + t for i, t in
    enumerate([b"<unk>", b"<s>", b"</s>", b" ", b"a", b"b", b"ab", b" a", b"Once", b" upon", b"e", b"t"]))
put("fuzz_llama2c", "tok", tok)
if shared and os.path.exists(os.path.join(shared, "hub/karpathy/tinyllamas/stories260K/tok512.bin")):
    put("fuzz_llama2c", "tok512", open(os.path.join(shared, "hub/karpathy/tinyllamas/stories260K/tok512.bin"), "rb").read())

# tokenizer.json: a byte-level BPE and a SentencePiece-style one, small
bpe = {"model": {"type": "BPE", "vocab": {"H": 0, "e": 1, "l": 2, "o": 3, "He": 4, "ll": 5, "Ġ": 6, "w": 7},
                 "merges": ["H e", "l l"], "byte_fallback": False},
       "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True},
       "decoder": {"type": "ByteLevel"}, "added_tokens": [{"id": 8, "content": "<|endoftext|>", "special": True}]}
put("fuzz_tokenizer_json", "bpe.json", json.dumps(bpe))
sp = {"model": {"type": "BPE", "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "▁": 3, "a": 4, "<0x41>": 5}, "merges": [],
                "byte_fallback": True, "unk_token": "<unk>"},
      "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"},
                                                         {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
      "decoder": {"type": "Sequence", "decoders": [{"type": "ByteFallback"}, {"type": "Fuse"}]}}
put("fuzz_tokenizer_json", "sp.json", json.dumps(sp))

# run directory: spec.json on the first line, log.jsonl after
spec = {"format": "pocketllm.run", "version": 1, "model_path": "m", "model_id": "a" * 64, "data_path": "d", "data_sha256": "b" * 64,
        "trainable": "*", "task": {"kind": "lm", "max_length": 32, "template": "{text}"},
        "train": {"steps": 2, "batch_size": 2, "lr": 1e-4, "eps": 1e-3, "seed": "0000000000000001", "dist": "rademacher"}}
put("fuzz_run_dir", "run", json.dumps(spec) + "\n" + json.dumps({"step": 0, "entries": [{"seed": "00000000000000aa", "coeff": 0.1}],
    "decay": 0, "loss_plus": 2.0, "loss_minus": 2.1}) + "\n")

# API requests: method byte, credential byte, target, newline, body
for i, (m, c, t, b) in enumerate([(0, 1, "/v1/tasks", ""), (0, 2, "/v1/tasks/t/round", ""),
                                   (1, 2, "/v1/tasks/t/rounds/1/submissions", '{"coeffs":[0.5,0.25],"examples":8,"base_version":0}'),
                                   (1, 1, "/v1/admin/tasks", '{"id":"u","base_model_id":"' + "b" * 64 + '","tau":1}'),
                                   (0, 2, "/v1/tasks/t/log?since=0&format=binary", ""), (1, 0, "/v1/enrol", '{"token":"et_0"}')]):
    put("fuzz_api", "req%d" % i, bytes([m, c]) + t.encode() + b"\n" + b.encode())
# raw HTTP
put("fuzz_http", "get", b"GET /v1/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer fuzz-admin-token-0123456789abcdef\r\n\r\n")
body = b'{"coeffs":[0.5,0.25],"examples":8,"base_version":0}'
put("fuzz_http", "post", b"POST /v1/tasks/t/rounds/1/submissions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(body)).encode() + b"\r\n\r\n" + body)
put("fuzz_http", "chunked", b"POST /v1/enrol HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"tok\r\n0\r\n\r\n")

# GGUF: a tiny llama (dim 32, 1 layer, 2 heads, 8-token SentencePiece vocabulary), F32 and Q8_0 weights
def gguf_file(qtype):
    def s(x):
        b = x.encode()
        return struct.pack("<Q", len(b)) + b
    kv = []
    def add(key, typ, payload):
        kv.append(s(key) + struct.pack("<I", typ) + payload)
    add("general.architecture", 8, s("llama"))
    for k, v in [("context_length", 64), ("embedding_length", 32), ("block_count", 1), ("feed_forward_length", 64),
                 ("attention.head_count", 2), ("attention.head_count_kv", 2)]:
        add("llama." + k, 4, struct.pack("<I", v))
    add("llama.attention.layer_norm_rms_epsilon", 6, struct.pack("<f", 1e-5))
    toks = ["<unk>", "<s>", "</s>", "\u2581", "a", "b", "\u2581a", "ab"]
    add("tokenizer.ggml.model", 8, s("llama"))
    add("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, len(toks)) + b"".join(s(t) for t in toks))
    add("tokenizer.ggml.scores", 9, struct.pack("<IQ", 6, len(toks)) + struct.pack("<%df" % len(toks), *[0, 0, 0, -1, -2, -2, -0.5, -0.6]))
    add("tokenizer.ggml.token_type", 9, struct.pack("<IQ", 5, len(toks)) + struct.pack("<8i", 2, 3, 3, 1, 1, 1, 1, 1))
    add("tokenizer.ggml.bos_token_id", 4, struct.pack("<I", 1))
    tensors = [("token_embd.weight", [32, 8], qtype), ("output_norm.weight", [32], 0), ("blk.0.attn_norm.weight", [32], 0),
               ("blk.0.attn_q.weight", [32, 32], qtype), ("blk.0.attn_k.weight", [32, 32], qtype), ("blk.0.attn_v.weight", [32, 32], qtype),
               ("blk.0.attn_output.weight", [32, 32], qtype), ("blk.0.ffn_norm.weight", [32], 0), ("blk.0.ffn_gate.weight", [32, 64], qtype),
               ("blk.0.ffn_up.weight", [32, 64], qtype), ("blk.0.ffn_down.weight", [64, 32], qtype)]
    infos, blob = b"", b""
    for name, dims, typ in tensors:
        n = 1
        for d in dims: n *= d
        if typ == 0:
            raw = struct.pack("<%df" % n, *[((i * 37) % 17 - 8) * 0.01 for i in range(n)])
        else:  # Q8_0: f16 scale 0.01 + 32 int8 per block
            raw = b"".join(struct.pack("<e", 0.01) + bytes(((j * 5 + b) % 255) for j in range(32)) for b in range(n // 32))
        infos += s(name) + struct.pack("<I", len(dims)) + struct.pack("<%dQ" % len(dims), *dims) + struct.pack("<IQ", typ, len(blob))
        blob += raw + b"\0" * ((-len(raw)) % 32)
    head = struct.pack("<IIQQ", 0x46554747, 3, len(tensors), len(kv)) + b"".join(kv) + infos
    return head + b"\0" * ((-len(head)) % 32) + blob
put("fuzz_gguf", "tiny_f32", gguf_file(0))
put("fuzz_gguf", "tiny_q8_0", gguf_file(8))

# secure aggregation: byte 0 sizes the round, then one message of each kind (docs/protocol.md section 9)
key = "ab" * 32
secagg = {
    "config": {"round_id": "00000000000000a1", "graph_seed": "00000000000000b2", "min_survivors": 2, "degree": 0,
               "share_threshold": 0, "tau": 4, "scale_bits": 30, "bound": 0.5, "max_weight": 32,
               "uniform_weights": False, "noise_variance": 0},
    "keys": {"enc_public": key, "mask_public": "cd" * 32},
    "roster": {"n": 3, "degree": 2, "share_threshold": 2, "index": 0,
               "neighbours": [{"index": 1, "enc_public": key, "mask_public": key}]},
    "shares": {"shares": [{"to": 1, "sealed": "00" * 92}]},
    "inbox": {"shares": [{"from": 1, "sealed": "11" * 92}]},
    "masked": {"y": ["0123456789abcdef"] * 5},
    "survivors": {"survivors": [0, 1, 2]},
    "unmask": {"shares": [{"owner": 1, "self_mask": True, "share": "22" * 32}]},
}
for name, msg in secagg.items():
    put("fuzz_secagg", name, b"\x05" + json.dumps(msg).encode())

# training data: byte 0 = format (0 text, 1 TSV, 2 JSONL) | 4 labels required | 8 skip empty lines |
# 16 drop sentences under 2 words | 32 classify (labels "0" / "1") | 64 skip over-long | 128 pack (lm)
put("fuzz_utf8", "mixed", b"\x07caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xed\xa0\x80 \xc0\xaf \xf4\x90 end\xe2")
# pins: byte 0 % 3 = 0 a pin list, 1 base64 to decode, 2 bytes to encode
put("fuzz_pins", "list", b"\x00sha256/G8uLG2JscmHHib77QcdSvhOb7iYOzB5mVGJbVCEuJnc=, " + b"ab" * 32)
put("fuzz_pins", "decode", b"\x01Zm9vYmE=")
put("fuzz_pins", "encode", b"\x02foob\x00\xff")
put("fuzz_dataset", "tsv_classify", b"\x25" + b"sentence\tlabel\na cat sat on the mat\t1\nthe bad one\t0\nOnce upon a time\t1\n")
put("fuzz_dataset", "jsonl_mixed", b"\x0a" + json.dumps({"text": "Once upon a time"}).encode() + b"\n\n" +
    json.dumps({"prompt": "Q: a?", "completion": " b"}).encode() + b"\n" + json.dumps({"sentence": "the cat", "label": 1}).encode() + b"\n")
put("fuzz_dataset", "text_packed", b"\x88" + "Once upon a time there was a cat.\nIt sat. Ünïcode — ok\n".encode())
put("fuzz_dataset", "jsonl_classify", b"\x36" + b"".join(json.dumps({"text": t, "label": l}).encode() + b"\n"
    for t, l in [("a good film", "1"), ("a bad film", "0"), ("it was fine really", "1")]))
