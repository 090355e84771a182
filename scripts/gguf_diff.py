#!/usr/bin/env python3
"""Compare two GGUF files: KV metadata, tensors, and (by default) the raw bytes.

usage: gguf_diff.py A.gguf B.gguf [--ignore-key KEY]... [--tensors-only] [--max-items N]
                                  [--gguf-py DIR] [-q]

Checks, in order:
  header   GGUF version, tensor count, KV count
  kv       key set, key order, value type (and array element type), value
           (arrays are compared element by element, the whole array)
  tensors  name set, order, ggml type, shape (ne), byte size, data bytes, data offset
  bytes    whole-file byte identity (padding, alignment, anything the above missed)

--ignore-key KEY (repeatable; KEY may end in '*' as a prefix match) drops KEY from the
kv checks. With --ignore-key or --tensors-only the byte-identity check is informational
only (it cannot hold if an ignored key differs). --tensors-only skips the kv checks.

Prints one line per difference (at most --max-items per section) and a final summary line.
Exit status: 0 when no difference counted, 1 otherwise (different, unreadable or not GGUF);
argparse usage errors exit 2.
Byte-identical files are detected first (memory-mapped compare, <1 s for 270 MB); otherwise
both files are parsed with gguf-py's GGUFReader (~5 s for SmolLM2's 49k-token vocab).
"""
from __future__ import annotations

import argparse
import math
import os
import struct
import sys
from typing import Any

import numpy as np


def load_gguf_module(path: str | None):
    if path:
        sys.path.insert(0, path)
    elif os.environ.get("GGUF_PY"):
        sys.path.insert(0, os.environ["GGUF_PY"])
    try:
        import gguf  # noqa: F401
        from gguf import GGUFReader, GGUFValueType, GGMLQuantizationType
    except ImportError as e:
        sys.exit(f"gguf_diff: cannot import gguf-py ({e}); pip install gguf or pass --gguf-py DIR")
    return GGUFReader, GGUFValueType, GGMLQuantizationType


GGUFReader, VT, QT = None, None, None  # filled in main()


class Report:
    def __init__(self, max_items: int, quiet: bool):
        self.max_items = max_items
        self.quiet = quiet
        self.counts: dict[str, int] = {}
        self.info: list[str] = []

    def diff(self, section: str, msg: str) -> None:
        n = self.counts.get(section, 0) + 1
        self.counts[section] = n
        if self.quiet:
            return
        if n <= self.max_items:
            print(f"[{section}] {msg}")
        elif n == self.max_items + 1:
            print(f"[{section}] ... (more differences not shown; raise --max-items)")

    def note(self, msg: str) -> None:
        self.info.append(msg)
        if not self.quiet:
            print(f"[info] {msg}")

    def total(self) -> int:
        return sum(self.counts.values())


# ------------------------------------------------------------------------------------------
# KV helpers

def type_desc(field) -> str:
    t = field.types
    if not t:
        return "?"
    if t[0] == VT.ARRAY:
        sub = t[1].name if len(t) > 1 else "?"  # empty arrays have no element type
        return f"ARRAY[{sub}]"
    return t[0].name


def value_span(field) -> tuple[int, int]:
    """Byte range of the value (type tag excluded, key excluded) inside the file."""
    klen = int(field.parts[0][0])
    start = field.offset + 8 + klen + 4
    end = field.offset + sum(int(p.nbytes) for p in field.parts)
    return start, end


def scalar(field) -> Any:
    t = field.types[0]
    if t == VT.STRING:
        return bytes(field.parts[-1])
    return field.parts[-1][0]


def fmt_scalar(v: Any, t) -> str:
    if isinstance(v, bytes):
        s = v.decode("utf-8", errors="backslashreplace")
        return repr(s if len(s) <= 80 else s[:77] + "...") + f" (len {len(v)})"
    if t in (VT.FLOAT32, VT.FLOAT64):
        f = float(v)
        if t == VT.FLOAT32:
            bits = struct.unpack("<I", struct.pack("<f", f))[0]
            return f"{f!r} (0x{bits:08x})"
        bits = struct.unpack("<Q", struct.pack("<d", f))[0]
        return f"{f!r} (0x{bits:016x})"
    if t == VT.BOOL:
        return repr(bool(v))
    return repr(int(v))


def array_elems(field) -> tuple[Any, list]:
    """(element type, python list or numpy array of elements)."""
    sub = field.types[1] if len(field.types) > 1 else None
    if sub is None:
        return None, []
    if sub == VT.STRING:
        return sub, [bytes(field.parts[i]) for i in field.data]
    if sub == VT.ARRAY:
        # nested arrays: compare the raw parts
        return sub, [bytes(field.parts[i]) for i in field.data]
    if len(field.data) == 0:
        return sub, np.array([])
    return sub, np.concatenate([field.parts[i] for i in field.data])


