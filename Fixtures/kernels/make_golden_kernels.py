#!/usr/bin/env python3
"""Golden vectors for Tests/KernelsTests from the real ggml CPU backend.

Loads llama.cpp's built libggml-cpu.so (and libggml-base.so for the weight quantizers) and calls
the functions llama-perplexity runs on this machine:

- `quantize_row_q8_0`, `quantize_row_q8_1`, `quantize_row_q8_K`: the exported x86 versions in
  ggml-cpu/arch/x86/quants.c (AVX2 for q8_0/q8_1, the _ref code for q8_K), i.e. the `from_float`
  of each vec_dot type's CPU type traits, which ggml_compute_forward_mul_mat applies to src1.
- `ggml_quantize_mat_q8_0_4x8` / `ggml_quantize_mat_q8_K_4x8`: what the CPU_REPACK path uses for
  q4_0 / iq4_nl / q4_K / q2_K weights; checked here to agree with the row quantizers (q8_0 exactly,
  q8_K up to the sign choice when +max and -max tie).
- each weight type's `vec_dot` (traits->vec_dot, the AVX2/AVX512 code) on weights quantized by
  `ggml_quantize_chunk` and activations quantized by the vec_dot type's `from_float`.

Writes into OUT_DIR (default: this script's directory):
  kern_inputs.bin        f32 LE, ROWS x N activation rows (N = 512)
  kern_q8_0.bin, kern_q8_1.bin, kern_q8_K.bin   quantized rows, ggml block layout
  kern_w_<type>.bin      WROWS weight rows quantized to <type> (from kern_weights_f32.bin)
  kern_weights_f32.bin   f32 LE, WROWS x N weight rows
  kern_dots.json         {type: [[vec_dot(w_i, act_j) for j in rows] for i in wrows]} as f32 bit patterns

Usage: python3 make_golden_kernels.py [--lib-dir /work/ref/llama/build/bin] [OUT_DIR]
"""
import argparse
import ctypes
import json
import os
import struct

import numpy as np

N = 512
TYPES = {  # name: ggml type id
    "f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q5_0": 6, "q5_1": 7, "q8_0": 8, "q8_1": 9,
    "q2_K": 10, "q3_K": 11, "q4_K": 12, "q5_K": 13, "q6_K": 14, "q8_K": 15, "iq4_nl": 20, "bf16": 30,
}
WEIGHT_TYPES = ["q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "iq4_nl", "q2_K", "q3_K", "q4_K", "q5_K", "q6_K",
                "f16", "bf16", "f32"]


class Traits(ctypes.Structure):
    _fields_ = [("from_float", ctypes.c_void_p), ("vec_dot", ctypes.c_void_p),
                ("vec_dot_type", ctypes.c_int), ("nrows", ctypes.c_int64)]


FROM_FLOAT = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)
VEC_DOT = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p,
                           ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)


