#!/usr/bin/env python3
"""Build a grid-free test model: a real checkpoint whose weights sit on no quantization grid.

Every real model available here was shipped quantized (SmolLM2 as Q4_1 with a Q8_0 embedding,
Gemma 3 270M as a Q4_K_M mix of Q8_0/Q5_0/Q4_K/Q6_K), and their builders (smollm2-checkpoint.py,
gemma3-checkpoint.py) dequantize that file. A type that matches the shipped grid then stores the
model almost losslessly, which flatters whoever picks that type and says nothing about a model
trained in bf16. So quality claims are held to this model instead.

This runs the builder of MODEL with its dequantization replaced: each weight of a quantized
tensor is moved from its grid value v to v + u·s, where s is the grid step of the block (or
sub-block) it was shipped in (d for Q4_0/Q4_1/Q5_0/Q5_1/Q8_0, d·scale for the k-quants) and
u is uniform in (-0.49, 0.49): still inside its own rounding interval, so the shipped type
rounds it back to the shipped value, but no longer on any grid. u comes from a generator seeded
with (SEED, tensor name), so the result does not depend on tensor order and is the same on every
machine. F32/F16 tensors (norms) are left as shipped.

Usage:  degrid-checkpoint.py {smollm2,gemma3} OUT_DIR [--seed N] [builder options...]
        e.g. degrid-checkpoint.py smollm2 .build/smollm2/SmolLM2-135M-degrid
Needs:  what the builder needs (gguf, numpy).
"""
import hashlib
import importlib.util
import os
import sys

import numpy as np
from gguf.constants import GGMLQuantizationType as Q

HERE = os.path.dirname(os.path.abspath(__file__))
BUILDERS = {"smollm2": "smollm2-checkpoint.py", "gemma3": "gemma3-checkpoint.py"}
# how far inside the rounding interval (half a step is its edge); the bf16 rounding of the
# checkpoint moves a weight by at most 2^-9 of its magnitude, under 0.02 steps for these types
REACH = 0.49


def f16(b):
    return np.ascontiguousarray(b).view(np.float16).astype(np.float32)


def k_scales(scales):
    """ggml's get_scale_min_k4 for the 8 sub-blocks of a Q4_K/Q5_K super-block: the 6-bit scales."""
    s = scales.astype(np.uint8)
    out = np.empty((s.shape[0], 8), dtype=np.float32)
    out[:, :4] = s[:, 0:4] & 63
    out[:, 4:] = (s[:, 8:12] & 0xF) | ((s[:, 0:4] >> 6) << 4)
    return out


def grid_step(raw, qtype, n):
    """Grid step of each of the n weights in the tensor's raw blocks (uint8 array)."""
    raw = np.asarray(raw, dtype=np.uint8).reshape(-1)
    if qtype in (Q.Q4_0, Q.Q5_0, Q.Q8_0, Q.Q4_1, Q.Q5_1):
        size = {Q.Q4_0: 18, Q.Q5_0: 22, Q.Q8_0: 34, Q.Q4_1: 20, Q.Q5_1: 24}[qtype]
        b = raw.reshape(-1, size)
        d = f16(b[:, 0:2])
        step = np.repeat(d, 32)
    elif qtype in (Q.Q4_K, Q.Q5_K):
        b = raw.reshape(-1, 144 if qtype == Q.Q4_K else 176)
        d = f16(b[:, 0:2]).reshape(-1, 1)
        step = np.repeat((d * k_scales(b[:, 4:16])).reshape(-1), 32)
    elif qtype == Q.Q6_K:
        b = raw.reshape(-1, 210)
        sc = b[:, 192:208].view(np.int8).astype(np.float32)
        d = f16(b[:, 208:210]).reshape(-1, 1)
        step = np.repeat((d * sc).reshape(-1), 16)
    else:
        raise SystemExit(f"degrid: no grid step for shipped type {qtype.name}")
    assert step.size == n, (step.size, n)
    return np.abs(step)


def seeded(seed, name):
    h = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return np.random.default_rng(int.from_bytes(h[:8], "little"))


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in BUILDERS:
        sys.exit(__doc__)
    model = sys.argv[1]
    args = sys.argv[2:]
    seed = 0
    if "--seed" in args:
        i = args.index("--seed")
        seed = int(args[i + 1])
        del args[i:i + 2]
    spec = importlib.util.spec_from_file_location("builder", os.path.join(HERE, BUILDERS[model]))
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    plain = builder.dequantize
    moved = []

    # the builders call dequantize(t.data, t.tensor_type) once per tensor, in file order; the
    # tensor's name is found from the data it is handed
    def degridded(data, qtype):
        w = plain(data, qtype).astype(np.float32)
        if qtype in (Q.F32, Q.F16, Q.BF16):
            return w
        name = names[id(data)] if id(data) in names else f"#{len(moved)}"
        step = grid_step(data, qtype, w.size).reshape(w.shape)
        u = seeded(seed, name).uniform(-REACH, REACH, size=w.shape).astype(np.float32)
        moved.append((name, qtype.name, w.size))
        return w + u * step

    names = {}
    reader_cls = builder.gguf.GGUFReader

    class NamingReader(reader_cls):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            for t in self.tensors:
                names[id(t.data)] = t.name

    builder.gguf.GGUFReader = NamingReader
    builder.dequantize = degridded
    sys.argv = [BUILDERS[model]] + args
    builder.main()
    kinds = {}
    for _, k, n in moved:
        kinds[k] = kinds.get(k, 0) + n
    print(f"degrid (seed {seed}): moved {sum(kinds.values())} weights of {len(moved)} tensors off their grids ("
          + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) + ")")


if __name__ == "__main__":
    main()
