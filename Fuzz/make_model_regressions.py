#!/usr/bin/env python3
"""Small GGUF models, each with one hyper-parameter or weight shape the fuzz-model target found
unchecked (the originals were whole fixture models, ~100 KB each; these are the same fault in a
1-layer model of a few KB). Writes Fixtures/fuzz-regressions/model/<name>.gguf. Needs gguf-py."""
import os, sys
import numpy as np
from gguf import GGUFWriter

E, H, KV, FF, V = 16, 2, 1, 24, 8   # n_embd, heads, kv heads, feed-forward, vocab; head_dim 8


def model(path, hp=None, shapes=None, drop=()):
    hp = dict({"embedding_length": E, "block_count": 1, "feed_forward_length": FF, "attention.head_count": H,
               "attention.head_count_kv": KV, "context_length": 64}, **(hp or {}))
    hd = E // H
    sh = {"token_embd.weight": (V, E), "output_norm.weight": (E,), "blk.0.attn_norm.weight": (E,),
          "blk.0.ffn_norm.weight": (E,), "blk.0.attn_q.weight": (H * hd, E), "blk.0.attn_k.weight": (KV * hd, E),
          "blk.0.attn_v.weight": (KV * hd, E), "blk.0.attn_output.weight": (E, H * hd),
          "blk.0.ffn_gate.weight": (FF, E), "blk.0.ffn_up.weight": (FF, E), "blk.0.ffn_down.weight": (E, FF)}
    sh.update(shapes or {})
    w = GGUFWriter(path, "llama")
    for k, v in hp.items():
        if isinstance(v, float): w.add_float32("llama." + k, v)
        else: w.add_uint32("llama." + k, v)
    w.add_float32("llama.attention.layer_norm_rms_epsilon", 1e-5)
    rng = np.random.default_rng(0)
    for n, s in sh.items():
        if n not in drop:
            w.add_tensor(n, (rng.standard_normal(s) * 0.1).astype(np.float32))
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()


CASES = {
    # weight shapes that disagree with the hyper-parameters (heap overflow in the matmuls)
    "attn_q-rows-not-heads-times-head_dim": dict(shapes={"blk.0.attn_q.weight": (H * 8 + 1, E)}),
    "attn_v-cols-not-n_embd": dict(shapes={"blk.0.attn_v.weight": (KV * 8, 2 * E)}),
    "attn_output-cols-not-heads-times-head_dim": dict(shapes={"blk.0.attn_output.weight": (E, 2 * H * 8)}),
    "ffn_gate-rows-not-n_ff": dict(shapes={"blk.0.ffn_gate.weight": (FF + 8, E)}),
    "ffn_down-cols-not-n_ff": dict(shapes={"blk.0.ffn_down.weight": (E, FF // 2)}),
    "ffn_down-rows-not-n_embd": dict(shapes={"blk.0.ffn_down.weight": (2 * E, FF)}),
    "attn_k-rows-not-kv-heads-times-head_dim": dict(shapes={"blk.0.attn_k.weight": (2 * KV * 8, E)}),
    "attn_k-bias-shorter-than-its-rows": dict(shapes={"blk.0.attn_k.bias": (KV * 8 - 4,)}),
    "token_embd-cols-not-n_embd": dict(shapes={"token_embd.weight": (V, E + 8)}),
    "output-cols-not-n_embd": dict(shapes={"output.weight": (V, E // 2)}),
    "attn_norm-shorter-than-n_embd": dict(shapes={"blk.0.attn_norm.weight": (E // 2,)}),
    "output_norm-shorter-than-n_embd": dict(shapes={"output_norm.weight": (E - 4,)}),
    # hyper-parameters that make no model
    "head_count-4294967295": dict(hp={"attention.head_count": 4294967295}),
    "head_count-0": dict(hp={"attention.head_count": 0}),
    "head_count_kv-0": dict(hp={"attention.head_count_kv": 0}),
    "head_count_kv-not-dividing-head_count": dict(hp={"attention.head_count_kv": 3}),
    "feed_forward_length-huge": dict(hp={"feed_forward_length": 1 << 31}),
    "embedding_length-0": dict(hp={"embedding_length": 0}),
    "block_count-more-than-the-tensors": dict(hp={"block_count": 3}),
    "key_length-odd": dict(hp={"attention.key_length": 7}),
    "rope-dimension_count-past-head_dim": dict(hp={"rope.dimension_count": 64}),
}

if __name__ == "__main__":
    # make_model_regressions.py [OUTDIR]   the regression inputs
    # make_model_regressions.py --valid PATH   the same model without a fault (a fuzz seed)
    if sys.argv[1:2] == ["--valid"]:
        model(sys.argv[2])
    else:
        out = sys.argv[1] if len(sys.argv) > 1 else "Fixtures/fuzz-regressions/model"
        os.makedirs(out, exist_ok=True)
        for name, kw in CASES.items():
            model(f"{out}/{name}.gguf", **kw)
