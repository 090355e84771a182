#!/usr/bin/env python3
"""Tiny, well-behaved checkpoints for testing the forward pass against llama.cpp.

For each architecture (llama with GQA and tied embeddings; qwen2 with q/k/v biases, NEOX rope and
an untied output) this writes a seeded random bf16 checkpoint (N(0, 0.05) weights, norms near 1,
the SentencePiece tokenizer of Fixtures/checkpoints/llama-tied), converts it to an F32 GGUF with
edgequant (byte-identical to convert_hf_to_gguf.py), and asks llama-perplexity for the
reference log-probs of a short text with a 32-token context (--kl-divergence-base; the file holds
the tokens too). The tests convert the checkpoint again and require KL divergence ~0.

usage: make_eval_golden.py EDGEQUANT_BIN LLAMA_BIN TEXT_FILE
"""
import json, os, shutil, subprocess, sys, tempfile
import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
eq, lbin, text_file = sys.argv[1:4]
tok_src = os.path.join(here, "..", "checkpoints", "llama-tied")

def bf16(a):
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16).tobytes()

def write_st(path, tensors):
    header, blobs, off = {}, [], 0
    for name, arr in sorted(tensors.items()):
        b = bf16(arr)
        header[name] = {"dtype": "BF16", "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b); off += len(b)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little")); f.write(h)
        for b in blobs: f.write(b)

def make(name, arch, tied, bias, seed):
    rng = np.random.default_rng(seed)
    d, ff, L, H, KV, V = 64, 128, 2, 4, 2, 320
    hd = d // H
    t = {"model.embed_tokens.weight": rng.normal(0, 0.2, (V, d)), "model.norm.weight": 1 + rng.normal(0, 0.05, d)}
    if not tied: t["lm_head.weight"] = rng.normal(0, 0.05, (V, d))
    for i in range(L):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = 1 + rng.normal(0, 0.05, d)
        t[p + "post_attention_layernorm.weight"] = 1 + rng.normal(0, 0.05, d)
        t[p + "self_attn.q_proj.weight"] = rng.normal(0, 0.15, (d, d))
        t[p + "self_attn.k_proj.weight"] = rng.normal(0, 0.15, (KV * hd, d))
        t[p + "self_attn.v_proj.weight"] = rng.normal(0, 0.15, (KV * hd, d))
        t[p + "self_attn.o_proj.weight"] = rng.normal(0, 0.1, (d, d))
        if bias:
            for k, n in (("q", d), ("k", KV * hd), ("v", KV * hd)):
                t[p + f"self_attn.{k}_proj.bias"] = rng.normal(0, 0.1, n)
        t[p + "mlp.gate_proj.weight"] = rng.normal(0, 0.1, (ff, d))
        t[p + "mlp.up_proj.weight"] = rng.normal(0, 0.1, (ff, d))
        t[p + "mlp.down_proj.weight"] = rng.normal(0, 0.1, (d, ff))
    out = os.path.join(here, name)
    os.makedirs(out, exist_ok=True)
    write_st(os.path.join(out, "model.safetensors"), t)
    for f in ("tokenizer.model", "tokenizer_config.json"):
        shutil.copy(os.path.join(tok_src, f), out)
    cfg = {"architectures": [arch], "hidden_size": d, "intermediate_size": ff, "num_hidden_layers": L,
           "num_attention_heads": H, "num_key_value_heads": KV, "rms_norm_eps": 1e-5, "vocab_size": V,
           "max_position_embeddings": 256, "rope_theta": 10000.0, "tie_word_embeddings": tied}
    json.dump(cfg, open(os.path.join(out, "config.json"), "w"), indent=1)
    with tempfile.TemporaryDirectory() as tmp:
        g = os.path.join(tmp, "m.gguf")
        subprocess.run([eq, "convert", out, "--type", "f32", "--outfile", g, "--quiet"], check=True)
        r = subprocess.run([os.path.join(lbin, "llama-perplexity"), "-m", g, "-f", text_file, "-c", "32", "--chunks", "3",
                            "-t", "1", "-b", "32", "--kl-divergence-base", os.path.join(here, name + ".logits")],
                           capture_output=True, text=True)
        final = [l for l in r.stderr.splitlines() + r.stdout.splitlines() if "Final estimate" in l]
        print(name, final[-1] if final else r.stderr[-500:])

text = open(text_file, encoding="utf-8").read()[:3000]
with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
    f.write(text); text_file = f.name
make("eval-llama", "LlamaForCausalLM", True, False, 1)
make("eval-qwen2", "Qwen2ForCausalLM", False, True, 2)