def activation_rows(rng):
    rows = []
    # 0: gaussian, a different scale per 32-block (several decades)
    r = rng.standard_normal(N).astype(np.float32)
    r *= np.repeat(np.float32(10.0) ** rng.uniform(-3, 2, N // 32).astype(np.float32), 32)
    rows.append(r)
    # 1: exact ties: amax 127 in every block makes 127/amax = 1 and -127/max = +-1, so k + 0.5
    #    values round differently under roundf (away) and round-to-nearest-even
    r = (rng.integers(-126, 126, N) + 0.5).astype(np.float32)
    r[::32] = 127.0
    r[16::64] = -127.0
    rows.append(r)
    # 2: zero blocks, a lone value, tiny values, a +m/-m tie in a 256-block, outliers
    r = np.zeros(N, np.float32)
    r[40] = 3.0
    r[64:96] = rng.standard_normal(32).astype(np.float32) * np.float32(1e-6)
    r[96:128] = rng.standard_normal(32).astype(np.float32) * np.float32(1e-30)
    r[256:512] = rng.standard_normal(256).astype(np.float32)
    r[300] = 5.0
    r[400] = -5.0
    rows.append(r)
    # 3: heavy-tailed activations (a few big channels), like a transformer's
    r = rng.standard_normal(N).astype(np.float32)
    r[rng.integers(0, N, 6)] *= np.float32(60.0)
    rows.append(r)
    # 4: negative extreme first, positive tie later (q8_K picks the first in ref)
    r = rng.uniform(-1, 1, N).astype(np.float32)
    r[10] = -2.0
    r[200] = 2.0
    r[266] = 2.0
    r[500] = -2.0
    rows.append(r)
    # 5: uniform with values landing on .5 boundaries after scaling by 127/amax
    r = (rng.integers(-254, 255, N).astype(np.float32) / np.float32(2.0))
    r[::32] = 127.0
    rows.append(r)
    return np.stack(rows)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out", nargs="?", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--lib-dir", default="/work/ref/llama/build/bin")
    args = ap.parse_args()
    base = ctypes.CDLL(os.path.join(args.lib_dir, "libggml-base.so"), mode=ctypes.RTLD_GLOBAL)
    cpu = ctypes.CDLL(os.path.join(args.lib_dir, "libggml-cpu.so"))
    cpu.ggml_cpu_init()
    cpu.ggml_get_type_traits_cpu.restype = ctypes.POINTER(Traits)
    base.ggml_row_size.restype = ctypes.c_size_t
    base.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]
    base.ggml_quantize_chunk.restype = ctypes.c_size_t
    base.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                         ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    for name in ("quantize_row_q8_0", "quantize_row_q8_1", "quantize_row_q8_K",
                 "ggml_quantize_mat_q8_0_4x8", "ggml_quantize_mat_q8_K_4x8"):
        getattr(cpu, name).argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
        getattr(cpu, name).restype = None

    rng = np.random.default_rng(20240611)
    acts = np.ascontiguousarray(activation_rows(rng))
    rows = acts.shape[0]
    acts.astype("<f4").tofile(os.path.join(args.out, "kern_inputs.bin"))

    quantized = {}
    for t in ("q8_0", "q8_1", "q8_K"):
        rs = base.ggml_row_size(TYPES[t], N)
        q = np.zeros(rows * rs, np.uint8)
        for i in range(rows):
            getattr(cpu, "quantize_row_" + t)(acts[i].ctypes.data, q[i * rs:].ctypes.data, N)
        # the traits' from_float is the same function
        q2 = np.zeros_like(q)
        ff = FROM_FLOAT(cpu.ggml_get_type_traits_cpu(TYPES[t]).contents.from_float)
        for i in range(rows):
            ff(acts[i].ctypes.data, q2[i * rs:].ctypes.data, N)
        assert (q == q2).all(), t
        q.tofile(os.path.join(args.out, f"kern_{t}.bin"))
        quantized[t] = (q, rs)

    # the repack path's 4-row quantizers: de-interleave and compare with the row quantizers
    def check_mat(fn, t, blk, bsz, interleave):
        q, rs = quantized[t]
        nb = N // blk
        out = np.zeros(4 * rs + 64, np.uint8)
        fn(acts[:4].ctypes.data, out.ctypes.data, N)
        diffs = 0
        for b in range(nb):
            off = b * 4 * bsz
            for r in range(4):
                row = q[r * rs + b * bsz: r * rs + (b + 1) * bsz]
                if t == "q8_0":
                    d = out[off + 2 * r: off + 2 * r + 2]
                    qs = out[off + 8: off + 8 + 128].reshape(-1, 4, interleave)[:, r, :].reshape(-1)
                    same = bytes(d) == bytes(row[:2]) and bytes(qs) == bytes(row[2:])
                else:
                    d = out[off + 4 * r: off + 4 * r + 4]
                    qs = out[off + 16: off + 16 + 1024].reshape(-1, 4, interleave)[:, r, :].reshape(-1)
                    same = bytes(d) == bytes(row[:4]) and bytes(qs) == bytes(row[4:260])
                diffs += not same
        return diffs
    print("quantize_mat_q8_0_4x8 vs quantize_row_q8_0: differing blocks:",
          check_mat(cpu.ggml_quantize_mat_q8_0_4x8, "q8_0", 32, 34, 8))
    print("quantize_mat_q8_K_4x8 vs quantize_row_q8_K: differing blocks:",
          check_mat(cpu.ggml_quantize_mat_q8_K_4x8, "q8_K", 256, 292, 8))

    wrows = 3
    w = (rng.standard_normal((wrows, N)) * 0.05).astype(np.float32)
    w[1] += np.float32(0.02)  # an offset, for the types with a min
    w[2, ::7] *= 8
    w = np.ascontiguousarray(w)
    w.astype("<f4").tofile(os.path.join(args.out, "kern_weights_f32.bin"))
    dots = {}
    for t in WEIGHT_TYPES:
        tid = TYPES[t]
        rs = base.ggml_row_size(tid, N)
        wq = np.zeros(wrows * rs, np.uint8)
        if t == "f32":
            wq = w.view(np.uint8).reshape(-1).copy()
        else:
            got = base.ggml_quantize_chunk(tid, w.ctypes.data, wq.ctypes.data, 0, wrows, N, None)
            assert got == wrows * rs
        wq.tofile(os.path.join(args.out, f"kern_w_{t}.bin"))
        tr = cpu.ggml_get_type_traits_cpu(tid).contents
        vdt = tr.vec_dot_type
        ars = base.ggml_row_size(vdt, N)
        aq = np.zeros(rows * ars, np.uint8)
        if vdt == 0:
            aq = acts.view(np.uint8).reshape(-1).copy()
        else:
            ff = FROM_FLOAT(cpu.ggml_get_type_traits_cpu(vdt).contents.from_float)
            for j in range(rows):
                ff(acts[j].ctypes.data, aq[j * ars:].ctypes.data, N)
        vd = VEC_DOT(tr.vec_dot)
        res = []
        for i in range(wrows):
            line = []
            for j in range(rows):
                s = ctypes.c_float(0)
                vd(N, ctypes.addressof(s), 0, wq[i * rs:].ctypes.data, 0, aq[j * ars:].ctypes.data, 0, 1)
                line.append(struct.unpack("<I", struct.pack("<f", s.value))[0])
            res.append(line)
        dots[t] = {"vec_dot_type": vdt, "bits": res}
    with open(os.path.join(args.out, "kern_dots.json"), "w") as f:
        json.dump({"n": N, "rows": rows, "wrows": wrows, "dots": dots}, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