def first_diff_pos(a: bytes, b: bytes) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def compare_kv(ra, rb, rep: Report, ignore: list[str]) -> None:
    def ignored(k: str) -> bool:
        for pat in ignore:
            if pat.endswith("*") and k.startswith(pat[:-1]):
                return True
            if k == pat:
                return True
        return False

    ka = [k for k in ra.fields if not k.startswith("GGUF.") and not ignored(k)]
    kb = [k for k in rb.fields if not k.startswith("GGUF.") and not ignored(k)]
    sa, sb = set(ka), set(kb)
    for k in ka:
        if k not in sb:
            rep.diff("kv", f"only in A: {k} {type_desc(ra.fields[k])}")
    for k in kb:
        if k not in sa:
            rep.diff("kv", f"only in B: {k} {type_desc(rb.fields[k])}")
    common_a = [k for k in ka if k in sb]
    common_b = [k for k in kb if k in sa]
    if common_a != common_b:
        i = next(i for i, (x, y) in enumerate(zip(common_a, common_b)) if x != y)
        rep.diff("kv", f"key order differs at common index {i}: A has {common_a[i]!r}, B has {common_b[i]!r}"
                       f" (A: ...{common_a[max(0, i - 1):i + 3]}, B: ...{common_b[max(0, i - 1):i + 3]})")
    for k in common_a:
        fa, fb = ra.fields[k], rb.fields[k]
        ta, tb = type_desc(fa), type_desc(fb)
        if ta != tb:
            rep.diff("kv", f"{k}: type A {ta} vs B {tb}")
            continue
        a0, a1 = value_span(fa)
        b0, b1 = value_span(fb)
        if a1 - a0 == b1 - b0 and np.array_equal(ra.data[a0:a1], rb.data[b0:b1]):
            continue
        t = fa.types[0]
        if t != VT.ARRAY:
            va, vb = scalar(fa), scalar(fb)
            extra = ""
            if isinstance(va, bytes):
                extra = f", first differing byte at {first_diff_pos(va, vb)}"
            rep.diff("kv", f"{k}: A {fmt_scalar(va, t)} vs B {fmt_scalar(vb, t)}{extra}")
            continue
        sub, ea = array_elems(fa)
        _, eb = array_elems(fb)
        na, nb = len(ea), len(eb)
        n = min(na, nb)
        if isinstance(ea, np.ndarray):
            if sub in (VT.FLOAT32, VT.FLOAT64):
                # compare bit patterns, so -0.0 vs 0.0 and NaN payloads count
                ia = ea[:n].view(np.uint32 if sub == VT.FLOAT32 else np.uint64)
                ib = eb[:n].view(np.uint32 if sub == VT.FLOAT32 else np.uint64)
                bad = np.nonzero(ia != ib)[0]
            else:
                bad = np.nonzero(ea[:n] != eb[:n])[0]
            shown = ", ".join(f"[{int(i)}] {fmt_scalar(ea[i], sub)} vs {fmt_scalar(eb[i], sub)}" for i in bad[:5])
            nbad = len(bad)
        else:
            bad_l = [i for i in range(n) if ea[i] != eb[i]]
            shown = ", ".join(f"[{i}] {fmt_scalar(ea[i], VT.STRING)} vs {fmt_scalar(eb[i], VT.STRING)}" for i in bad_l[:5])
            nbad = len(bad_l)
        msg = f"{k}: {ta} length A {na} vs B {nb}; {nbad} differing element(s) in the common prefix"
        if shown:
            msg += f"; first: {shown}"
        rep.diff("kv", msg)


# ------------------------------------------------------------------------------------------
# tensors

FLOAT_VIEWS = {"F32": np.float32, "F16": np.float16, "F64": np.float64}


def tensor_raw(r, t) -> np.ndarray:
    return r.data[t.data_offset:t.data_offset + int(t.n_bytes)]


