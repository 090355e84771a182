#!/usr/bin/env python3
"""Writes the legacy .dat form of a GGUF imatrix exactly as `llama-imatrix --output-format dat`
writes it from the same collected data (save_imatrix_legacy: entries sorted by name, ncall =
ceil(max count / chunk_size), values (sum / count) * ncall in float32, 1 for a matrix without
tokens; then the chunk count and the last dataset name). Checked byte for byte against
llama-imatrix's own .dat for Fixtures/smollm2/imatrix.gguf, so the legacy reader can be tested
end to end without committing a second ~600 KB file.
usage: imatrix_gguf_to_dat.py IN.gguf OUT.dat"""
import struct
import sys

import numpy as np
from gguf import GGUFReader

r = GGUFReader(sys.argv[1])
chunk_size = int(r.fields["imatrix.chunk_size"].contents())
chunk_count = int(r.fields["imatrix.chunk_count"].contents())
datasets = r.fields["imatrix.datasets"].contents()
t = {x.name: np.asarray(x.data, dtype=np.float32).reshape(-1) for x in r.tensors}
names = sorted(n[: -len(".in_sum2")] for n in t if n.endswith(".in_sum2"))
out = [struct.pack("<i", len(names))]
for n in names:
    sums, counts = t[n + ".in_sum2"], t[n + ".counts"]
    ncall = (int(counts.max()) + chunk_size - 1) // chunk_size
    c = np.repeat(counts, len(sums) // len(counts)).astype(np.float32)
    v = sums.copy()
    v[c == 0] = 1
    c[c == 0] = 1
    b = n.encode()
    out += [struct.pack("<i", len(b)), b, struct.pack("<ii", ncall, len(sums)), ((v / c) * np.float32(ncall)).astype("<f4").tobytes()]
d = datasets[-1].encode() if datasets else b""
out += [struct.pack("<ii", chunk_count, len(d)), d]
open(sys.argv[2], "wb").write(b"".join(out))
