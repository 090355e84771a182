#!/usr/bin/env python3
"""Golden vectors for q2_K, q3_K, q4_K, q5_K, q6_K and q8_K, made by llama.cpp's own quantizer.

Loads the built ggml-base shared library and calls `ggml_quantize_chunk` exactly as llama-quantize
does without an imatrix (for the k-quants that runs `quantize_row_<type>_ref`); q8_K is not a
tensor type llama-quantize writes, so it calls `quantize_row_q8_K_ref` directly. Dequantization is
`dequantize_row_<type>`, the `to_float` of each type's ggml type traits. Writes into OUT_DIR
(default: beside this script):

  kquant_rows.json      the rows (name, element count) in file order; per type its id, the file
                        names, and the FNV-1a 64 hash of dequantize_row_<type> of each row's bytes
                        (hashes, not floats, to keep the fixtures small)
  kquant_inputs.bin     every row's float32 values, little-endian, concatenated
  kquant_<type>.bin     the quantized bytes of every row, concatenated
  kquant_<type>_blocks.bin      random blocks (any bit pattern, finite scales) ...
  kquant_<type>_blocks_deq.bin  ... and their dequantization, float32

usage: make_golden_kquants.py [--big N] [--lib LIBGGML_BASE] [OUT_DIR]

--big N writes N extra random rows (mixed shapes and scales) instead of the edge-case set, for a
one-off wider check: `KQUANT_GOLDEN_DIR=OUT_DIR swift test --filter KQuant` runs the same tests
against it.
"""
import argparse
import ctypes
import json
import os

import numpy as np

TYPES = [("q2_K", 10), ("q3_K", 11), ("q4_K", 12), ("q5_K", 13), ("q6_K", 14), ("q8_K", 15)]
QK_K = 256
# Byte offsets of the fp16 (for q8_K: f32) scale fields in each block, made finite in random blocks.
HALF_FIELDS = {"q2_K": [80, 82], "q3_K": [108], "q4_K": [0, 2], "q5_K": [0, 2], "q6_K": [208]}


def f32(v):
    return np.asarray(v, dtype=np.float32)


def bits(u):
    return np.asarray(u, dtype=np.uint32).view(np.float32)


