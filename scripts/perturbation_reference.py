#!/usr/bin/env python3
"""Independent reference implementation of docs/perturbation.md, in plain Python (no numpy).

It shares no code with the C++ implementation and was written from the spec; its output is the
golden-vector fixture the C++ tests (native, portable, -O0 and aarch64 builds) check against.

  scripts/perturbation_reference.py > tests/fixtures/perturbation_golden.json     (about a minute)
  scripts/perturbation_reference.py --print SEED NAME START COUNT [rademacher|gaussian]

float32 arithmetic is emulated by rounding each double-precision result to binary32: for +, -, *, /
and sqrt of binary32 operands the double result rounded to binary32 equals the correctly rounded
binary32 result (double has more than 2p+2 bits), so this is exact IEEE-754 binary32 arithmetic.
"""
import hashlib
import json
import math
import struct
import sys

MASK32 = 0xFFFFFFFF


def philox4x32_10(ctr, key):
    c0, c1, c2, c3 = ctr
    k0, k1 = key
    for r in range(10):
        if r:
            k0 = (k0 + 0x9E3779B9) & MASK32
            k1 = (k1 + 0xBB67AE85) & MASK32
        p0 = 0xD2511F53 * c0
        p1 = 0xCD9E8D57 * c2
        c0, c1, c2, c3 = ((p1 >> 32) ^ c1 ^ k0) & MASK32, p1 & MASK32, ((p0 >> 32) ^ c3 ^ k1) & MASK32, p0 & MASK32
    return (c0, c1, c2, c3)


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


def f32_bits(x: float) -> int:
    return struct.unpack("<I", struct.pack("<f", x))[0]


def f32_from_bits(u: int) -> float:
    return struct.unpack("<f", struct.pack("<I", u))[0]


def hexf(s: str) -> float:
    return f32(float.fromhex(s))


SQRT2 = hexf("0x1.6a09e6p+0")
LN2 = hexf("0x1.62e430p-1")
HALF_PI = hexf("0x1.921fb6p+0")
LOG_C = [hexf(h) for h in ("0x1.745d18p-4", "0x1.c71c72p-4", "0x1.24924ap-3", "0x1.99999ap-3", "0x1.555556p-2", "0x1p+0")]
SIN_C = [hexf(h) for h in ("0x1.612462p-33", "-0x1.ae6456p-26", "0x1.71de3ap-19", "-0x1.a01a02p-13",
                           "0x1.111112p-7", "-0x1.555556p-3", "0x1p+0")]
COS_C = [hexf(h) for h in ("-0x1.93974ap-37", "0x1.1eed8ep-29", "-0x1.27e4fcp-22", "0x1.a01a02p-16",
                           "-0x1.6c16c2p-10", "0x1.555556p-5", "-0x1p-1", "0x1p+0")]


def spec_log(u):
    b = f32_bits(u)
    e = ((b >> 23) & 0xFF) - 127
    m = f32_from_bits((b & 0x7FFFFF) | 0x3F800000)
    if m > SQRT2:
        m = f32(m * 0.5)
        e += 1
    s = f32(f32(m - 1.0) / f32(m + 1.0))
    s2 = f32(s * s)
    p = LOG_C[0]
    for c in LOG_C[1:]:
        p = f32(f32(p * s2) + c)
    ln_m = f32(f32(2.0 * s) * p)
    return f32(f32(float(e) * LN2) + ln_m)


def box_muller(x0, x1):
    u1 = f32(float((x0 >> 8) + 1) * 2.0 ** -24)
    u2 = f32(float(x1 >> 8) * 2.0 ** -24)
    r = f32(math.sqrt(f32(-2.0 * spec_log(u1))))  # IEEE sqrt: sqrt(-0.0) is -0.0
    t = f32(u2 * 4.0)
    q = int(t)
    a = f32(f32(t - float(q)) * HALF_PI)
    a2 = f32(a * a)
    sp = SIN_C[0]
    for c in SIN_C[1:]:
        sp = f32(f32(sp * a2) + c)
    sin_a = f32(a * sp)
    cp = COS_C[0]
    for c in COS_C[1:]:
        cp = f32(f32(cp * a2) + c)
    cos_a = cp
    c, s = [(cos_a, sin_a), (-sin_a, cos_a), (-cos_a, -sin_a), (sin_a, -cos_a)][q]
    return f32(r * c), f32(r * s)


def z_values(seed, name, start, count, dist):
    tag = fnv1a64(name.encode("utf-8"))
    key = (seed & MASK32, seed >> 32)
    per_block = 128 if dist == "rademacher" else 4
    out = []
    cached_block, words = None, None
    for i in range(start, start + count):
        b = i // per_block
        if b != cached_block:
            words = philox4x32_10((b & MASK32, b >> 32, tag & MASK32, tag >> 32), key)
            if dist == "gaussian":
                words = box_muller(words[0], words[1]) + box_muller(words[2], words[3])
            cached_block = b
        j = i % per_block
        if dist == "rademacher":
            out.append(-1.0 if (words[j >> 5] >> (j & 31)) & 1 else 1.0)
        else:
            out.append(words[j])
    return out


def fnv_of_floats(values):
    return fnv1a64(b"".join(struct.pack("<f", v) for v in values))


CASES = [
    (0x0000000000000000, "model.embed_tokens.weight", 0),
    (0x0123456789ABCDEF, "model.layers.0.self_attn.q_proj.weight", 0),
    (0xFFFFFFFFFFFFFFFF, "lm_head.weight", 0),
    (0x00000000DEADBEEF, "model.layers.3.mlp.down_proj.weight", (1 << 32) * 128 - 64),  # crosses the 2^32 block
]
N_HASH = 1 << 20


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--print":
        seed, name, start, count = int(sys.argv[2], 0), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
        dist = sys.argv[6] if len(sys.argv) > 6 else "rademacher"
        for v in z_values(seed, name, start, count, dist):
            print(repr(v))
        return
    kat = [
        {"counter": [0, 0, 0, 0], "key": [0, 0]},
        {"counter": [MASK32] * 4, "key": [MASK32, MASK32]},
        {"counter": [0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344], "key": [0xA4093822, 0x299F31D0]},
    ]
    for k in kat:
        k["output"] = ["%08x" % w for w in philox4x32_10(k["counter"], k["key"])]
        k["counter"] = ["%08x" % w for w in k["counter"]]
        k["key"] = ["%08x" % w for w in k["key"]]
    vectors = []
    for seed, name, start in CASES:
        for dist in ("rademacher", "gaussian"):
            first = z_values(seed, name, start, 32, dist)
            full = z_values(seed, name, start, N_HASH, dist)
            assert full[:32] == first
            vectors.append({
                "seed": "%016x" % seed, "tensor": name, "tag": "%016x" % fnv1a64(name.encode()),
                "distribution": dist, "start": start,
                "first": [float.hex(v) for v in first],
                "count_hashed": N_HASH, "fnv1a64_of_f32le": "%016x" % fnv_of_floats(full),
                "sha256_of_f32le": hashlib.sha256(b"".join(struct.pack("<f", v) for v in full)).hexdigest(),
            })
            print(f"{dist} {name} done", file=sys.stderr)
    json.dump({"spec_version": 1, "generator": "scripts/perturbation_reference.py", "philox_kat": kat,
               "vectors": vectors}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