def describe_data_diff(t, a: np.ndarray, b: np.ndarray) -> str:
    nbytes_bad = int(np.count_nonzero(a != b))
    name = t.tensor_type.name
    if name in FLOAT_VIEWS or name == "BF16":
        if name == "BF16":
            fa = (a.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
            fb = (b.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
            ia, ib = a.view(np.uint16), b.view(np.uint16)
        else:
            fa, fb = a.view(FLOAT_VIEWS[name]), b.view(FLOAT_VIEWS[name])
            ia = a.view({"F32": np.uint32, "F16": np.uint16, "F64": np.uint64}[name])
            ib = b.view({"F32": np.uint32, "F16": np.uint16, "F64": np.uint64}[name])
        bad = np.nonzero(ia != ib)[0]
        with np.errstate(invalid="ignore", over="ignore"):
            d = np.abs(fa[bad].astype(np.float64) - fb[bad].astype(np.float64))
        maxd = float(np.nanmax(d)) if len(d) and not np.all(np.isnan(d)) else math.nan
        i = int(bad[0])
        ne0 = int(t.shape[0]) if len(t.shape) else 1
        return (f"{len(bad)}/{ia.size} elements differ, max |diff| {maxd:.6g}; first at flat {i} "
                f"(row {i // ne0}, col {i % ne0}): A {float(fa[i])!r} (0x{int(ia[i]):x}) vs B {float(fb[i])!r} (0x{int(ib[i]):x})")
    # block-quantized (or integer): report by block
    try:
        import gguf
        block, tsize = gguf.GGML_QUANT_SIZES[t.tensor_type]
    except Exception:  # noqa: BLE001
        block, tsize = 1, 1
    blocks_a = a.reshape(-1, tsize)
    blocks_b = b.reshape(-1, tsize)
    badb = np.nonzero(np.any(blocks_a != blocks_b, axis=1))[0]
    i = int(badb[0])
    extra = ""
    if name == "Q8_0":
        da = blocks_a[i, :2].view(np.float16)[0]
        db = blocks_b[i, :2].view(np.float16)[0]
        qa = blocks_a[i, 2:].view(np.int8)
        qb = blocks_b[i, 2:].view(np.int8)
        nq = int(np.count_nonzero(qa != qb))
        extra = f"; block {i}: d A {float(da)!r} vs B {float(db)!r}, {nq} q value(s) differ"
    return f"{nbytes_bad} byte(s) in {len(badb)}/{blocks_a.shape[0]} block(s) of {block} differ{extra}"


def compare_tensors(ra, rb, rep: Report) -> None:
    ta = {t.name: t for t in ra.tensors}
    tb = {t.name: t for t in rb.tensors}
    na = [t.name for t in ra.tensors]
    nb = [t.name for t in rb.tensors]
    for n in na:
        if n not in tb:
            rep.diff("tensor", f"only in A: {n} {ta[n].tensor_type.name} ne={list(map(int, ta[n].shape))}")
    for n in nb:
        if n not in ta:
            rep.diff("tensor", f"only in B: {n} {tb[n].tensor_type.name} ne={list(map(int, tb[n].shape))}")
    ca = [n for n in na if n in tb]
    cb = [n for n in nb if n in ta]
    if ca != cb:
        i = next(i for i, (x, y) in enumerate(zip(ca, cb)) if x != y)
        rep.diff("tensor", f"order differs at common index {i}: A has {ca[i]!r}, B has {cb[i]!r}")
    offset_reported = False
    for n in ca:
        a, b = ta[n], tb[n]
        sha, shb = list(map(int, a.shape)), list(map(int, b.shape))
        if a.tensor_type != b.tensor_type:
            rep.diff("tensor", f"{n}: type A {a.tensor_type.name} vs B {b.tensor_type.name}")
        if sha != shb:
            rep.diff("tensor", f"{n}: shape (ne) A {sha} vs B {shb}")
        if a.tensor_type != b.tensor_type or sha != shb:
            continue
        da, db = tensor_raw(ra, a), tensor_raw(rb, b)
        if not np.array_equal(da, db):
            rep.diff("tensor", f"{n} {a.tensor_type.name} ne={sha}: data differs: {describe_data_diff(a, da, db)}")
        oa, ob = a.data_offset - ra.data_offset, b.data_offset - rb.data_offset
        if oa != ob and not offset_reported:
            # only the first one: every later tensor is shifted too
            offset_reported = True
            rep.diff("layout", f"{n}: offset in data section A {oa} vs B {ob} (first tensor whose offset differs)")


# ------------------------------------------------------------------------------------------
# raw bytes

def region_of(r, off: int) -> str:
    if off < 24:
        return "header"
    kv = [f for k, f in r.fields.items() if not k.startswith("GGUF.")]
    for f in kv:
        end = f.offset + sum(int(p.nbytes) for p in f.parts)
        if f.offset <= off < end:
            return f"kv {f.name!r}"
    for t in r.tensors:
        s = t.data_offset
        if s <= off < s + int(t.n_bytes):
            return f"data of {t.name!r} (+{off - s})"
    if r.tensors:
        first_ti = r.tensors[0].field.offset
        if off >= first_ti and off < r.data_offset:
            for t in r.tensors:
                f = t.field
                end = f.offset + sum(int(p.nbytes) for p in f.parts)
                if f.offset <= off < end:
                    return f"tensor info {t.name!r}"
            return "padding before tensor data"
    prev = None
    for t in r.tensors:
        if t.data_offset <= off:
            prev = t
    if prev is not None:
        return f"padding after data of {prev.name!r}"
    return "padding"


def compare_bytes(ra, rb, rep: Report, counted: bool) -> bool:
    a, b = ra.data, rb.data
    same = False
    if a.size == b.size:
        same = True
        step = 1 << 24
        first = None
        for s in range(0, a.size, step):
            ca, cb = a[s:s + step], b[s:s + step]
            if not np.array_equal(ca, cb):
                idx = np.nonzero(ca != cb)[0]
                first = s + int(idx[0])
                same = False
                break
    else:
        n = min(a.size, b.size)
        first = None
        step = 1 << 24
        for s in range(0, n, step):
            ca, cb = a[s:min(s + step, n)], b[s:min(s + step, n)]
            if not np.array_equal(ca, cb):
                first = s + int(np.nonzero(ca != cb)[0][0])
                break
        if first is None:
            first = n
    if same:
        return True
    msg = (f"files differ: size A {a.size} vs B {b.size}; first differing byte at offset {first} "
           f"(A: {region_of(ra, first)}; B: {region_of(rb, first)}); tensor data starts at A {ra.data_offset} / B {rb.data_offset}")
    if counted:
        rep.diff("bytes", msg)
    else:
        rep.note(msg + " (not counted)")
    return False


# ------------------------------------------------------------------------------------------

def main() -> int:
    global GGUFReader, VT, QT
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--ignore-key", action="append", default=[], metavar="KEY")
    ap.add_argument("--tensors-only", action="store_true")
    ap.add_argument("--max-items", type=int, default=20, help="max lines printed per section (default 20)")
    ap.add_argument("--gguf-py", help="directory that contains the gguf package (default: installed gguf, or $GGUF_PY)")
    ap.add_argument("-q", "--quiet", action="store_true", help="print only the summary line")
    args = ap.parse_args()

    GGUFReader, VT, QT = load_gguf_module(args.gguf_py)

    # fast path: byte-identical files need no parsing beyond the header
    try:
        ma, mb = np.memmap(args.a, mode="r"), np.memmap(args.b, mode="r")
    except (OSError, ValueError) as e:
        print(f"gguf_diff: cannot open: {e}")
        print("SUMMARY: ERROR")
        return 1
    if ma.size == mb.size and ma.size >= 24 and bytes(ma[:4]) == b"GGUF":
        step = 1 << 24
        if all(np.array_equal(ma[s:s + step], mb[s:s + step]) for s in range(0, ma.size, step)):
            n_t, n_kv = struct.unpack("<QQ", bytes(ma[8:24]))
            print(f"SUMMARY: SAME (byte-identical): {n_t} tensors, {n_kv} kv")
            return 0
    del ma, mb

    readers = []
    for p in (args.a, args.b):
        try:
            readers.append(GGUFReader(p, "r"))
        except Exception as e:  # noqa: BLE001
            print(f"gguf_diff: cannot read {p}: {type(e).__name__}: {e}")
            print(f"SUMMARY: ERROR reading {p}")
            return 1
    ra, rb = readers
    rep = Report(args.max_items, args.quiet)

    # header
    va, vb = int(ra.fields["GGUF.version"].parts[0][0]), int(rb.fields["GGUF.version"].parts[0][0])
    if va != vb:
        rep.diff("header", f"version A {va} vs B {vb}")
    if len(ra.tensors) != len(rb.tensors):
        rep.diff("header", f"tensor count A {len(ra.tensors)} vs B {len(rb.tensors)}")
    if not args.tensors_only:
        kva = len([k for k in ra.fields if not k.startswith("GGUF.")])
        kvb = len([k for k in rb.fields if not k.startswith("GGUF.")])
        if kva != kvb:
            if args.ignore_key:
                rep.note(f"kv count A {kva} vs B {kvb} (ignored keys included)")
            else:
                rep.diff("header", f"kv count A {kva} vs B {kvb}")
        compare_kv(ra, rb, rep, args.ignore_key)
    if ra.alignment != rb.alignment:
        rep.diff("layout", f"alignment A {ra.alignment} vs B {rb.alignment}")

    compare_tensors(ra, rb, rep)

    strict = not args.tensors_only and not args.ignore_key
    identical = compare_bytes(ra, rb, rep, counted=strict)

    n = rep.total()
    scope = "tensors only" if args.tensors_only else ("ignoring " + ", ".join(args.ignore_key) if args.ignore_key else "full")
    if n == 0:
        tail = "byte-identical" if identical else "equivalent (files not byte-identical, see info)"
        print(f"SUMMARY: SAME ({scope}): {len(ra.tensors)} tensors, "
              f"{len([k for k in ra.fields if not k.startswith('GGUF.')])} kv; {tail}")
        return 0
    parts = ", ".join(f"{v} {k}" for k, v in rep.counts.items())
    print(f"SUMMARY: DIFFERENT ({scope}): {parts}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
