#!/usr/bin/env python3
"""Tiny, well-behaved checkpoints for testing the forward pass against llama.cpp.

For each architecture (llama with GQA and tied embeddings; qwen2 with q/k/v biases, NEOX rope and
an untied output) this writes a seeded random bf16 checkpoint (N(0, 0.05) weights, norms near 1,
the SentencePiece tokenizer of Fixtures/checkpoints/llama-tied), converts it to an F32 GGUF with
edgequant (byte-identical to convert_hf_to_gguf.py), and asks llama-perplexity for the
reference log-probs of a short text with a 32-token context (--kl-divergence-base; the file holds
the tokens too). The tests convert the checkpoint again and require KL divergence ~0.

The newer families (gemma, gemma2, gemma3, qwen3, phi3, minicpm, smollm3) get the same treatment:
their config.json is Fixtures/checkpoints/<family>/config.json (transformers' own field names; known
to convert with convert_hf_to_gguf) with the sizes and a few fields overridden, their weights are
seeded and well-behaved (Gemma's norms are stored as w for x*(1+w), so near 0). Notes per family:
  gemma    MQA, head_dim 32 (n_head*head_dim 128 != hidden 64), tied, GELU; embeddings N(0, 0.05)
           as the model scales them by sqrt(hidden) (tied: the own-token logit grows with it).
  gemma2   4 layers (sliding, full, sliding, full), sliding_window 8 (bites at context 32),
           attention soft-cap 50 and final soft-cap 30 (larger q/k and embedding weights so that
           both caps bend the tails), sandwich norms, head_dim 32.
  gemma3   6 layers: llama.cpp hard-codes a period of 6 (no GGUF key), so layers 0-4 are local
           (window 8, rope base 1e4) and layer 5 global (rope base 1e6, linear factor 8);
           sliding_window_pattern 6 makes transformers agree. q/k norms, head_dim 32.
  qwen3    q/k norms over head_dim 32 != hidden/heads 16, untied.
  phi3     fused qkv_proj / gate_up_proj, partial_rotary_factor 0.75 (12 of 16 dims),
           original_max_position_embeddings 4096 (no LongRoPE), sliding_window 2047 (llama.cpp
           disables Phi-3 SWA anyway), untied. Vocabulary 330 with its fixture's Phi-3 added
           tokens: llama.cpp looks <|endoftext|> up for any model named *phi3* and fails without.
  minicpm  config.json by hand (no transformers class): scale_emb 12, scale_depth 1.4,
           dim_model_base 256, so the logits are scaled by 256/64 = 4; embeddings N(0, 0.05).
  smollm3  4 layers, NoPE on layer 3 (llama.cpp: every 4th), rope base 5e6, no BOS
           (its fixture's tokenizer_config: add_bos_token false).
  phi2     its own tensor names and biases everywhere (LayerNorm, q/k/v/dense, fc1/fc2, lm_head),
           parallel attention + GELU MLP, partial_rotary_factor 0.5 (8 of 16 dims), untied; the byte-level BPE tokenizer of its fixture (vocabulary 304, no BOS), which
           convert names phi-2 (see make_fixtures.py).
All use the 320-piece tokenizer.model and take their fixture's tokenizer_config.json, except
qwen3, which takes llama-tied's (its fixture adds tokens above 320 and has no BOS).

usage: make_eval_golden.py EDGEQUANT_BIN LLAMA_BIN TEXT_FILE [NAME ...]
       (NAMEs like eval-gemma2: only those; default all)
"""
import json, os, shutil, subprocess, sys, tempfile
import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
eq, lbin, text_file = sys.argv[1:4]
only = sys.argv[4:]
ckpts = os.path.join(here, "..", "checkpoints")
tok_src = os.path.join(ckpts, "llama-tied")

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
    golden(name, out)

