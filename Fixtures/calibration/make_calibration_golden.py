#!/usr/bin/env python3
"""A tiny llama-architecture GGUF and llama-imatrix's output on it, for Tests/CalibrationTests.

The model (2 layers, 32 wide, 4 heads / 2 KV heads, FFN 64, the 320-token SentencePiece vocabulary
of Fixtures/golden/llama-tied-f32.gguf, which adds BOS) has an untied F16 output.weight so that
--process-output records something, F16 token_embd, and F32 layers: with quantized layers the
activations ggml quantizes flip on rounding boundaries under differences of 1e-6, and sums over a
few hundred tokens then move by up to 0.5%, which would hide what is tested here. The calibration
text is the first ~10 kB of the calibration corpus given.

llama-imatrix is run (in this directory, so imatrix.datasets holds "calib.txt") on cases that
exercise how it groups chunks into micro-batches and ignores products of fewer than 16 rows:
  c32    -c 32   --chunks 6 --process-output   6 chunks as 6 sequences of one batch
  c520   -c 520  --chunks 4 --process-output   3 + 1 sequences: the last chunk's final 8 rows are skipped
  c1030  -c 1030 --chunks 2                    one sequence, micro-batches 512+512+6: 6 rows skipped
  c12    -c 12   --chunks 1                    12 rows: nothing recorded
Each case is written as GGUF and (from a second, identical run) as the legacy .dat.

usage: make_calibration_golden.py LLAMA_BIN CALIB_TEXT
"""
import os, subprocess, sys
import numpy as np
import gguf

here = os.path.dirname(os.path.abspath(__file__))
lbin, calib = sys.argv[1:3]

src = gguf.GGUFReader(os.path.join(here, "..", "golden", "llama-tied-f32.gguf"))
rng = np.random.default_rng(7)
d, ff, L, H, KV, V = 32, 64, 2, 4, 2, 320
hd = d // H

w = gguf.GGUFWriter(os.path.join(here, "tiny-llama.gguf"), "llama")
w.add_name("Tiny Calibration")
w.add_block_count(L)
w.add_context_length(2048)
w.add_embedding_length(d)
w.add_feed_forward_length(ff)
w.add_head_count(H)
w.add_head_count_kv(KV)
w.add_rope_freq_base(10000.0)
w.add_layer_norm_rms_eps(1e-5)
w.add_rope_dimension_count(hd)
w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
for k, f in src.fields.items():
    if not k.startswith("tokenizer.") or k == "tokenizer.chat_template":
        continue
    t = f.types[0]
    if t == gguf.GGUFValueType.ARRAY:
        w.add_key_value(k, f.contents(), t, sub_type=f.types[1])
    else:
        w.add_key_value(k, f.contents(), t)

def f32(shape, s): return rng.normal(0, s, shape).astype(np.float32)

w.add_tensor("token_embd.weight", f32((V, d), 0.5).astype(np.float16))
w.add_tensor("output.weight", f32((V, d), 0.1).astype(np.float16))
w.add_tensor("output_norm.weight", 1 + f32(d, 0.05))
for i in range(L):
    p = f"blk.{i}."
    mats = {"attn_q": f32((d, d), 0.2), "attn_k": f32((KV * hd, d), 0.2), "attn_v": f32((KV * hd, d), 0.2),
            "attn_output": f32((d, d), 0.15), "ffn_gate": f32((ff, d), 0.15), "ffn_up": f32((ff, d), 0.15),
            "ffn_down": f32((d, ff), 0.15)}
    w.add_tensor(p + "attn_norm.weight", 1 + f32(d, 0.05))
    w.add_tensor(p + "ffn_norm.weight", 1 + f32(d, 0.05))
    for n, a in mats.items():
        w.add_tensor(p + n + ".weight", a)
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()

text = open(calib, encoding="utf-8").read()[:10000]
text = text[:text.rfind("\n") + 1]
open(os.path.join(here, "calib.txt"), "w", encoding="utf-8").write(text)

cases = {"c32": ["-c", "32", "--chunks", "6", "--process-output"],
         "c520": ["-c", "520", "--chunks", "4", "--process-output"],
         "c1030": ["-c", "1030", "--chunks", "2"],
         "c12": ["-c", "12", "--chunks", "1"]}
for name, args in cases.items():
    for fmt, ext in (("gguf", "gguf"), ("dat", "dat")):
        out = f"{name}.imatrix.{ext}"
        r = subprocess.run([os.path.join(lbin, "llama-imatrix"), "-m", "tiny-llama.gguf", "-f", "calib.txt", "-t", "1",
                            "--no-ppl", "--output-format", fmt, "-o", out] + args, cwd=here, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"{name}: llama-imatrix failed\n{r.stderr[-2000:]}")
    print(name, os.path.getsize(os.path.join(here, f"{name}.imatrix.gguf")), "bytes")
