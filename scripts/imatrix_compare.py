#!/usr/bin/env python3
"""Compare two imatrix GGUF files (llama-imatrix's format: <tensor>.in_sum2 and <tensor>.counts).

usage: imatrix_compare.py REFERENCE.gguf OURS.gguf [TOLERANCE]
Prints one line: tensors compared, the largest element-wise relative difference of the mean
squared activations (in_sum2 / counts; elements below 1e-6 of their tensor's largest are compared
against that floor) and where it is. Exit 0 when the tensor sets and counts are equal and the
largest relative difference is ≤ TOLERANCE (default 1e-3), 1 otherwise.
"""
import sys
import numpy as np
import gguf

def load(path):
    r = gguf.GGUFReader(path)
    return {t.name: np.array(t.data, dtype=np.float64).reshape(-1) for t in r.tensors}

ref, ours = load(sys.argv[1]), load(sys.argv[2])
tol = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-3
if set(ref) != set(ours):
    print(f"tensor sets differ: only in reference {sorted(set(ref) - set(ours))[:3]}, only in ours {sorted(set(ours) - set(ref))[:3]}")
    sys.exit(1)
worst, where = 0.0, ""
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
    if rel.max() > worst:
        worst, where = float(rel.max()), n
ok = worst <= tol
print(f"{len(names)} tensors, max relative difference {worst:.2e} ({where}){'' if ok else f' > {tol:g}'}")
sys.exit(0 if ok else 1)