def fnv1a64(b):
    h = 0xCBF29CE484222325
    for c in b:
        h = ((h ^ c) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def edge_rows():
    """(name, float32 array) pairs; every length a multiple of 256."""
    rng = np.random.default_rng(20250101)
    n = QK_K
    out = []
    for scale in (1.0, 1e-6, 1e-3, 0.02, 1e4):
        out.append((f"normal_s{scale:g}", f32(rng.standard_normal(n) * scale)))
    out.append(("normal_s1_n512", f32(rng.standard_normal(2 * n))))
    out.append(("normal_s0.05_n512", f32(rng.standard_normal(2 * n) * 0.05)))
    out.append(("normal_s1e9_f16_overflow", f32(rng.standard_normal(n) * 1e9)))
    out.append(("uniform_pos", f32(rng.random(n) * 3 + 0.5)))          # min > 0: min clamps to 0
    out.append(("uniform_neg", f32(-rng.random(n) * 3 - 0.5)))
    out.append(("heavy_tail_t2", f32(rng.standard_t(2, n))))
    out.append(("cauchy", f32(rng.standard_cauchy(n))))
    out.append(("zeros", f32(np.zeros(n))))
    out.append(("neg_zeros", f32(np.full(n, -0.0))))
    out.append(("const_pos", f32(np.full(n, 0.375))))
    out.append(("const_neg", f32(np.full(n, -3.0))))
    out.append(("const_tiny", f32(np.full(n, 1e-20))))
    x = f32(rng.standard_normal(n) * 0.02); x[17] = 1e4
    out.append(("outlier_1e4", x))
    x = f32(rng.standard_normal(n) * 0.02); x[100] = -1e30             # x² overflows to inf
    out.append(("outlier_neg_1e30", x))
    out.append(("large_finite", f32([3e38 if j % 3 == 0 else -3e38 if j % 3 == 1 else 1.0 for j in range(n)])))
    out.append(("subnormal_small", bits(np.arange(n, dtype=np.int64).astype(np.uint32) % 64 | ((np.arange(n) % 3 == 0) << 31).astype(np.uint32))))
    out.append(("subnormal_mixed", f32(rng.integers(-1000, 1000, n) * np.float32(1.401298464324817e-45))))
    out.append(("tiny_below_eps", f32(rng.standard_normal(n) * 1e-16)))
    out.append(("near_eps", f32(rng.standard_normal(n) * 1e-15)))
    x = f32(rng.standard_normal(2 * n)); x[rng.random(2 * n) < 0.95] = 0
    out.append(("mostly_zero_n512", x))
    x = np.zeros(n, np.float32); x[::16] = f32(rng.standard_normal(16))
    out.append(("one_per_16", x))
    x = np.zeros(n, np.float32); x[5::32] = f32(rng.standard_normal(8))
    out.append(("one_per_32", x))
    out.append(("halves", f32([(j % 16) - 7.5 for j in range(n)])))
    out.append(("grid_q2", f32([j % 4 for j in range(n)])))
    out.append(("grid_q3", f32([(j % 8) - 4 for j in range(n)])))
    out.append(("grid_q4", f32([j % 16 for j in range(n)])))
    out.append(("grid_q5", f32([j % 32 for j in range(n)])))
    out.append(("grid_q6", f32([(j % 64) - 32 for j in range(n)])))
    out.append(("eighths", f32(rng.integers(-40, 40, n) / 8.0)))
    out.append(("alternating", f32([1.0 if j % 2 else -1.0 for j in range(n)])))
    out.append(("amax_tie_sign", f32([(-2.0 if j % 16 == 3 else 2.0 if j % 16 == 9 else 0.1 * (j % 16)) for j in range(n)])))
    for i in range(3):   # sub-blocks of very different size: small ones get scale 0 and keep their first L
        out.append((f"mixed_scales16_{i}", f32(rng.standard_normal(n) * np.repeat(10.0 ** rng.uniform(-6, 3, 16), 16))))
        out.append((f"mixed_scales32_{i}", f32(rng.standard_normal(n) * np.repeat(10.0 ** rng.uniform(-6, 3, 8), 32))))
    x = f32(rng.standard_normal(n)); x[5] = np.inf
    out.append(("pos_inf", x))
    x = f32(rng.standard_normal(n)); x[7] = np.nan
    out.append(("one_nan", x))
    for _, v in out:
        assert len(v) % QK_K == 0 and v.dtype == np.float32
    return out


def big_rows(count):
    rng = np.random.default_rng(7)
    out = []
    for i in range(count):
        n = QK_K * int(rng.integers(1, 3))
        kind = i % 6
        if kind == 0:
            v = rng.standard_normal(n) * 10.0 ** rng.uniform(-8, 5)
        elif kind == 1:
            v = rng.standard_t(3, n) * 10.0 ** rng.uniform(-3, 2)
        elif kind == 2:
            v = rng.standard_normal(n) * np.repeat(10.0 ** rng.uniform(-5, 2, n // 16), 16)
        elif kind == 3:
            v = rng.integers(-40, 40, n) / float(2 ** int(rng.integers(0, 6)))
        elif kind == 4:
            v = rng.standard_normal(n) * 0.02
            v[rng.random(n) < rng.random()] = 0
        else:
            v = rng.random(n) * 10.0 ** rng.uniform(-3, 3) + rng.uniform(-1, 1)
        out.append((f"big_{i}", f32(v)))
    return out


def random_blocks(name, size, rng, count=4):
    raw = rng.integers(0, 256, size * count, dtype=np.uint8)
    for b in range(count):
        base = b * size
        if name == "q8_K":
            raw[base:base + 4] = np.frombuffer(f32([rng.standard_normal()]).astype("<f4").tobytes(), np.uint8)
        else:
            for off in HALF_FIELDS[name]:
                h = np.asarray([rng.uniform(-2, 2)], dtype="<f2").tobytes()
                raw[base + off:base + off + 2] = np.frombuffer(h, np.uint8)
    return raw


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out", nargs="?", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--lib", default="/work/ref/llama/build/bin/libggml-base.so")
    ap.add_argument("--big", type=int, default=0)
    args = ap.parse_args()

    lib = ctypes.CDLL(args.lib)
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                        ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    lib.ggml_row_size.restype = ctypes.c_size_t
    lib.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]
    lib.quantize_row_q8_K_ref.restype = None
    lib.quantize_row_q8_K_ref.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]

    os.makedirs(args.out, exist_ok=True)
    data = big_rows(args.big) if args.big else edge_rows()
    with open(os.path.join(args.out, "kquant_inputs.bin"), "wb") as f:
        for _, v in data:
            f.write(v.astype("<f4").tobytes())
    manifest = {"rows": [{"name": n, "count": len(v)} for n, v in data], "types": []}
    rng = np.random.default_rng(99)
    for name, tid in TYPES:
        deq = getattr(lib, f"dequantize_row_{name}")
        deq.restype = None
        deq.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
        hashes = []
        with open(os.path.join(args.out, f"kquant_{name}.bin"), "wb") as qf:
            for _, v in data:
                n = len(v)
                src = np.ascontiguousarray(v)
                rs = lib.ggml_row_size(tid, n)
                # Zeroed, because quantize_row_q8_K_ref leaves bsums of an all-zero block unwritten.
                q = np.zeros(rs, np.uint8)
                if name == "q8_K":
                    lib.quantize_row_q8_K_ref(src.ctypes.data, q.ctypes.data, n)
                else:
                    got = lib.ggml_quantize_chunk(tid, src.ctypes.data, q.ctypes.data, 0, 1, n, None)
                    assert got == rs, (name, got, rs)
                back = np.zeros(n, np.float32)
                deq(q.ctypes.data, back.ctypes.data, n)
                qf.write(q.tobytes())
                hashes.append(fnv1a64(back.astype("<f4").tobytes()))
        size = lib.ggml_row_size(tid, QK_K)
        blocks = random_blocks(name, size, rng)
        nblk = len(blocks) // size
        back = np.zeros(nblk * QK_K, np.float32)
        deq(blocks.ctypes.data, back.ctypes.data, nblk * QK_K)
        blocks.tofile(os.path.join(args.out, f"kquant_{name}_blocks.bin"))
        back.astype("<f4").tofile(os.path.join(args.out, f"kquant_{name}_blocks_deq.bin"))
        manifest["types"].append({"name": name, "id": tid, "blockBytes": size, "quantized": f"kquant_{name}.bin",
                                  "dequantizedFNV1a64": hashes, "blocks": f"kquant_{name}_blocks.bin",
                                  "blocksDequantized": f"kquant_{name}_blocks_deq.bin"})
    with open(os.path.join(args.out, "kquant_rows.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
