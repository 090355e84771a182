#!/usr/bin/env python3
"""Golden vectors for importance-weighted quantization (llama-quantize with --imatrix).

Loads the built ggml-base shared library and calls `ggml_quantize_chunk(type, src, dst, 0, nrows,
n_per_row, imatrix)` with a non-NULL imatrix, as llama-quantize does when it has one: one float of
importance per column, shared by every row of the chunk. That selects ggml's `quantize_row_*_impl`
paths (make_qx_quants / make_qkx3_quants / make_qp_quants with weights), not the `_ref` ones the
other golden scripts exercise. Writes, beside this script:

  imatrix_entries.json  the entries (name, rows, cols) in file order, and per type its id, output
                        file and the indices of the entries it covers (k-quants need cols % 256 == 0)
  imatrix_inputs.bin    every entry's rows·cols float32 values, little-endian, concatenated
  imatrix_weights.bin   every entry's cols float32 importance values, concatenated
  imatrix_<type>.bin    ggml_quantize_chunk's bytes for the entries the type covers, concatenated
  imatrix_<iq>_null.bin the same without an imatrix, for the i-quants ggml allows that for
  imatrix_<iq>_deq.bin  ggml's dequantization (to_float) of imatrix_<iq>.bin, float32

usage: make_golden_imatrix.py [LIBGGML_BASE=/work/ref/llama/bin/libggml-base.so]
"""
import ctypes
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

LIB = sys.argv[1] if len(sys.argv) > 1 else "/work/ref/llama/bin/libggml-base.so"
OUT = os.path.dirname(os.path.abspath(__file__))
# (name, ggml type id, block size). q8_0 ignores the imatrix; it is here to show that.
TYPES = [("q4_0", 2, 32), ("q4_1", 3, 32), ("q5_0", 6, 32), ("q5_1", 7, 32), ("q8_0", 8, 32),
         ("q2_K", 10, 256), ("q3_K", 11, 256), ("q4_K", 12, 256), ("q5_K", 13, 256), ("q6_K", 14, 256),
         ("iq4_nl", 20, 32)]
# The i-quants: (name, id, block size, whether ggml quantizes them without an imatrix). Rows with inf
# or NaN are left out for them (edgequant refuses such rows before quantizing; ggml's lattice
# searches index tables with whatever nearest_int makes of them). Their NULL-imatrix bytes, where
# ggml has that path, go to imatrix_<type>_null.bin.
IQ_TYPES = [("iq2_xxs", 16, 256, False), ("iq2_xs", 17, 256, False), ("iq3_xxs", 18, 256, True),
            ("iq1_s", 19, 256, False), ("iq3_s", 21, 256, True), ("iq2_s", 22, 256, True),
            ("iq4_xs", 23, 256, True), ("iq1_m", 29, 256, True)]


def f32(v):
    return np.asarray(v, dtype=np.float32)