def golden(name, out):
    with tempfile.TemporaryDirectory() as tmp:
        g = os.path.join(tmp, "m.gguf")
        subprocess.run([eq, "convert", out, "--type", "f32", "--outfile", g, "--quiet"], check=True)
        r = subprocess.run([os.path.join(lbin, "llama-perplexity"), "-m", g, "-f", text_file, "-c", "32", "--chunks", "3",
                            "-t", "1", "-b", "32", "--kl-divergence-base", os.path.join(here, name + ".logits")],
                           capture_output=True, text=True)
        final = [l for l in r.stderr.splitlines() + r.stdout.splitlines() if "Final estimate" in l]
        print(name, final[-1] if final else r.stderr[-500:])
        if not final or "nan" in final[-1].lower() or "inf" in final[-1].lower():
            sys.exit(f"{name}: llama-perplexity gave no finite estimate")

# --- newer families ---------------------------------------------------------------------------

def make_family(name, family, seed, *, d=64, ff=128, L=2, H=4, KV=2, hd=None, tied=True, gemma_norm=False,
                qk_norm=False, sandwich=False, fused=False, emb_std=0.2, qk_std=0.15, cfg=None,
                tok_from_fixture=True, V=320):
    """A well-behaved checkpoint of `family` (Fixtures/checkpoints/<family> gives config.json and,
    if tok_from_fixture, tokenizer_config.json), config fields overridden by `cfg`."""
    rng = np.random.default_rng(seed)
    hd = hd or d // H
    mean = 0.0 if gemma_norm else 1.0  # Gemma stores w for x * (1 + w)
    norm = lambda n: mean + rng.normal(0, 0.05, n)
    t = {"model.embed_tokens.weight": rng.normal(0, emb_std, (V, d))}
    for i in range(L):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = norm(d)
        t[p + "post_attention_layernorm.weight"] = norm(d)
        if sandwich:
            t[p + "pre_feedforward_layernorm.weight"] = norm(d)
            t[p + "post_feedforward_layernorm.weight"] = norm(d)
        q = rng.normal(0, qk_std, (H * hd, d))
        k = rng.normal(0, qk_std, (KV * hd, d))
        v = rng.normal(0, 0.15, (KV * hd, d))
        if fused:
            t[p + "self_attn.qkv_proj.weight"] = np.concatenate([q, k, v])
        else:
            t[p + "self_attn.q_proj.weight"], t[p + "self_attn.k_proj.weight"], t[p + "self_attn.v_proj.weight"] = q, k, v
        t[p + "self_attn.o_proj.weight"] = rng.normal(0, 0.1, (d, H * hd))
        if qk_norm:
            t[p + "self_attn.q_norm.weight"] = norm(hd)
            t[p + "self_attn.k_norm.weight"] = norm(hd)
        gate, up = rng.normal(0, 0.1, (ff, d)), rng.normal(0, 0.1, (ff, d))
        if fused:
            t[p + "mlp.gate_up_proj.weight"] = np.concatenate([gate, up])
        else:
            t[p + "mlp.gate_proj.weight"], t[p + "mlp.up_proj.weight"] = gate, up
        t[p + "mlp.down_proj.weight"] = rng.normal(0, 0.1, (d, ff))
    t["model.norm.weight"] = norm(d)
    if not tied: t["lm_head.weight"] = rng.normal(0, 0.05, (V, d))
    out = os.path.join(here, name)
    os.makedirs(out, exist_ok=True)
    write_st(os.path.join(out, "model.safetensors"), t)
    fx = os.path.join(ckpts, family)
    shutil.copy(os.path.join(tok_src, "tokenizer.model"), out)
    shutil.copy(os.path.join(fx if tok_from_fixture else tok_src, "tokenizer_config.json"), out)
    c = json.load(open(os.path.join(fx, "config.json")))
    c.update({"hidden_size": d, "intermediate_size": ff, "num_hidden_layers": L, "num_attention_heads": H,
              "num_key_value_heads": KV, "vocab_size": V, "tie_word_embeddings": tied})
    if "head_dim" in c: c["head_dim"] = hd
    c.update(cfg or {})
    json.dump(c, open(os.path.join(out, "config.json"), "w"), indent=2)
    golden(name, out)

