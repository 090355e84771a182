#!/usr/bin/env python3
"""Golden vectors for q4_0, q4_1, q5_0, q5_1 and iq4_nl, made by llama.cpp's own quantizer.

Loads the built ggml-base shared library and calls `ggml_quantize_chunk` exactly as llama-quantize
does without an imatrix, then `dequantize_row_*` on the result. Writes, beside this script:

  legacy_rows.json      the rows (name, element count) in file order, and per type its id and the
                        names of the output files
  legacy_inputs.bin     every row's float32 values, little-endian, concatenated
  legacy_<type>.bin     the quantized bytes of every row, concatenated
  legacy_<type>_deq.bin dequantize_row_<type> of those bytes, float32, concatenated

usage: make_golden_legacy.py [LIBGGML_BASE=/work/ref/llama/build/bin/libggml-base.so]
"""
import ctypes
import json
import os
import sys

import numpy as np

LIB = sys.argv[1] if len(sys.argv) > 1 else "/work/ref/llama/build/bin/libggml-base.so"
OUT = os.path.dirname(os.path.abspath(__file__))
TYPES = [("q4_0", 2), ("q4_1", 3), ("q5_0", 6), ("q5_1", 7), ("iq4_nl", 20)]

lib = ctypes.CDLL(LIB)
lib.ggml_quantize_chunk.restype = ctypes.c_size_t
lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                    ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
lib.ggml_quantize_init.argtypes = [ctypes.c_int]
lib.ggml_row_size.restype = ctypes.c_size_t
lib.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]


def f32(v):
    return np.asarray(v, dtype=np.float32)


def bits(u):
    return np.asarray(u, dtype=np.uint32).view(np.float32)