def importance(kind, n, rng):
    """One imatrix column vector of length n. Real imatrix values are means of squared activations:
    non-negative, spread over orders of magnitude, with a few outlier channels and, for columns no
    token reached, exact zeros."""
    if kind == "ones":
        return f32(np.ones(n))
    if kind == "act2":      # mean of squares of 16 activations, a few hot channels
        w = (rng.standard_normal((16, n)) ** 2).mean(0)
        w[rng.choice(n, max(1, n // 64), replace=False)] *= 1000
        return f32(w)
    if kind == "lognormal":  # ~1e-6 ... 1e6
        return f32(np.exp(rng.standard_normal(n) * 4))
    if kind == "decades":    # uniform in log over 1e-8 ... 1e4
        return f32(10.0 ** rng.uniform(-8, 4, n))
    if kind == "sparse0":    # 40% exact zeros
        w = np.exp(rng.standard_normal(n) * 2)
        w[rng.random(n) < 0.4] = 0
        return f32(w)
    if kind == "zero_blocks":  # whole 16- and 32-wide groups with zero importance
        w = np.exp(rng.standard_normal(n))
        for g in range(0, n, 16):
            if rng.random() < 0.3:
                w[g:g + 16] = 0
        return f32(w)
    if kind == "allzero":
        return f32(np.zeros(n))
    if kind == "tiny":       # products underflow towards subnormals
        return f32(np.exp(rng.standard_normal(n)) * 1e-30)
    if kind == "huge":
        return f32(np.exp(rng.standard_normal(n)) * 1e12)
    raise ValueError(kind)


def entries():
    """(name, float32 rows×cols array, float32 cols importance)."""
    rng = np.random.default_rng(20251123)
    out = []

    def add(name, x, kind):
        x = f32(x)
        if x.ndim == 1:
            x = x.reshape(1, -1)
        out.append((f"{name}/{kind}", x, importance(kind, x.shape[1], rng)))

    kinds = ["ones", "act2", "lognormal", "decades", "sparse0", "zero_blocks"]
    # Normal rows at several scales; lengths 32·k (legacy only) and 256·k (every type).
    for i, scale in enumerate((1.0, 1e-3, 0.02, 100.0, 3e4)):
        for n in (32, 96, 256, 512):
            add(f"normal_s{scale:g}_n{n}", rng.standard_normal(n) * scale, kinds[(i + n // 32) % len(kinds)])
    for kind in kinds + ["allzero", "tiny", "huge"]:
        add("normal_n256", rng.standard_normal(256) * 0.05, kind)
    add("normal_n1024", rng.standard_normal(1024) * 0.02, "act2")
    add("uniform_pos_n256", rng.random(256) * 3 + 0.5, "act2")          # min > 0
    add("uniform_neg_n256", -rng.random(256) * 3 - 0.5, "lognormal")
    add("heavy_tail_t2_n512", rng.standard_t(2, 512), "act2")
    add("cauchy_n256", rng.standard_cauchy(256), "decades")
    x = rng.standard_normal(256) * 0.02; x[17] = 5.0
    add("outlier_pos_n256", x, "act2")
    x = rng.standard_normal(256) * 0.02; x[200] = -40.0
    add("outlier_neg_n256", x, "sparse0")
    x = rng.standard_normal(256) * 0.02; x[100] = -1e20                  # x² overflows: sigma2 = inf
    add("outlier_1e20_n256", x, "act2")
    add("zeros_n256", np.zeros(256), "act2")
    add("neg_zeros_n64", np.full(64, -0.0), "ones")
    add("const_pos_n256", np.full(256, 0.375), "lognormal")
    add("const_neg_n256", np.full(256, -3.0), "act2")
    add("const_pos_n32", np.full(32, 1.25), "decades")
    add("tiny_below_eps_n256", rng.standard_normal(256) * 1e-16, "act2")
    add("near_eps_n256", rng.standard_normal(256) * 1e-15, "ones")
    x = rng.standard_normal(512); x[rng.random(512) < 0.9] = 0
    add("mostly_zero_n512", x, "act2")
    x = np.zeros(256); x[::16] = rng.standard_normal(16)
    add("one_per_16_n256", x, "lognormal")
    add("grid_q4_n256", [j % 16 for j in range(256)], "act2")
    add("halves_n256", [(j % 16) - 7.5 for j in range(256)], "decades")
    add("alternating_n256", [1.0 if j % 2 else -1.0 for j in range(256)], "sparse0")
    for i in range(2):
        add(f"mixed_scales16_{i}_n256", rng.standard_normal(256) * np.repeat(10.0 ** rng.uniform(-6, 3, 16), 16), "act2")
        add(f"mixed_scales32_{i}_n512", rng.standard_normal(512) * np.repeat(10.0 ** rng.uniform(-6, 3, 16), 32), "lognormal")
    x = rng.standard_normal(256); x[5] = np.inf
    add("pos_inf_n256", x, "act2")
    x = rng.standard_normal(256); x[7] = np.nan
    add("one_nan_n256", x, "act2")
    # Several rows sharing one imatrix, in one ggml_quantize_chunk call (llama-quantize's chunks).
    add("matrix_3x512", rng.standard_normal((3, 512)) * 0.03, "act2")
    add("matrix_4x64", rng.standard_normal((4, 64)) * np.array([[1.0], [1e-3], [10.0], [0.1]]), "sparse0")
    for _, x, w in out:
        assert x.shape[1] % 32 == 0 and x.dtype == np.float32 and w.shape == (x.shape[1],)
    return out


def main():
    lib = ctypes.CDLL(LIB)
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                        ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    lib.ggml_row_size.restype = ctypes.c_size_t
    lib.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]

    data = entries()
    with open(os.path.join(OUT, "imatrix_inputs.bin"), "wb") as f:
        for _, x, _ in data:
            f.write(x.astype("<f4").tobytes())
    with open(os.path.join(OUT, "imatrix_weights.bin"), "wb") as f:
        for _, _, w in data:
            f.write(w.astype("<f4").tobytes())
    manifest = {"entries": [{"name": n, "rows": x.shape[0], "cols": x.shape[1]} for n, x, _ in data], "types": []}
    def quantize(tid, x, w):
        nrows, cols = x.shape
        src = np.ascontiguousarray(x)
        size = nrows * lib.ggml_row_size(tid, cols)
        q = np.zeros(size, np.uint8)
        imat = None if w is None else np.ascontiguousarray(w)
        got = lib.ggml_quantize_chunk(tid, src.ctypes.data, q.ctypes.data, 0, nrows, cols,
                                      None if imat is None else imat.ctypes.data)
        assert got == size, (tid, got, size)
        return q.tobytes()

    for name, tid, block in TYPES:
        covered = []
        with open(os.path.join(OUT, f"imatrix_{name}.bin"), "wb") as qf:
            for i, (_, x, w) in enumerate(data):
                if x.shape[1] % block:
                    continue
                qf.write(quantize(tid, x, w))
                covered.append(i)
        manifest["types"].append({"name": name, "id": tid, "quantized": f"imatrix_{name}.bin", "entries": covered})
    def run_type(name, tid, block, allows_null):
        """Quantizes the type's candidate entries in child processes (this script with --child), so
        that an input on which ggml aborts — its lattice searches GGML_ASSERT when no neighbour
        scores, e.g. with all-zero importance, which kills llama-quantize — is recorded in the
        manifest as `aborts` (ours must not crash on it) and the run goes on after it."""
        candidates = [i for i, (_, x, _) in enumerate(data) if x.shape[1] % block == 0 and np.isfinite(x).all()]
        out = {None: {}, "null": {}}
        aborts = []
        todo = list(candidates)
        while todo:
            with tempfile.TemporaryDirectory() as tmp:
                args = [sys.executable, os.path.abspath(__file__), LIB, "--child", str(tid), tmp, str(int(allows_null))] + [str(i) for i in todo]
                p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                   env=dict(os.environ, GGML_NO_BACKTRACE="1"))
                done = [int(l.split()[1]) for l in p.stdout.splitlines() if l.startswith("done ")]
                for i in done:
                    out[None][i] = open(os.path.join(tmp, f"{i}.bin"), "rb").read()
                    if allows_null:
                        out["null"][i] = open(os.path.join(tmp, f"{i}-null.bin"), "rb").read()
            todo = todo[len(done):]
            if p.returncode != 0:
                aborts.append(todo.pop(0))
        covered = [i for i in candidates if i not in aborts]
        return covered, aborts, out

    class Traits(ctypes.Structure):
        _fields_ = [("type_name", ctypes.c_char_p), ("blck_size", ctypes.c_int64), ("blck_size_interleave", ctypes.c_int64),
                    ("type_size", ctypes.c_size_t), ("is_quantized", ctypes.c_bool),
                    ("to_float", ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)),
                    ("from_float_ref", ctypes.c_void_p)]
    lib.ggml_get_type_traits.restype = ctypes.POINTER(Traits)
    lib.ggml_get_type_traits.argtypes = [ctypes.c_int]

    for name, tid, block, allows_null in IQ_TYPES:
        covered, aborts, out = run_type(name, tid, block, allows_null)
        to_float = lib.ggml_get_type_traits(tid).contents.to_float
        with open(os.path.join(OUT, f"imatrix_{name}.bin"), "wb") as qf, \
                open(os.path.join(OUT, f"imatrix_{name}_deq.bin"), "wb") as df:
            for i in covered:
                qf.write(out[None][i])
                q = np.frombuffer(out[None][i], np.uint8).copy()
                y = np.zeros(data[i][1].size, np.float32)
                to_float(q.ctypes.data, y.ctypes.data, y.size)
                df.write(y.astype("<f4").tobytes())
        entry = {"name": name, "id": tid, "quantized": f"imatrix_{name}.bin", "dequantized": f"imatrix_{name}_deq.bin",
                 "entries": covered, "aborts": aborts}
        if allows_null:
            with open(os.path.join(OUT, f"imatrix_{name}_null.bin"), "wb") as qf:
                for i in covered:
                    qf.write(out["null"][i])
            entry["quantized_null"] = f"imatrix_{name}_null.bin"
        manifest["types"].append(entry)
    with open(os.path.join(OUT, "imatrix_entries.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


def child(tid, tmp, with_null, indices):
    """--child: quantize the given entries with type `tid` into tmp/<i>.bin (and <i>-null.bin),
    printing `done <i>` after each, until done or ggml aborts."""
    lib = ctypes.CDLL(LIB)
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                        ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    lib.ggml_row_size.restype = ctypes.c_size_t
    lib.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]
    data = entries()
    for i in indices:
        _, x, w = data[i]
        nrows, cols = x.shape
        for suffix, imat in [("", w)] + ([("-null", None)] if with_null else []):
            size = nrows * lib.ggml_row_size(tid, cols)
            q = np.zeros(size, np.uint8)
            src = np.ascontiguousarray(x)
            wm = None if imat is None else np.ascontiguousarray(imat)
            got = lib.ggml_quantize_chunk(tid, src.ctypes.data, q.ctypes.data, 0, nrows, cols, None if wm is None else wm.ctypes.data)
            assert got == size
            with open(os.path.join(tmp, f"{i}{suffix}.bin"), "wb") as f:
                f.write(q.tobytes())
        print(f"done {i}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[2] == "--child":
        child(int(sys.argv[3]), sys.argv[4], sys.argv[5] == "1", [int(a) for a in sys.argv[6:]])
    else:
        main()
