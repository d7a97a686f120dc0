#!/usr/bin/env python3
"""Rewrites the 2-D F32 matrices of a GGUF file as another ggml block type with ggml's own reference
quantizer (quantize_row_<type>_ref from node-llama-cpp's prebuilt libggml-base.so, through ctypes): a
file of the kind llama.cpp's llama-quantize writes, for the peer benches (pocketllm has no K-quant
quantizer; it reads them). Metadata is copied byte for byte; every 2-D F32 matrix whose rows are whole
blocks is converted (the token embedding, which a tied model also reads as its LM head, included); 1-D
tensors and other matrices stay as they are.
  requantize.py LIBGGML_BASE SRC.gguf DST.gguf TYPE   (TYPE: q4_k, q5_k, q6_k, q3_k, q2_k, q4_1, q5_0, q5_1)"""
import ctypes, struct, sys

lib, src, dst, tname = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].upper()
BLOCK = {"Q4_1": (3, 32, 20), "Q5_0": (6, 32, 22), "Q5_1": (7, 32, 24), "Q2_K": (10, 256, 84), "Q3_K": (11, 256, 110),
         "Q4_K": (12, 256, 144), "Q5_K": (13, 256, 176), "Q6_K": (14, 256, 210)}
if tname not in BLOCK:
    sys.exit("type must be one of " + ", ".join(t.lower() for t in BLOCK))
type_id, block, block_bytes = BLOCK[tname]
ggml = ctypes.CDLL(lib)
quantize = getattr(ggml, "quantize_row_" + tname.lower().replace("_k", "_K") + "_ref")
quantize.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]

b = open(src, "rb").read()
magic, version, n_tensors, n_kv = struct.unpack_from("<IIQQ", b, 0)
if magic != 0x46554747 or version not in (2, 3):
    sys.exit(src + ": not a GGUF v2/v3 file")
at = 24
SIZE = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
alignment = 32

def string():
    global at
    n, = struct.unpack_from("<Q", b, at)
    at += 8
    v = b[at:at + n]
    at += n
    return v

for _ in range(n_kv):
    key = string()
    t, = struct.unpack_from("<I", b, at)
    at += 4
    if key == b"general.alignment":
        alignment, = struct.unpack_from("<I", b, at)
    if t == 8:
        string()
    elif t == 9:
        et, n = struct.unpack_from("<IQ", b, at)
        at += 12
        for _ in range(n):
            if et == 8: string()
            else: at += SIZE[et]
    else:
        at += SIZE[t]
kv_end = at
infos = []
for _ in range(n_tensors):
    name = string()
    nd, = struct.unpack_from("<I", b, at); at += 4
    dims = list(struct.unpack_from("<%dQ" % nd, b, at)); at += 8 * nd
    t, off = struct.unpack_from("<IQ", b, at); at += 12
    infos.append((name, dims, t, off))
data = (at + alignment - 1) // alignment * alignment

def nbytes(t, n):
    return {0: 4 * n, 1: 2 * n, 30: 2 * n}.get(t, None)

out_infos, blobs, offset, changed = b"", [], 0, 0
for name, dims, t, off in infos:
    n = 1
    for d in dims: n *= d
    size = nbytes(t, n)
    if size is None:
        sys.exit("%s: tensor %s has type %d; give an F32/F16/BF16 file" % (src, name.decode(), t))
    raw = b[data + off:data + off + size]
    if t == 0 and len(dims) == 2 and dims[0] % block == 0:
        dst_buf = ctypes.create_string_buffer(n // block * block_bytes)
        quantize(ctypes.create_string_buffer(raw, len(raw)), dst_buf, n)
        raw, t = dst_buf.raw, type_id
        changed += 1
    out_infos += struct.pack("<Q", len(name)) + name + struct.pack("<I", len(dims)) + struct.pack("<%dQ" % len(dims), *dims)
    out_infos += struct.pack("<IQ", t, offset)
    blobs.append(raw + b"\0" * ((-len(raw)) % alignment))
    offset += len(blobs[-1])
head = b[:kv_end] + out_infos
with open(dst, "wb") as f:
    f.write(head + b"\0" * ((-len(head)) % alignment))
    for blob in blobs: f.write(blob)
print("%s: %d matrices as %s" % (dst, changed, tname), file=sys.stderr)