def rows():
    """(name, float32 array) pairs; every length a multiple of 32."""
    rng = np.random.default_rng(20240611)
    out = []
    for scale in (1.0, 1e-3, 0.02, 100.0, 3e4):
        for n in (32, 256):
            out.append((f"normal_s{scale:g}_n{n}", f32(rng.standard_normal(n) * scale)))
    out.append(("normal_n1024", f32(rng.standard_normal(1024) * 0.05)))
    out.append(("uniform_pos_n128", f32(rng.random(128) * 3)))        # min > 0: q4_1/q5_1 offset
    out.append(("uniform_neg_n64", f32(-rng.random(64) * 3)))
    out.append(("heavy_tail_n256", f32(rng.standard_t(2, 256))))
    out.append(("zeros", f32(np.zeros(64))))
    out.append(("neg_zeros", f32(np.full(32, -0.0))))
    out.append(("zeros_pos_then_neg", f32([0.0] * 16 + [-0.0] * 16)))
    out.append(("zeros_neg_then_pos", f32([-0.0] * 16 + [0.0] * 16)))
    out.append(("nonneg_zero_first_neg", f32([-0.0] + list(rng.random(31)))))  # min is -0
    out.append(("nonpos_zero_first_pos", f32([0.0] + list(-rng.random(31)))))  # max is +0
    out.append(("const_pos", f32(np.full(64, 0.375))))
    out.append(("const_neg", f32(np.full(32, -3.0))))
    out.append(("const_tiny", f32(np.full(32, 1e-20))))
    x = f32(rng.standard_normal(64) * 1e-3); x[17] = 1e30
    out.append(("outlier_pos", x))
    x = f32(rng.standard_normal(64)); x[40] = -7e4
    out.append(("outlier_neg_f16_overflow", x))
    out.append(("amax_tie_sign_neg_first", f32([(-2.0 if j == 3 else 2.0 if j == 9 else 0.1 * j) for j in range(32)])))
    out.append(("amax_tie_sign_pos_first", f32([(2.0 if j == 3 else -2.0 if j == 9 else -0.05 * j) for j in range(32)])))
    out.append(("subnormal_small", bits(np.arange(-16, 16, dtype=np.int64).astype(np.int32).view(np.uint32) & 0x8000003F)))
    out.append(("subnormal_mult", f32((np.arange(32) - 15) * 1e-45 * 7)))
    out.append(("subnormal_mixed", f32(rng.integers(-1000, 1000, 64) * np.float32(1.401298464324817e-45))))
    out.append(("tiny_below_eps", f32(rng.standard_normal(32) * 1e-16)))
    out.append(("near_eps", f32(rng.standard_normal(32) * 1e-15)))
    out.append(("halves", f32(np.arange(32) - 15.5)))
    out.append(("integers_max8", f32([(-8.0 if j == 0 else (j % 17) - 8) for j in range(32)])))
    out.append(("integers_max16", f32([(-16.0 if j == 0 else (j % 33) - 16) for j in range(32)])))
    out.append(("q41_grid", f32([j % 16 for j in range(32)])))          # (x - min)·id lands on integers
    out.append(("q41_halfgrid", f32([(j % 16) + 0.5 if j else 0.0 for j in range(32)])))
    out.append(("q51_grid", f32([j for j in range(32)])))
    # iq4_nl: max = 127 gives id = 1 in the first pass, so these sit on the midpoints between
    # neighbouring kvalues_iq4nl, where best_index_int8 breaks ties.
    mids = [-115.5, -93.5, -74.0, -57.0, -42.0, -28.5, -16.0, -4.5, 7.0, 19.0, 31.5, 45.5, 61.0, 79.0, 101.0]
    out.append(("iq4nl_midpoints", f32([127.0] + mids + [m + 0.25 for m in mids] + [-127.0])))
    out.append(("iq4nl_kvalues", f32([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113] * 2)))
    out.append(("large_finite", f32([3e38 if j % 3 == 0 else -3e38 if j % 3 == 1 else 1.0 for j in range(32)])))
    out.append(("flt_max", f32([np.finfo(np.float32).max] * 32)))
    x = f32(rng.standard_normal(32)); x[5] = np.inf
    out.append(("pos_inf", x))
    x = f32(rng.standard_normal(32)); x[0] = -np.inf; x[31] = np.inf
    out.append(("both_inf", x))
    x = f32(rng.standard_normal(32)); x[7] = np.nan
    out.append(("one_nan", x))
    out.append(("all_nan", f32(np.full(32, np.nan))))
    out.append(("all_inf", f32(np.full(32, np.inf))))
    for i in range(6):
        out.append((f"mixed_scales_{i}", f32(rng.standard_normal(256) * np.repeat(10.0 ** rng.uniform(-6, 3, 8), 32))))
    for _, v in out:
        assert len(v) % 32 == 0 and v.dtype == np.float32
    return out


def main():
    data = rows()
    with open(os.path.join(OUT, "legacy_inputs.bin"), "wb") as f:
        for _, v in data:
            f.write(v.astype("<f4").tobytes())
    manifest = {"rows": [{"name": n, "count": len(v)} for n, v in data], "types": []}
    for name, tid in TYPES:
        lib.ggml_quantize_init(tid)
        deq = getattr(lib, f"dequantize_row_{name}")
        deq.restype = None
        deq.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
        qf, df = open(os.path.join(OUT, f"legacy_{name}.bin"), "wb"), open(os.path.join(OUT, f"legacy_{name}_deq.bin"), "wb")
        for _, v in data:
            n = len(v)
            src = np.ascontiguousarray(v)
            rs = lib.ggml_row_size(tid, n)
            q = np.zeros(rs, np.uint8)
            got = lib.ggml_quantize_chunk(tid, src.ctypes.data, q.ctypes.data, 0, 1, n, None)
            assert got == rs, (name, got, rs)
            back = np.zeros(n, np.float32)
            deq(q.ctypes.data, back.ctypes.data, n)
            qf.write(q.tobytes())
            df.write(back.astype("<f4").tobytes())
        qf.close(); df.close()
        manifest["types"].append({"name": name, "id": tid, "quantized": f"legacy_{name}.bin",
                                  "dequantized": f"legacy_{name}_deq.bin"})
    with open(os.path.join(OUT, "legacy_rows.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
