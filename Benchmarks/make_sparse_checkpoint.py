#!/usr/bin/env python3
"""Writes a 7B-shaped Llama checkpoint whose tensor data are holes in sparse files (they read as
zeros and take no disk), to measure edgequant's memory on a model far larger than its tensors.
usage: make_sparse_checkpoint.py OUT_DIR [--layers 32 --dim 4096 --ffn 11008 --vocab 32000 --shards 3]
Needs only the standard library; copies a tiny tokenizer.model from Fixtures/."""
import argparse, json, os, shutil

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--layers", type=int, default=32)
ap.add_argument("--dim", type=int, default=4096)
ap.add_argument("--ffn", type=int, default=11008)
ap.add_argument("--vocab", type=int, default=32000)
ap.add_argument("--heads", type=int, default=32)
ap.add_argument("--kv-heads", type=int, default=None)
ap.add_argument("--shards", type=int, default=3)
a = ap.parse_args()
os.makedirs(a.out, exist_ok=True)
d, f, v = a.dim, a.ffn, a.vocab
kvh = a.kv_heads or a.heads
kv = d // a.heads * kvh
tensors = [("model.embed_tokens.weight", [v, d]), ("model.norm.weight", [d]), ("lm_head.weight", [v, d])]
for i in range(a.layers):
    p = f"model.layers.{i}."
    tensors += [(p + "input_layernorm.weight", [d]), (p + "post_attention_layernorm.weight", [d]),
                (p + "self_attn.q_proj.weight", [d, d]), (p + "self_attn.k_proj.weight", [kv, d]),
                (p + "self_attn.v_proj.weight", [kv, d]), (p + "self_attn.o_proj.weight", [d, d]),
                (p + "mlp.gate_proj.weight", [f, d]), (p + "mlp.up_proj.weight", [f, d]),
                (p + "mlp.down_proj.weight", [d, f])]
per = -(-len(tensors) // a.shards)
weight_map = {}
for s in range(a.shards):
    part = sorted(tensors[s * per:(s + 1) * per])
    name = f"model-{s + 1:05d}-of-{a.shards:05d}.safetensors"
    header, off = {"__metadata__": {"format": "pt"}}, 0
    for n, shape in part:
        size = 2 * shape[0] * (shape[1] if len(shape) > 1 else 1)
        header[n] = {"dtype": "BF16", "shape": shape, "data_offsets": [off, off + size]}
        off += size
        weight_map[n] = name
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(os.path.join(a.out, name), "wb") as fh:
        fh.write(len(h).to_bytes(8, "little") + h)
        fh.truncate(8 + len(h) + off)
json.dump({"metadata": {}, "weight_map": weight_map}, open(os.path.join(a.out, "model.safetensors.index.json"), "w"))
json.dump({"architectures": ["LlamaForCausalLM"], "hidden_size": d, "intermediate_size": f, "num_hidden_layers": a.layers,
           "num_attention_heads": a.heads, "num_key_value_heads": kvh, "rms_norm_eps": 1e-5, "vocab_size": v,
           "max_position_embeddings": 4096, "rope_theta": 10000.0, "tie_word_embeddings": False},
          open(os.path.join(a.out, "config.json"), "w"))
here = os.path.dirname(os.path.abspath(__file__))
shutil.copy(os.path.join(here, "..", "Fixtures", "checkpoints", "llama-tied", "tokenizer.model"), a.out)
print(f"{a.out}: {len(tensors)} tensors in {a.shards} sparse shards")
