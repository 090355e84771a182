#!/usr/bin/env python3
"""Compare two imatrix GGUF files (llama-imatrix's format: <tensor>.in_sum2 and <tensor>.counts).

usage: imatrix_compare.py REFERENCE.gguf OURS.gguf [L2_TOLERANCE [MAX_TOLERANCE]]
The compared quantity is each tensor's mean squared activation per column (in_sum2 / counts).
Prints one line: tensors compared, the largest per-tensor relative L2 difference |a-b|/|a|, the
largest element-wise relative difference (elements below 1e-6 of their tensor's largest compared
against that floor), how many elements exceed 1e-3, and where the worst ones are.
Exit 0 when the tensor sets and counts are equal, every tensor's L2 difference is ≤ L2_TOLERANCE
(default 1e-3) and the element-wise maximum ≤ MAX_TOLERANCE (default: L2_TOLERANCE); 1 otherwise.

Why two numbers: the engines' f32 sums differ in the last bit (llamafile's tinyBLAS lane order
against ours), and where a model rounds activations to f16 (ggml's GELU lookup table) such a bit
can move a value by 2^-11 and then everything after it; a few columns of a layer's input collect
that, the tensor as a whole does not.
"""
import sys
import numpy as np
import gguf

def load(path):
    r = gguf.GGUFReader(path)
    return {t.name: np.array(t.data, dtype=np.float64).reshape(-1) for t in r.tensors}

ref, ours = load(sys.argv[1]), load(sys.argv[2])
tol_l2 = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-3
tol_max = float(sys.argv[4]) if len(sys.argv) > 4 else tol_l2
if set(ref) != set(ours):
    print(f"tensor sets differ: only in reference {sorted(set(ref) - set(ours))[:3]}, only in ours {sorted(set(ours) - set(ref))[:3]}")
    sys.exit(1)
worst, where, worst_l2, where_l2, over, total = 0.0, "", 0.0, "", 0, 0
names = sorted(n[:-len(".in_sum2")] for n in ref if n.endswith(".in_sum2"))
for n in names:
    rc, oc = ref[n + ".counts"], ours[n + ".counts"]
    if not np.array_equal(rc, oc):
        print(f"{n}: counts differ ({rc[:4]} vs {oc[:4]})")
        sys.exit(1)
    a = ref[n + ".in_sum2"].reshape(len(rc), -1) / rc[:, None]
    b = ours[n + ".in_sum2"].reshape(len(oc), -1) / oc[:, None]
    floor = 1e-6 * max(np.abs(a).max(), 1e-30)
    rel = np.abs(a - b) / np.maximum(np.abs(a), floor)
    over += int((rel > 1e-3).sum()); total += rel.size
    if rel.max() > worst:
        worst, where = float(rel.max()), n
    l2 = float(np.linalg.norm(a - b) / max(np.linalg.norm(a), 1e-30))
    if l2 > worst_l2:
        worst_l2, where_l2 = l2, n
ok = worst_l2 <= tol_l2 and worst <= tol_max
print(f"{len(names)} tensors: largest relative L2 difference {worst_l2:.2e} ({where_l2}), element-wise max {worst:.2e} "
      f"({where}), {over} of {total} elements above 1e-3{'' if ok else f' — OUTSIDE L2 ≤ {tol_l2:g}, max ≤ {tol_max:g}'}")
sys.exit(0 if ok else 1)