def make_phi2(name, seed, *, d=64, L=2, H=4):
    rng = np.random.default_rng(seed)
    ff, V = 4 * d, 304
    t = {"model.embed_tokens.weight": rng.normal(0, 0.2, (V, d)),
         "model.final_layernorm.weight": 1 + rng.normal(0, 0.05, d), "model.final_layernorm.bias": rng.normal(0, 0.05, d),
         "lm_head.weight": rng.normal(0, 0.05, (V, d)), "lm_head.bias": rng.normal(0, 0.1, V)}
    for i in range(L):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = 1 + rng.normal(0, 0.05, d)
        t[p + "input_layernorm.bias"] = rng.normal(0, 0.05, d)
        for n, std in (("q_proj", 0.15), ("k_proj", 0.15), ("v_proj", 0.15), ("dense", 0.1)):
            t[p + f"self_attn.{n}.weight"] = rng.normal(0, std, (d, d))
            t[p + f"self_attn.{n}.bias"] = rng.normal(0, 0.1, d)
        t[p + "mlp.fc1.weight"] = rng.normal(0, 0.1, (ff, d))
        t[p + "mlp.fc1.bias"] = rng.normal(0, 0.1, ff)
        t[p + "mlp.fc2.weight"] = rng.normal(0, 0.1, (d, ff))
        t[p + "mlp.fc2.bias"] = rng.normal(0, 0.1, d)
    out = os.path.join(here, name)
    os.makedirs(out, exist_ok=True)
    write_st(os.path.join(out, "model.safetensors"), t)
    fx = os.path.join(ckpts, "phi2")
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(fx, f), out)
    c = json.load(open(os.path.join(fx, "config.json")))
    c.update({"hidden_size": d, "intermediate_size": ff, "num_hidden_layers": L, "num_attention_heads": H,
              "num_key_value_heads": H, "vocab_size": V, "dtype": "bfloat16"})
    json.dump(c, open(os.path.join(out, "config.json"), "w"), indent=2)
    golden(name, out)

def layer_types(L, period):
    return ["full_attention" if (i + 1) % period == 0 else "sliding_attention" for i in range(L)]

def want(name): return not only or name in only

text = open(text_file, encoding="utf-8").read()[:3000]
with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
    f.write(text); text_file = f.name
if want("eval-llama"): make("eval-llama", "LlamaForCausalLM", True, False, 1)
if want("eval-qwen2"): make("eval-qwen2", "Qwen2ForCausalLM", False, True, 2)
if want("eval-gemma"):
    make_family("eval-gemma", "gemma", 3, KV=1, hd=32, gemma_norm=True, emb_std=0.05,
                cfg={"dtype": "bfloat16"})
if want("eval-gemma2"):
    make_family("eval-gemma2", "gemma2", 4, L=4, hd=32, gemma_norm=True, sandwich=True, emb_std=0.15, qk_std=0.3,
                cfg={"sliding_window": 8, "query_pre_attn_scalar": 32, "layer_types": layer_types(4, 2)})
if want("eval-gemma3"):
    make_family("eval-gemma3", "gemma3", 5, L=6, hd=32, gemma_norm=True, qk_norm=True, sandwich=True,
                cfg={"sliding_window": 8, "query_pre_attn_scalar": 32, "sliding_window_pattern": 6,
                     "_sliding_window_pattern": 6, "layer_types": layer_types(6, 6)})
if want("eval-qwen3"):
    make_family("eval-qwen3", "qwen3", 6, hd=32, tied=False, qk_norm=True, tok_from_fixture=False,
                cfg={"bos_token_id": 1, "eos_token_id": 2, "max_window_layers": 2})
if want("eval-phi3"):
    make_family("eval-phi3", "phi3", 7, tied=False, fused=True, V=330, cfg={"dtype": "bfloat16"})
if want("eval-minicpm"):
    make_family("eval-minicpm", "minicpm", 8, emb_std=0.05)
if want("eval-smollm3"):
    make_family("eval-smollm3", "smollm3", 9, L=4, cfg={"layer_types": ["full_attention"] * 4})
if want("eval-phi2"):
    make_phi2("eval-phi2", 10)
