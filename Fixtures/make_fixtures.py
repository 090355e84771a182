#!/usr/bin/env python3
"""Build tiny Hugging Face checkpoints and the GGUF files llama.cpp makes from them.

What it writes (paths relative to this script's directory):

  checkpoints/<variant>/   a tiny HF checkpoint (config.json, safetensors, tokenizer files)
  golden/<variant>-<outtype>.gguf
                           what llama.cpp's convert_hf_to_gguf.py writes for it, for
                           outtype in f32, f16, bf16, q8_0 (run with --outfile; the
                           checkpoint directory name still feeds general.name)
  golden/SHA256SUMS        hashes of every file written, plus tool versions (MANIFEST.json)

Why: edgequant must write GGUF files byte-identical to convert_hf_to_gguf.py. These
fixtures are small enough to live in the repo and each one exercises a different
branch of the converter (see /work/ref/spec.md for the rules they check).

Variants (all: hidden 64, 4 heads, 2 KV heads (GQA, so the q/k row permutation is
exercised with n_head != n_head_kv), 2 layers, rms_norm_eps 1e-5, intermediate 32
(mistral: 48), a 320-piece SentencePiece BPE tokenizer.model trained here with
byte_fallback like Llama-2's). Intermediate is 32, not 128, to keep Fixtures/ near 3 MB.

  llama-tied            LlamaForCausalLM, one BF16 model.safetensors, tie_word_embeddings
                        (no lm_head -> no output.weight).
                        tokenizer.model + tokenizer_config.json (add_bos true, add_eos false,
                        add_prefix_space true, chat_template, added_tokens_decoder 0..2 which
                        turns <unk>/<s>/</s> into CONTROL with score -1000) +
                        special_tokens_map.json. No tokenizer.json, so special ids come from
                        config.json only.
  llama-untied-sharded  LlamaForCausalLM, F16, lm_head present, two shards + index
                        (shard 1 holds layer 1 and lm_head, shard 2 the rest, so GGUF tensor
                        order = per-shard sorted order, not global sorted order),
                        rope_scaling llama3 (convert generates an F32 rope_freqs.weight tensor,
                        written first), explicit head_dim, README.md model card (license,
                        tags, languages, base_model, datasets -> general.* keys) and
                        generation_config.json with sampling values (general.sampling.*).
  mistral               MistralForCausalLM, F32, untied, sliding_window null,
                        intermediate 48 (NOT a multiple of 32: ffn_down rows can't be Q8_0,
                        convert falls back to F16 for that tensor under --outtype q8_0).
                        tokenizer.model + tokenizer.json (Llama-style, TemplateProcessing
                        "<s> A" / "<s> A <s> B" -> add_bos true, add_sep FALSE quirk) +
                        tokenizer_config.json + chat_template.jinja (template from file).
  qwen2                 Qwen2ForCausalLM, BF16, q/k/v biases, tied, no permutation.
                        Qwen2Model.set_vocab tries SentencePiece first, so it uses the same
                        tiny tokenizer.model (a real Qwen2 gpt2/BPE vocab would be 151k tokens).
                        config vocab_size 326 > 320 pieces; added_tokens.json and
                        tokenizer_config added_tokens_decoder add CONTROL / USER_DEFINED tokens
                        above the pieces, the rest stay [PADn]. pad_token_id 999 is out of
                        range (skipped). add_prefix_space false is IGNORED for Qwen2.

New families (hidden 32, intermediate 32, same tokenizer.model; config.json written by
transformers' own config class via save_pretrained, so it carries this transformers version's
field names, e.g. rope_parameters and dtype; each also gets golden/<variant>.hparams.txt, the
f32 golden's metadata in file order with value types, plus its tensor list):

  gemma                 GemmaForCausalLM, F16, 1 KV head, head_dim 32 (n_head*head_dim 128 !=
                        hidden), tied. Norm weights are stored as w for x*(1+w): convert adds 1
                        AFTER its dtype step, which keeps F16 as F16, so the +1 is rounded in F16
                        here (BF16 sources are upcast to F32 first). No rope.freq_base key
                        (GemmaModel does not call TextModel.set_gguf_parameters). CodeGemma ids
                        67..70/107 are forced in: only eot (107 < n_vocab) gets a handler.
  gemma2                Gemma2ForCausalLM, BF16, 4 layers, attn/final logit soft-capping,
                        sliding_window, sandwich norms, query_pre_attn_scalar (no GGUF key), chat
                        template.
  gemma3                Gemma3ForCausalLM (gemma3_text), BF16, 4 layers, sliding_window_pattern 2,
                        q/k norms (+1 too), linear rope factor 8 on global layers, rope_local_base_freq
                        -> rope.freq_base_swa. Several keys written twice (first position, last value).
  qwen3                 Qwen3ForCausalLM, BF16, q/k norms, head_dim 16 != hidden/heads, untied.
  phi3                  Phi3ForCausalLM, F32, fused qkv_proj / gate_up_proj (-> attn_qkv, ffn_up of
                        2*n_ff rows), partial_rotary_factor 0.75, sliding_window 2047, untied,
                        Phi-3's added tokens (Phi3's own vocab code: no does_token_look_special).
  phi3-longrope         as phi3 but BF16, tied, longrope short/long factors (rope_factors_* tensors,
                        written first) and rope.scaling.attn_factor (written during tensor
                        preparation, so it lands right after general.architecture).
  minicpm               MiniCPMForCausalLM (no transformers class: config.json by hand, convert
                        reads it as plain JSON), BF16, scale_emb / scale_depth / dim_model_base,
                        q/k permuted like llama, tied, no rope_theta; "_name_or_path" feeds general.*.
  smollm3               SmolLM3ForCausalLM, BF16, 4 layers, no_rope_layers [1,1,1,0] (no GGUF key:
                        llama.cpp hard-codes NoPE every 4th layer), no BOS, tied.
  phi2                  PhiForCausalLM, F32, LayerNorm with biases, q/k/v/dense/fc1/fc2/lm_head
                        biases, partial_rotary_factor 0.5 (rope dims 4 of 8), untied. Byte-level BPE
                        tokenizer.json (ByteLevel pre-tokenizer as phi-2's) trained here: 300 entries
                        plus <|endoftext|>, config vocab_size 304 (-> [PAD301..303]).
                        _set_vocab_gpt2 names the pre-tokenizer by hashing the token ids of a fixed
                        text and only knows real vocabularies (phi-2's is 50k pieces, megabytes per
                        golden), so convert runs with get_vocab_base_pre answering "phi-2" -- what it
                        answers for microsoft/phi-2's tokenizer; nothing else is patched.

Weights are seeded numpy normals. A few tensors carry edge values (F16 overflow, F16/BF16
subnormals, exact round-to-nearest-even ties, -0.0, an all-zero Q8_0 block) so the dtype
conversion paths get checked bit for bit. No NaN (Q8_0 of NaN is undefined in numpy).

Safetensors are written by hand (8-byte LE header length, JSON header with
__metadata__ {"format": "pt"}, padded with spaces to a multiple of 8), header in
"natural" (not sorted) order, so readers must sort tensor names themselves like convert.

Usage:
  make_fixtures.py --llama-cpp /work/ref/llama/src
      [--out DIR]                default: this script's directory
      [--only VARIANT ...]       subset of variants
      [--skip-convert]           only (re)write checkpoints
      [--smollm2 DIR --big-out DIR]
                                 also convert a real checkpoint (e.g. /work/data/smol) for
                                 all four outtypes into --big-out (NOT under Fixtures/: ~1 GB)
Needs: numpy, sentencepiece (fixture generation only), and for the convert step
torch + transformers (+ sentencepiece) as convert_hf_to_gguf.py imports them.
Deterministic: running it twice gives byte-identical files.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

OUTTYPES = ["f32", "f16", "bf16", "q8_0"]
VARIANTS = ["llama-tied", "llama-untied-sharded", "mistral", "qwen2",
            "gemma", "gemma2", "gemma3", "qwen3", "phi3", "phi3-longrope", "minicpm", "smollm3", "phi2"]
NEW_FAMILIES = VARIANTS[4:]  # these also get golden/<variant>.hparams.txt

HIDDEN = 64
N_HEAD = 4
N_KV = 2
HEAD_DIM = HIDDEN // N_HEAD
N_LAYER = 2
RMS_EPS = 1e-5
# FFN width. 32 (not the 128 first planned) keeps Fixtures/ near 3 MB; it still differs from
# HIDDEN so a transposed ffn tensor changes shapes. Mistral uses 48, which is NOT a multiple
# of the Q8_0 block (32): its ffn_down rows can't be Q8_0 and convert falls back to F16.
INTER = 32
INTER_MISTRAL = 48
SP_VOCAB = 320

# Small English text (plus a little non-ASCII) to train the tokenizer on.
CORPUS = """\
Once upon a time there was a little robot who lived at the edge of a quiet forest.
Every morning the robot counted the trees: 1, 2, 3, 10, 42, 100 and 1024.
The trees did not mind. They liked the sound of numbers in the cold morning air.
One day a fox came out of the forest and asked the robot what it was doing.
"I am counting," said the robot. "If I stop counting, I forget where I am."
The fox laughed and said that the river always knows where it is going.
So the robot walked to the river, and the river ran to the sea, and the road followed the river.
At the sea there was a small café where a naïve llama 🦙 served tea to tired travellers.
The llama said: "Sit down, drink your tea, and tell me a story about the forest."
The robot told the story of the trees, the fox, the river and the road — and the llama listened.
When the story was over, the sun was low and the sky was orange and gold.
The robot thanked the llama, paid for the tea, and walked home along the road by the river.
That night it did not count the trees. It slept, and dreamed of the sea.
"""

LLAMA2_CHAT_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set system_message = '<<SYS>>\\n' + messages[0]['content'] | trim + '\\n<</SYS>>\\n\\n' %}"
    "{% set messages = messages[1:] %}{% else %}{% set system_message = '' %}{% endif %}"
    "{% for message in messages %}{% if loop.index0 == 0 %}{% set content = system_message + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content | trim + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' ' + content | trim + ' ' + eos_token }}{% endif %}{% endfor %}"
)
MISTRAL_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}{% endif %}"
    "{% endfor %}\n"
)
CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

MODEL_CARD = """\
---
license: apache-2.0
language:
- en
tags:
- tiny
- test-fixture
pipeline_tag: text-generation
base_model: meta-llama/Llama-3.2-1B
datasets:
- HuggingFaceFW/fineweb-edu
---

# llama-untied-sharded

A tiny random-weight checkpoint used as a conversion test fixture.
"""


# --------------------------------------------------------------------------------------
# numeric helpers

def f32_to_bf16_bits(a: np.ndarray) -> np.ndarray:
    """Round float32 -> bfloat16 (round to nearest even), as torch does. No NaN expected."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def bf16_bits_to_f32(b: np.ndarray) -> np.ndarray:
    return (b.astype(np.uint32) << 16).view(np.float32)


def encode_tensor(arr: np.ndarray, dtype: str) -> tuple[bytes, str]:
    if dtype == "bf16":
        return f32_to_bf16_bits(arr).tobytes(), "BF16"
    if dtype == "f16":
        with np.errstate(over="ignore"):
            return np.ascontiguousarray(arr, dtype=np.float16).tobytes(), "F16"
    return np.ascontiguousarray(arr, dtype=np.float32).tobytes(), "F32"


def write_safetensors(path: Path, tensors: list[tuple[str, np.ndarray]], dtype: str) -> int:
    header: dict = {}
    blobs = []
    offset = 0
    for name, arr in tensors:
        blob, st = encode_tensor(arr, dtype)
        header[name] = {"dtype": st, "shape": list(arr.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    header["__metadata__"] = {"format": "pt"}
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(path, "wb") as f:
        f.write(len(hj).to_bytes(8, "little"))
        f.write(hj)
        for b in blobs:
            f.write(b)
    return offset


def write_json(path: Path, obj) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


# --------------------------------------------------------------------------------------
# tokenizer

def train_sentencepiece() -> bytes:
    import sentencepiece as spm
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS.splitlines()), model_writer=buf,
        model_type="bpe", vocab_size=SP_VOCAB, byte_fallback=True, split_digits=True,
        add_dummy_prefix=True, remove_extra_whitespaces=False, normalization_rule_name="identity",
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, character_coverage=1.0, num_threads=1,
        allow_whitespace_only_pieces=True, max_sentencepiece_length=16, minloglevel=2,
    )
    return buf.getvalue()


def llama_tokenizer_json(sp_model: bytes) -> dict:
    """A Llama/Mistral-style tokenizer.json (what transformers' LlamaConverter produced for
    Llama-2 / Mistral-7B-v0.1), built from the SentencePiece model."""
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_proto=sp_model)
    n = sp.vocab_size()
    pieces = [sp.IdToPiece(i) for i in range(n)]
    vocab = {p: i for i, p in enumerate(pieces)}
    merges = []
    for pid, piece in enumerate(pieces):
        if sp.IsControl(pid) or sp.IsUnknown(pid) or sp.IsByte(pid) or len(piece) < 2:
            continue
        local = [(piece[:k], piece[k:]) for k in range(1, len(piece))
                 if piece[:k] in vocab and piece[k:] in vocab]
        local.sort(key=lambda lr: (vocab[lr[0]], vocab[lr[1]]))
        merges.extend((pid, l, r) for l, r in local)
    merges.sort(key=lambda m: m[0])
    special = lambda i, c: {"id": i, "content": c, "single_word": False, "lstrip": False,  # noqa: E731
                            "rstrip": False, "normalized": False, "special": True}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [special(0, "<unk>"), special(1, "<s>"), special(2, "</s>")],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        "pre_tokenizer": None,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}},
        },
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {
            "type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
            "vocab": vocab, "merges": [[l, r] for _, l, r in merges],
        },
    }


def check_tokenizer_json(tok_json: dict, sp_model: bytes) -> None:
    """Best effort: the hand-built tokenizer.json should tokenize like the .model."""
    try:
        import sentencepiece as spm
        from tokenizers import Tokenizer
    except ImportError:
        return
    sp = spm.SentencePieceProcessor(model_proto=sp_model)
    tk = Tokenizer.from_str(json.dumps(tok_json))
    for s in ["The robot walked to the river.", "café 🦙 1024", "Hello world"]:
        a = sp.encode(s)
        b = tk.encode(s, add_special_tokens=False).ids
        if a != b:
            print(f"  note: tokenizer.json and tokenizer.model disagree on {s!r}: {a} vs {b}")


def special_entry(content: str, special: bool = True, normalized: bool = False) -> dict:
    return {"content": content, "lstrip": False, "normalized": normalized, "rstrip": False,
            "single_word": False, "special": special}


# --------------------------------------------------------------------------------------
# weights

def make_weights(seed: int, vocab: int, inter: int, *, tied: bool, qkv_bias: bool) -> list[tuple[str, np.ndarray]]:
    """HF LlamaForCausalLM / Qwen2ForCausalLM tensors, float32, in 'natural' order."""
    rng = np.random.default_rng(seed)

    def mat(rows, cols, std=0.02):
        return (rng.standard_normal((rows, cols), dtype=np.float32) * np.float32(std)).astype(np.float32)

    def vec(n, mean=0.0, std=0.1):
        return (np.float32(mean) + rng.standard_normal(n, dtype=np.float32) * np.float32(std)).astype(np.float32)

    t: list[tuple[str, np.ndarray]] = [("model.embed_tokens.weight", mat(vocab, HIDDEN))]
    for i in range(N_LAYER):
        p = f"model.layers.{i}."
        t.append((p + "input_layernorm.weight", vec(HIDDEN, 1.0)))
        t.append((p + "self_attn.q_proj.weight", mat(N_HEAD * HEAD_DIM, HIDDEN)))
        if qkv_bias:
            t.append((p + "self_attn.q_proj.bias", vec(N_HEAD * HEAD_DIM)))
        t.append((p + "self_attn.k_proj.weight", mat(N_KV * HEAD_DIM, HIDDEN)))
        if qkv_bias:
            t.append((p + "self_attn.k_proj.bias", vec(N_KV * HEAD_DIM)))
        t.append((p + "self_attn.v_proj.weight", mat(N_KV * HEAD_DIM, HIDDEN)))
        if qkv_bias:
            t.append((p + "self_attn.v_proj.bias", vec(N_KV * HEAD_DIM)))
        t.append((p + "self_attn.o_proj.weight", mat(HIDDEN, N_HEAD * HEAD_DIM)))
        t.append((p + "post_attention_layernorm.weight", vec(HIDDEN, 1.0)))
        t.append((p + "mlp.gate_proj.weight", mat(inter, HIDDEN)))
        t.append((p + "mlp.up_proj.weight", mat(inter, HIDDEN)))
        t.append((p + "mlp.down_proj.weight", mat(HIDDEN, inter)))
    t.append(("model.norm.weight", vec(HIDDEN, 1.0)))
    if not tied:
        t.append(("lm_head.weight", mat(vocab, HIDDEN)))

    d = dict(t)
    # an all-zero Q8_0 block (d == 0 -> id = 0 path) and an all-zero row
    d["model.layers.0.self_attn.o_proj.weight"][3, :] = 0.0
    # edge values for dtype conversion, first 16 entries of one row
    edge = np.array([
        131008.0,            # > f16 max (65504): inf in F16 (unless the source is F16, see below)
        -70000.0,            # -inf in F16
        65504.0,             # f16 max, exact
        6.0e-8,              # f16 subnormal range
        2.0e-8,              # rounds to 0 or the smallest f16 subnormal
        1.0e-40,             # f32 subnormal
        -0.0,                # negative zero
        1.0 + 2.0 ** -11,    # exact f16 tie -> 1.0 (even)
        1.0 + 3 * 2.0 ** -11,  # exact f16 tie -> 1 + 2^-9 (even)
        1.0 + 2.0 ** -8,     # exact bf16 tie -> 1.0
        1.0 + 3 * 2.0 ** -8,  # exact bf16 tie -> 1 + 2^-6
        -(1.0 + 2.0 ** -8),  # negative tie
        3.0e38,              # large f32: finite in bf16? (rounds to bf16 max or inf)
        0.5, -0.25, 2.0,
    ], dtype=np.float32)
    d["model.layers.1.mlp.up_proj.weight"][0, :16] = edge
    return [(n, d[n]) for n, _ in t]


def f16_safe(tensors):
    """F16 checkpoints can't hold values beyond f16 range; clamp them (as a real F16 export would be)."""
    out = []
    for n, a in tensors:
        out.append((n, np.clip(a, -65504.0, 65504.0).astype(np.float32)))
    return out


def n_bytes_of(tensors, dtype):
    per = {"f32": 4, "f16": 2, "bf16": 2}[dtype]
    return sum(a.size * per for _, a in tensors)


# --------------------------------------------------------------------------------------
# variants

def base_config(arch: str, model_type: str, vocab: int, inter: int, **extra) -> dict:
    c = {
        "architectures": [arch],
        "model_type": model_type,
        "hidden_size": HIDDEN,
        "intermediate_size": inter,
        "num_attention_heads": N_HEAD,
        "num_key_value_heads": N_KV,
        "num_hidden_layers": N_LAYER,
        "rms_norm_eps": RMS_EPS,
        "vocab_size": vocab,
        "hidden_act": "silu",
        "initializer_range": 0.02,
        "attention_dropout": 0.0,
        "use_cache": True,
    }
    c.update(extra)
    return c


def write_llama_tied(d: Path, sp_model: bytes) -> None:
    vocab, inter = SP_VOCAB, INTER
    write_json(d / "config.json", base_config(
        "LlamaForCausalLM", "llama", vocab, inter,
        attention_bias=False, mlp_bias=False, bos_token_id=1, eos_token_id=2,
        max_position_embeddings=2048, pretraining_tp=1, rope_scaling=None, rope_theta=10000.0,
        tie_word_embeddings=True, torch_dtype="bfloat16"))
    w = make_weights(1001, vocab, inter, tied=True, qkv_bias=False)
    write_safetensors(d / "model.safetensors", w, "bf16")
    (d / "tokenizer.model").write_bytes(sp_model)
    write_json(d / "tokenizer_config.json", {
        "add_bos_token": True,
        "add_eos_token": False,
        "add_prefix_space": True,
        "added_tokens_decoder": {"0": special_entry("<unk>"), "1": special_entry("<s>"), "2": special_entry("</s>")},
        "bos_token": "<s>",
        "chat_template": LLAMA2_CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "</s>",
        "legacy": False,
        "model_max_length": 2048,
        "pad_token": None,
        "padding_side": "right",
        "sp_model_kwargs": {},
        "tokenizer_class": "LlamaTokenizer",
        "unk_token": "<unk>",
        "use_default_system_prompt": False,
    })
    write_json(d / "special_tokens_map.json", {
        "bos_token": special_entry("<s>"), "eos_token": special_entry("</s>"), "unk_token": special_entry("<unk>")})


def write_llama_untied_sharded(d: Path, sp_model: bytes) -> None:
    vocab, inter = SP_VOCAB, INTER
    write_json(d / "config.json", base_config(
        "LlamaForCausalLM", "llama", vocab, inter,
        attention_bias=False, mlp_bias=False, bos_token_id=1, eos_token_id=2, head_dim=HEAD_DIM,
        max_position_embeddings=131072, pretraining_tp=1, rope_theta=500000.0,
        rope_scaling={"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                      "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        tie_word_embeddings=False, torch_dtype="float16"))
    w = f16_safe(make_weights(2002, vocab, inter, tied=False, qkv_bias=False))
    # shard 1: layer 1 + lm_head; shard 2: embeddings, layer 0, final norm
    s1 = [(n, a) for n, a in w if n.startswith("model.layers.1.") or n == "lm_head.weight"]
    s2 = [(n, a) for n, a in w if not (n.startswith("model.layers.1.") or n == "lm_head.weight")]
    f1, f2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
    write_safetensors(d / f1, s1, "f16")
    write_safetensors(d / f2, s2, "f16")
    weight_map = {n: f1 for n, _ in s1}
    weight_map.update({n: f2 for n, _ in s2})
    write_json(d / "model.safetensors.index.json", {
        "metadata": {"total_size": n_bytes_of(w, "f16")},
        "weight_map": dict(sorted(weight_map.items())),
    })
    (d / "tokenizer.model").write_bytes(sp_model)
    write_json(d / "tokenizer_config.json", {
        "add_bos_token": True,
        "add_eos_token": True,
        "added_tokens_decoder": {"0": special_entry("<unk>"), "1": special_entry("<s>"), "2": special_entry("</s>")},
        "bos_token": "<s>",
        "clean_up_tokenization_spaces": False,
        "eos_token": "</s>",
        "legacy": True,
        "model_max_length": 131072,
        "pad_token": None,
        "tokenizer_class": "LlamaTokenizer",
        "unk_token": "<unk>",
    })
    write_json(d / "generation_config.json", {
        "bos_token_id": 1, "do_sample": True, "eos_token_id": 2,
        "temperature": 0.6, "top_k": 50, "top_p": 0.9, "transformers_version": "4.45.0"})
    (d / "README.md").write_text(MODEL_CARD, encoding="utf-8")


def write_mistral(d: Path, sp_model: bytes) -> None:
    vocab, inter = SP_VOCAB, INTER_MISTRAL
    write_json(d / "config.json", base_config(
        "MistralForCausalLM", "mistral", vocab, inter,
        bos_token_id=1, eos_token_id=2, max_position_embeddings=32768, rope_theta=1000000.0,
        sliding_window=None, tie_word_embeddings=False, torch_dtype="float32"))
    w = make_weights(3003, vocab, inter, tied=False, qkv_bias=False)
    write_safetensors(d / "model.safetensors", w, "f32")
    (d / "tokenizer.model").write_bytes(sp_model)
    tj = llama_tokenizer_json(sp_model)
    check_tokenizer_json(tj, sp_model)
    write_json(d / "tokenizer.json", tj)
    write_json(d / "tokenizer_config.json", {
        "add_bos_token": True,
        "add_eos_token": False,
        "added_tokens_decoder": {"0": special_entry("<unk>"), "1": special_entry("<s>"), "2": special_entry("</s>")},
        "additional_special_tokens": [],
        "bos_token": "<s>",
        "clean_up_tokenization_spaces": False,
        "eos_token": "</s>",
        "legacy": True,
        "model_max_length": 32768,
        "pad_token": None,
        "sp_model_kwargs": {},
        "spaces_between_special_tokens": False,
        "tokenizer_class": "LlamaTokenizer",
        "unk_token": "<unk>",
        "use_default_system_prompt": False,
    })
    (d / "chat_template.jinja").write_text(MISTRAL_CHAT_TEMPLATE, encoding="utf-8")


def write_qwen2(d: Path, sp_model: bytes) -> None:
    vocab, inter = SP_VOCAB + 6, INTER  # 326: ids 320..325 are beyond the SentencePiece pieces
    write_json(d / "config.json", base_config(
        "Qwen2ForCausalLM", "qwen2", vocab, inter,
        bos_token_id=320, eos_token_id=322, pad_token_id=999,  # 999 >= n_vocab: skipped by convert
        max_position_embeddings=32768, max_window_layers=2, rope_theta=1000000.0,
        sliding_window=32768, use_sliding_window=False, tie_word_embeddings=True, torch_dtype="bfloat16"))
    w = make_weights(4004, vocab, inter, tied=True, qkv_bias=True)
    write_safetensors(d / "model.safetensors", w, "bf16")
    (d / "tokenizer.model").write_bytes(sp_model)
    # added_tokens.json: USER_DEFINED, score -1000 (then tokenizer_config may override)
    write_json(d / "added_tokens.json", {"<|endoftext|>": 320, "<extra_0>": 324, "<too_big>": 4000})
    write_json(d / "tokenizer_config.json", {
        "add_prefix_space": False,       # NOT used by Qwen2Model (only LlamaModel writes add_space_prefix)
        "added_tokens_decoder": {
            "320": special_entry("<|endoftext|>"),
            "321": special_entry("<|im_start|>"),
            "322": special_entry("<|im_end|>"),
            "323": special_entry("\u2581hello\u2581world", special=False, normalized=True),  # USER_DEFINED, ▁ -> ' '
            "5": special_entry("<tool>", special=False),  # overrides a byte piece; looks-special? no -> USER_DEFINED
            "9999": special_entry("<|out_of_range|>"),  # ignored (>= vocab_size)
        },
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "bos_token": None,
        "chat_template": CHATML_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 32768,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    })


# --------------------------------------------------------------------------------------
# new families (gemma, gemma2, gemma3, qwen3, phi3, phi3-longrope, minicpm, smollm3)
#
# Same tokenizer.model, same seeded-normal weights and edge values as above; configs come
# from transformers' own config classes (save_pretrained: the fields and their names are
# the ones this transformers version writes) except MiniCPM, which transformers lacks
# (remote code): its config.json is written by hand like openbmb/MiniCPM-2B's, and convert
# falls back to reading config.json as plain JSON.

# Hidden size of the new families: 32 (not 64) keeps their 32 golden files near 3.5 MB. Still
# a multiple of the Q8_0 block, and n_head * head_dim differs from it where a family allows.
FAM_HIDDEN = 32

EDGE_VALUES = np.array([
    131008.0, -70000.0, 65504.0, 6.0e-8, 2.0e-8, 1.0e-40, -0.0,
    1.0 + 2.0 ** -11, 1.0 + 3 * 2.0 ** -11, 1.0 + 2.0 ** -8, 1.0 + 3 * 2.0 ** -8, -(1.0 + 2.0 ** -8),
    3.0e38, 0.5, -0.25, 2.0,
], dtype=np.float32)  # the same 16 values make_weights puts into layer 1 up_proj


def family_weights(seed: int, vocab: int, *, layers: int, n_head: int, n_kv: int, head_dim: int,
                   inter: int, tied: bool, norm_mean: float = 1.0, qk_norm: bool = False,
                   sandwich: bool = False, fused: bool = False) -> list[tuple[str, np.ndarray]]:
    """HF tensors in module order, float32.

    norm_mean: 1.0 for x * w norms, 0.0 for Gemma's x * (1 + w) norms (convert adds 1).
    qk_norm:   self_attn.q_norm / k_norm over head_dim (Gemma 3, Qwen3).
    sandwich:  Gemma 2/3 pre_feedforward_layernorm + post_feedforward_layernorm.
    fused:     Phi-3 self_attn.qkv_proj and mlp.gate_up_proj.
    """
    rng = np.random.default_rng(seed)

    def mat(rows, cols, std=0.02):
        return (rng.standard_normal((rows, cols), dtype=np.float32) * np.float32(std)).astype(np.float32)

    def vec(n, mean, std=0.1):
        return (np.float32(mean) + rng.standard_normal(n, dtype=np.float32) * np.float32(std)).astype(np.float32)

    q_rows, kv_rows = n_head * head_dim, n_kv * head_dim
    t: list[tuple[str, np.ndarray]] = [("model.embed_tokens.weight", mat(vocab, FAM_HIDDEN))]
    for i in range(layers):
        p = f"model.layers.{i}."
        if fused:
            t.append((p + "self_attn.qkv_proj.weight", mat(q_rows + 2 * kv_rows, FAM_HIDDEN)))
        else:
            t.append((p + "self_attn.q_proj.weight", mat(q_rows, FAM_HIDDEN)))
            t.append((p + "self_attn.k_proj.weight", mat(kv_rows, FAM_HIDDEN)))
            t.append((p + "self_attn.v_proj.weight", mat(kv_rows, FAM_HIDDEN)))
        t.append((p + "self_attn.o_proj.weight", mat(FAM_HIDDEN, q_rows)))
        if qk_norm:
            t.append((p + "self_attn.q_norm.weight", vec(head_dim, norm_mean)))
            t.append((p + "self_attn.k_norm.weight", vec(head_dim, norm_mean)))
        if fused:
            t.append((p + "mlp.gate_up_proj.weight", mat(2 * inter, FAM_HIDDEN)))
        else:
            t.append((p + "mlp.gate_proj.weight", mat(inter, FAM_HIDDEN)))
            t.append((p + "mlp.up_proj.weight", mat(inter, FAM_HIDDEN)))
        t.append((p + "mlp.down_proj.weight", mat(FAM_HIDDEN, inter)))
        t.append((p + "input_layernorm.weight", vec(FAM_HIDDEN, norm_mean)))
        t.append((p + "post_attention_layernorm.weight", vec(FAM_HIDDEN, norm_mean)))
        if sandwich:
            t.append((p + "pre_feedforward_layernorm.weight", vec(FAM_HIDDEN, norm_mean)))
            t.append((p + "post_feedforward_layernorm.weight", vec(FAM_HIDDEN, norm_mean)))
    t.append(("model.norm.weight", vec(FAM_HIDDEN, norm_mean)))
    if not tied:
        t.append(("lm_head.weight", mat(vocab, FAM_HIDDEN)))

    d = dict(t)
    d["model.layers.0.self_attn.o_proj.weight"][3, :] = 0.0   # all-zero Q8_0 blocks
    up = "model.layers.1.mlp." + ("gate_up_proj" if fused else "up_proj") + ".weight"
    d[up][0, :16] = EDGE_VALUES
    return [(n, d[n]) for n, _ in t]


def save_hf_config(d: Path, cls_name: str, arch: str, **kw) -> dict:
    """config.json as transformers' save_pretrained writes it for this config class (the class
    validates the fields: rope factor lengths, layer_types, ...)."""
    import transformers
    cfg = getattr(transformers, cls_name)(architectures=[arch], **kw)
    cfg.save_pretrained(str(d))
    with open(d / "config.json", encoding="utf-8") as f:
        return json.load(f)


def sp_tokenizer_config(tokenizer_class: str, *, add_bos: bool = True, bos: str | None = "<s>",
                        eos: str = "</s>", pad: str | None = None, extra: dict | None = None,
                        **more) -> dict:
    decoder = {"0": special_entry("<unk>"), "1": special_entry("<s>"), "2": special_entry("</s>")}
    decoder.update(extra or {})
    c = {
        "add_bos_token": add_bos,
        "add_eos_token": False,
        "added_tokens_decoder": decoder,
        "bos_token": bos,
        "clean_up_tokenization_spaces": False,
        "eos_token": eos,
        "legacy": False,
        "model_max_length": 4096,
        "pad_token": pad,
        "sp_model_kwargs": {},
        "tokenizer_class": tokenizer_class,
        "unk_token": "<unk>",
    }
    c.update(more)
    return c


GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}"
    "{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim"
    " + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)


def write_gemma(d: Path, sp_model: bytes) -> None:
    """Gemma 1 (gemma-2b/7b layout): MQA (1 KV head), explicit head_dim 32 so n_head*head_dim
    (128) != hidden (32), tied, GELU-tanh. F16 weights: convert keeps F16 tensors in F16 before
    its norm +1, so the +1 is rounded in F16 (bf16 sources are upcast to F32 first)."""
    vocab, layers, n_head, n_kv, head_dim = SP_VOCAB, 2, 4, 1, 32
    save_hf_config(d, "GemmaConfig", "GemmaForCausalLM",
                   vocab_size=vocab, hidden_size=FAM_HIDDEN, intermediate_size=INTER, num_hidden_layers=layers,
                   num_attention_heads=n_head, num_key_value_heads=n_kv, head_dim=head_dim,
                   hidden_act="gelu_pytorch_tanh", max_position_embeddings=8192, rms_norm_eps=1e-6,
                   rope_theta=10000.0,
                   bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=True, dtype="float16")
    w = f16_safe(family_weights(5005, vocab, layers=layers, n_head=n_head, n_kv=n_kv, head_dim=head_dim,
                                inter=INTER, tied=True, norm_mean=0.0))
    write_safetensors(d / "model.safetensors", w, "f16")
    (d / "tokenizer.model").write_bytes(sp_model)
    write_json(d / "tokenizer_config.json", sp_tokenizer_config("GemmaTokenizer", pad="<unk>"))
    write_json(d / "special_tokens_map.json", {
        "bos_token": special_entry("<s>"), "eos_token": special_entry("</s>"),
        "pad_token": special_entry("<unk>"), "unk_token": special_entry("<unk>")})


def write_gemma2(d: Path, sp_model: bytes) -> None:
    """Gemma 2 (gemma-2-9b layout): attn/final logit soft-capping, sliding window on every
    other layer (4 layers: sliding, full, sliding, full), sandwich norms, query_pre_attn_scalar
    = head_dim (convert writes no key for it), tied, BF16, chat template."""
    vocab, layers, n_head, n_kv, head_dim = SP_VOCAB, 4, 4, 2, 16
    save_hf_config(d, "Gemma2Config", "Gemma2ForCausalLM",
                   vocab_size=vocab, hidden_size=FAM_HIDDEN, intermediate_size=INTER, num_hidden_layers=layers,
                   num_attention_heads=n_head, num_key_value_heads=n_kv, head_dim=head_dim,
                   hidden_activation="gelu_pytorch_tanh", max_position_embeddings=8192, rms_norm_eps=1e-6,
                   rope_theta=10000.0, attn_logit_softcapping=50.0, final_logit_softcapping=30.0,
                   sliding_window=4096, query_pre_attn_scalar=head_dim, cache_implementation="hybrid",
                   bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=True, dtype="bfloat16")
    w = family_weights(6006, vocab, layers=layers, n_head=n_head, n_kv=n_kv, head_dim=head_dim,
                       inter=INTER, tied=True, norm_mean=0.0, sandwich=True)
    write_safetensors(d / "model.safetensors", w, "bf16")
    (d / "tokenizer.model").write_bytes(sp_model)
    write_json(d / "tokenizer_config.json", sp_tokenizer_config(
        "GemmaTokenizer", pad="<unk>", chat_template=GEMMA_CHAT_TEMPLATE))


def write_gemma3(d: Path, sp_model: bytes) -> None:
    """Gemma 3 text (gemma-3-4b style): q/k norms, sandwich norms, 4 layers with
    sliding_window_pattern 2 (sliding, full, sliding, full), linear rope scaling factor 8 on the
    global layers (rope_theta 1e6), rope_local_base_freq 10000 for the local ones, tied, BF16."""
    vocab, layers, n_head, n_kv, head_dim = SP_VOCAB, 4, 4, 2, 16
    save_hf_config(d, "Gemma3TextConfig", "Gemma3ForCausalLM",
                   vocab_size=vocab, hidden_size=FAM_HIDDEN, intermediate_size=INTER, num_hidden_layers=layers,
                   num_attention_heads=n_head, num_key_value_heads=n_kv, head_dim=head_dim,
                   hidden_activation="gelu_pytorch_tanh", max_position_embeddings=131072, rms_norm_eps=1e-6,
                   rope_theta=1000000.0, rope_local_base_freq=10000.0,
                   rope_scaling={"factor": 8.0, "rope_type": "linear"},
                   sliding_window=1024, sliding_window_pattern=2, query_pre_attn_scalar=head_dim,
                   attn_logit_softcapping=None, final_logit_softcapping=None,
                   bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=True, dtype="bfloat16")
    w = family_weights(7007, vocab, layers=layers, n_head=n_head, n_kv=n_kv, head_dim=head_dim,
                       inter=INTER, tied=True, norm_mean=0.0, qk_norm=True, sandwich=True)
    write_safetensors(d / "model.safetensors", w, "bf16")
    (d / "tokenizer.model").write_bytes(sp_model)
    write_json(d / "tokenizer_config.json", sp_tokenizer_config("GemmaTokenizer", pad="<unk>"))


def write_qwen3(d: Path, sp_model: bytes) -> None:
    """Qwen3: q/k norms, no qkv bias, head_dim 16 != hidden/heads (8), untied, BF16.
    Like qwen2 it goes through the SentencePiece path (tokenizer.model present); vocab_size 323
    with <|endoftext|>/<|im_start|>/<|im_end|> added at 320..322 (bos 320, eos 322)."""
    vocab, layers, n_head, n_kv, head_dim = SP_VOCAB + 3, 2, 4, 2, 16
    save_hf_config(d, "Qwen3Config", "Qwen3ForCausalLM",
                   vocab_size=vocab, hidden_size=FAM_HIDDEN, intermediate_size=INTER, num_hidden_layers=layers,
                   num_attention_heads=n_head, num_key_value_heads=n_kv, head_dim=head_dim,
                   max_position_embeddings=40960, max_window_layers=layers, rms_norm_eps=1e-6,
                   rope_theta=1000000.0, attention_bias=False, use_sliding_window=False, sliding_window=None,
                   bos_token_id=320, eos_token_id=322, tie_word_embeddings=False, dtype="bfloat16")
    w = family_weights(8008, vocab, layers=layers, n_head=n_head, n_kv=n_kv, head_dim=head_dim,
                       inter=INTER, tied=False, qk_norm=True)
    write_safetensors(d / "model.safetensors", w, "bf16")
    (d / "tokenizer.model").write_bytes(sp_model)
    write_json(d / "tokenizer_config.json", {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": {"320": special_entry("<|endoftext|>"), "321": special_entry("<|im_start|>"),
                                 "322": special_entry("<|im_end|>")},
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "bos_token": None,
        "chat_template": CHATML_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 131072,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    })


PHI3_ADDED = {  # Phi-3-mini's added tokens, moved down to 320.. (32000.. there)
    "320": dict(special_entry("<|endoftext|>"), rstrip=False),
    "321": dict(special_entry("<|assistant|>"), rstrip=True),
    "322": dict(special_entry("<|placeholder1|>"), rstrip=True),
    "323": dict(special_entry("<|end|>"), rstrip=True),
    "324": dict(special_entry("<|user|>"), rstrip=True),
    # not special: Phi3's own vocab code makes it USER_DEFINED (it does not apply
    # does_token_look_special, which would make a <|...|> token CONTROL elsewhere)
    "325": dict(special_entry("<|tool|>", special=False), rstrip=True),
}


def write_phi3(d: Path, sp_model: bytes) -> None:
    """Phi-3 (Phi-3-mini-4k layout with Phi-4-mini's partial_rotary_factor 0.75): fused
    qkv_proj and gate_up_proj, rope dims int(0.75*32)/4 = 6, sliding_window 2047, untied, F32.
    vocab_size 330: 320 pieces, Phi-3's added tokens at 320..325, [PAD326..329]."""
    vocab, layers, n_head, n_kv, head_dim = SP_VOCAB + 10, 2, 4, 2, FAM_HIDDEN // 4
    save_hf_config(d, "Phi3Config", "Phi3ForCausalLM",
                   vocab_size=vocab, hidden_size=FAM_HIDDEN, intermediate_size=INTER, num_hidden_layers=layers,
                   num_attention_heads=n_head, num_key_value_heads=n_kv, hidden_act="silu",
                   max_position_embeddings=4096, original_max_position_embeddings=4096, rms_norm_eps=1e-5,
                   rope_theta=10000.0, rope_scaling=None, partial_rotary_factor=0.75, sliding_window=2047,
                   bos_token_id=1, eos_token_id=320, pad_token_id=320, tie_word_embeddings=False, dtype="float32")
    w = family_weights(9009, vocab, layers=layers, n_head=n_head, n_kv=n_kv, head_dim=head_dim,
                       inter=INTER, tied=False, fused=True)
    write_safetensors(d / "model.safetensors", w, "f32")
    (d / "tokenizer.model").write_bytes(sp_model)
    write_json(d / "tokenizer_config.json", sp_tokenizer_config(
        "LlamaTokenizer", eos="<|endoftext|>", pad="<|endoftext|>", extra=PHI3_ADDED,
        chat_template="{% for message in messages %}{{'<|' + message['role'] + '|>' + '\n' + message['content'] + '<|end|>\n' }}"
                      "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"))
    write_json(d / "generation_config.json", {"bos_token_id": 1, "eos_token_id": [320, 323], "pad_token_id": 320})


def longrope_factors(n: int) -> tuple[list[float], list[float]]:
    short = [round(1.0 + 0.05 * i, 4) for i in range(n)]
    long = [round(1.0 + 2.5 * i * i, 4) for i in range(n)]
    return short, long


def write_phi3_longrope(d: Path, sp_model: bytes) -> None:
    """Phi-4-mini layout: longrope (short/long factor lists of rope_dims/2 = 3 entries,
    original_max_position_embeddings 4096, max_position_embeddings 131072 -> convert writes
    rope_factors_long/short tensors and rope.scaling.attn_factor sqrt(1 + ln 32 / ln 4096)),
    partial_rotary_factor 0.75, tied, BF16."""
    vocab, layers, n_head, n_kv, head_dim = SP_VOCAB + 10, 2, 4, 2, FAM_HIDDEN // 4
    short, long = longrope_factors(int(0.75 * FAM_HIDDEN) // n_head // 2)
    save_hf_config(d, "Phi3Config", "Phi3ForCausalLM",
                   vocab_size=vocab, hidden_size=FAM_HIDDEN, intermediate_size=INTER, num_hidden_layers=layers,
                   num_attention_heads=n_head, num_key_value_heads=n_kv, hidden_act="silu",
                   max_position_embeddings=131072, original_max_position_embeddings=4096, rms_norm_eps=1e-5,
                   rope_theta=10000.0, partial_rotary_factor=0.75,
                   rope_scaling={"type": "longrope", "short_factor": short, "long_factor": long},
                   sliding_window=262144, bos_token_id=1, eos_token_id=320, pad_token_id=320,
                   tie_word_embeddings=True, dtype="bfloat16")
    w = family_weights(1010, vocab, layers=layers, n_head=n_head, n_kv=n_kv, head_dim=head_dim,
                       inter=INTER, tied=True, fused=True)
    write_safetensors(d / "model.safetensors", w, "bf16")
    (d / "tokenizer.model").write_bytes(sp_model)
    write_json(d / "tokenizer_config.json", sp_tokenizer_config(
        "LlamaTokenizer", eos="<|endoftext|>", pad="<|endoftext|>", extra=PHI3_ADDED))


def write_minicpm(d: Path, sp_model: bytes) -> None:
    """MiniCPM-2B layout: llama tensors (convert permutes q/k), scale_emb 12, scale_depth 1.4,
    dim_model_base 256 (-> logit_scale 32/256), GQA, tied, no rope_theta in the config (so no
    rope.freq_base key). transformers has no MiniCPM class (auto_map remote code): convert's
    AutoConfig fails and it reads config.json as plain JSON."""
    vocab, layers, n_head, n_kv = SP_VOCAB, 2, N_HEAD, N_KV
    write_json(d / "config.json", {
        "_name_or_path": "openbmb/CPM-2B",
        "architectures": ["MiniCPMForCausalLM"],
        "auto_map": {"AutoConfig": "configuration_minicpm.MiniCPMConfig",
                     "AutoModel": "modeling_minicpm.MiniCPMModel",
                     "AutoModelForCausalLM": "modeling_minicpm.MiniCPMForCausalLM"},
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_act": "silu",
        "hidden_size": FAM_HIDDEN,
        "initializer_range": 0.1,
        "intermediate_size": INTER,
        "max_position_embeddings": 2048,
        "num_attention_heads": n_head,
        "num_hidden_layers": layers,
        "num_key_value_heads": n_kv,
        "rms_norm_eps": 1e-05,
        "rope_scaling": None,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.36.0",
        "use_cache": True,
        "vocab_size": vocab,
        "scale_emb": 12,
        "dim_model_base": 256,
        "scale_depth": 1.4,
    })
    w = family_weights(1111, vocab, layers=layers, n_head=n_head, n_kv=n_kv, head_dim=FAM_HIDDEN // n_head,
                       inter=INTER, tied=True)
    write_safetensors(d / "model.safetensors", w, "bf16")
    (d / "tokenizer.model").write_bytes(sp_model)
    write_json(d / "tokenizer_config.json", sp_tokenizer_config("LlamaTokenizer", legacy=True))


def write_smollm3(d: Path, sp_model: bytes) -> None:
    """SmolLM3: llama tensors (convert permutes q/k), no_rope_layers [1, 1, 1, 0] (NoPE on every
    4th layer, as SmolLM3-3B; convert writes nothing for it, llama.cpp hard-codes the step 4),
    4 layers, rope_theta 5e6, no BOS, tied, BF16."""
    vocab, layers, n_head, n_kv = SP_VOCAB, 4, N_HEAD, N_KV
    save_hf_config(d, "SmolLM3Config", "SmolLM3ForCausalLM",
                   vocab_size=vocab, hidden_size=FAM_HIDDEN, intermediate_size=INTER, num_hidden_layers=layers,
                   num_attention_heads=n_head, num_key_value_heads=n_kv, hidden_act="silu",
                   max_position_embeddings=65536, rms_norm_eps=1e-6, rope_theta=5000000.0,
                   no_rope_layers=[1, 1, 1, 0], no_rope_layer_interval=4, use_sliding_window=False,
                   sliding_window=None, bos_token_id=None, eos_token_id=2, pad_token_id=None,
                   tie_word_embeddings=True, dtype="bfloat16")
    w = family_weights(1212, vocab, layers=layers, n_head=n_head, n_kv=n_kv, head_dim=FAM_HIDDEN // n_head,
                       inter=INTER, tied=True)
    write_safetensors(d / "model.safetensors", w, "bf16")
    (d / "tokenizer.model").write_bytes(sp_model)
    write_json(d / "tokenizer_config.json", sp_tokenizer_config(
        "PreTrainedTokenizerFast", add_bos=False, bos=None, chat_template=CHATML_TEMPLATE))


def train_bytelevel_bpe() -> dict:
    """A 300-entry byte-level BPE (GPT-2 / CodeGen pipeline) trained on CORPUS, as tokenizer.json."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    tok.post_processor = processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True)
    trainer = trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator([CORPUS] * 4, trainer)
    tok.add_special_tokens(["<|endoftext|>"])
    return json.loads(tok.to_str())


def write_phi2(d: Path, sp_model: bytes) -> None:
    """Phi-2 layout (microsoft/phi-2): parallel attention + MLP on one LayerNorm, biases on every
    projection and on lm_head, partial_rotary_factor 0.5, gelu_new, untied, F32. Intermediate
    4*hidden: llama.cpp sizes phi2's MLP from the feed_forward_length convert writes (4*n_embd)."""
    vocab, layers, n_head = 304, 2, 4
    inter = 4 * FAM_HIDDEN
    tj = train_bytelevel_bpe()
    n_tok = max(v for v in tj["model"]["vocab"].values()) + 1
    eot = n_tok  # the added <|endoftext|>
    assert tj["added_tokens"][0]["id"] == eot and eot < vocab, (eot, vocab)
    save_hf_config(d, "PhiConfig", "PhiForCausalLM",
                   vocab_size=vocab, hidden_size=FAM_HIDDEN, intermediate_size=inter, num_hidden_layers=layers,
                   num_attention_heads=n_head, num_key_value_heads=n_head, hidden_act="gelu_new",
                   max_position_embeddings=2048, layer_norm_eps=1e-5, rope_theta=10000.0,
                   partial_rotary_factor=0.5, qk_layernorm=False, bos_token_id=eot, eos_token_id=eot,
                   tie_word_embeddings=False, dtype="float32")
    rng = np.random.default_rng(1313)

    def mat(rows, cols, std=0.02):
        return (rng.standard_normal((rows, cols), dtype=np.float32) * np.float32(std)).astype(np.float32)

    def vec(n, mean=0.0, std=0.1):
        return (np.float32(mean) + rng.standard_normal(n, dtype=np.float32) * np.float32(std)).astype(np.float32)

    H = FAM_HIDDEN
    t: list[tuple[str, np.ndarray]] = [("model.embed_tokens.weight", mat(vocab, H))]
    for i in range(layers):
        p = f"model.layers.{i}."
        for n in ("q_proj", "k_proj", "v_proj", "dense"):
            t.append((p + f"self_attn.{n}.weight", mat(H, H)))
            t.append((p + f"self_attn.{n}.bias", vec(H)))
        t.append((p + "mlp.fc1.weight", mat(inter, H)))
        t.append((p + "mlp.fc1.bias", vec(inter)))
        t.append((p + "mlp.fc2.weight", mat(H, inter)))
        t.append((p + "mlp.fc2.bias", vec(H)))
        t.append((p + "input_layernorm.weight", vec(H, 1.0)))
        t.append((p + "input_layernorm.bias", vec(H)))
    t.append(("model.final_layernorm.weight", vec(H, 1.0)))
    t.append(("model.final_layernorm.bias", vec(H)))
    t.append(("lm_head.weight", mat(vocab, H)))
    t.append(("lm_head.bias", vec(vocab)))
    dd = dict(t)
    dd["model.layers.0.self_attn.dense.weight"][3, :] = 0.0   # an all-zero Q8_0 block
    dd["model.layers.1.mlp.fc1.weight"][0, :16] = EDGE_VALUES
    write_safetensors(d / "model.safetensors", t, "f32")
    write_json(d / "tokenizer.json", tj)
    write_json(d / "tokenizer_config.json", {
        "add_prefix_space": False,
        "added_tokens_decoder": {str(eot): special_entry("<|endoftext|>")},
        "bos_token": "<|endoftext|>",
        "clean_up_tokenization_spaces": True,
        "eos_token": "<|endoftext|>",
        "model_max_length": 2048,
        "tokenizer_class": "CodeGenTokenizer",
        "unk_token": "<|endoftext|>",
    })


# --------------------------------------------------------------------------------------
# what the Swift side implements against: GGUF metadata of a golden file, one key a line

def write_hparams(gguf_path: Path, out: Path, llama_cpp: Path) -> None:
    sys.path.insert(0, str(llama_cpp / "gguf-py"))
    import gguf  # llama.cpp's own gguf-py, the one convert used
    r = gguf.GGUFReader(str(gguf_path))
    VT = gguf.GGUFValueType

    def scalar(part, vtype):
        v = part.tolist()[0]
        if vtype in (VT.FLOAT32, VT.FLOAT64):
            return repr(float(v))
        if vtype == VT.BOOL:
            return "true" if v else "false"
        return str(v)

    lines = [f"# GGUF metadata of {gguf_path.name} in file order (convert_hf_to_gguf.py output);",
             "# tokenizer arrays (tokens/scores/token_type/merges) shown by length only.",
             "# format: key = value  # value type"]
    for key, f in r.fields.items():
        if key.startswith("GGUF."):
            continue
        vtype = f.types[0]
        if vtype == VT.STRING:
            val = json.dumps(bytes(f.parts[f.data[0]]).decode("utf-8"), ensure_ascii=False)
            typ = "STRING"
        elif vtype == VT.ARRAY:
            sub = f.types[1]
            n = len(f.data)
            typ = f"ARRAY[{sub.name}]"
            if key.startswith("tokenizer.") and n > 16:
                val = f"[{n} items]"
            elif sub == VT.STRING:
                items = [json.dumps(bytes(f.parts[i]).decode("utf-8"), ensure_ascii=False) for i in f.data[:16]]
                val = "[" + ", ".join(items) + (", ..." if n > 16 else "") + "]"
            else:
                items = [scalar(f.parts[i], sub) for i in f.data[:32]]
                val = "[" + ", ".join(items) + (f", ... ({n} items)" if n > 32 else "") + "]"
        else:
            val = scalar(f.parts[f.data[0]], vtype)
            typ = vtype.name
        lines.append(f"{key} = {val}  # {typ}")
    lines.append(f"# tensors in file order ({len(r.tensors)}): name type shape(ne0, ne1, ...)")
    for t in r.tensors:
        lines.append(f"# {t.name} {t.tensor_type.name} {[int(x) for x in t.shape]}")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


WRITERS = {
    "llama-tied": write_llama_tied,
    "llama-untied-sharded": write_llama_untied_sharded,
    "mistral": write_mistral,
    "qwen2": write_qwen2,
    "gemma": write_gemma,
    "gemma2": write_gemma2,
    "gemma3": write_gemma3,
    "qwen3": write_qwen3,
    "phi3": write_phi3,
    "phi3-longrope": write_phi3_longrope,
    "minicpm": write_minicpm,
    "smollm3": write_smollm3,
    "phi2": write_phi2,
}

# convert_hf_to_gguf knows byte-level BPE vocabularies by a hash of their token ids; a tiny trained
# one has none, so for these variants get_vocab_base_pre answers what it answers for the real model.
PRE_TOKENIZER_ANSWER = {"phi2": "phi-2"}


# --------------------------------------------------------------------------------------

def convert(llama_cpp: Path, model_dir: Path, outtype: str, outfile: Path, log_dir: Path) -> None:
    cmd = [sys.executable, str(llama_cpp / "convert_hf_to_gguf.py"), str(model_dir),
           "--outtype", outtype, "--outfile", str(outfile)]
    if model_dir.name in PRE_TOKENIZER_ANSWER:
        script = str(llama_cpp / "convert_hf_to_gguf.py")
        cmd = [sys.executable, "-c",
               "import runpy, sys; sys.argv = sys.argv[1:]; "
               f"sys.path.insert(0, {str(llama_cpp)!r}); sys.path.insert(1, {str(llama_cpp / 'gguf-py')!r}); "
               "import conversion.base as b; "
               f"b.TextModel.get_vocab_base_pre = lambda self, tokenizer: {PRE_TOKENIZER_ANSWER[model_dir.name]!r}; "
               "runpy.run_path(sys.argv[0], run_name='__main__')", script] + cmd[2:]
    env = dict(os.environ)
    env.pop("NO_LOCAL_GGUF", None)  # use llama.cpp's own gguf-py (convert inserts it into sys.path)
    env["TQDM_DISABLE"] = "1"
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    log = log_dir / f"{outfile.stem}.log"
    log.write_text(" ".join(cmd) + "\n\n" + r.stdout + r.stderr, encoding="utf-8")
    if r.returncode != 0:
        sys.stderr.write(r.stdout + r.stderr)
        raise SystemExit(f"convert failed for {model_dir} {outtype} (log: {log})")
    warnings = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.startswith("WARNING")]
    for ln in warnings:
        print(f"    {ln}")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def dir_size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def versions() -> dict:
    out = {"python": sys.version.split()[0], "numpy": np.__version__}
    for mod in ("sentencepiece", "torch", "transformers", "tokenizers"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001
            out[mod] = None
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--llama-cpp", type=Path, required=True, help="llama.cpp source dir (has convert_hf_to_gguf.py)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    ap.add_argument("--only", nargs="+", choices=VARIANTS)
    ap.add_argument("--skip-convert", action="store_true")
    ap.add_argument("--smollm2", type=Path, help="real checkpoint to convert as well (big; goes to --big-out)")
    ap.add_argument("--big-out", type=Path, default=Path("/tmp/edgequant-golden-big"))
    args = ap.parse_args()

    llama_cpp = args.llama_cpp.resolve()
    if not (llama_cpp / "convert_hf_to_gguf.py").is_file():
        raise SystemExit(f"no convert_hf_to_gguf.py in {llama_cpp}")
    variants = args.only or VARIANTS
    ck_root = args.out / "checkpoints"
    golden = args.out / "golden"
    logs = Path(os.environ.get("TMPDIR", "/tmp")) / "edgequant-fixture-logs"
    logs.mkdir(parents=True, exist_ok=True)
    ck_root.mkdir(parents=True, exist_ok=True)
    golden.mkdir(parents=True, exist_ok=True)

    sp_model = train_sentencepiece()
    print(f"tokenizer.model: {len(sp_model)} bytes, sha256 {hashlib.sha256(sp_model).hexdigest()[:16]}")

    for v in variants:
        d = ck_root / v
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        WRITERS[v](d, sp_model)
        print(f"checkpoint {v}: {dir_size(d)} bytes")
        if args.skip_convert:
            continue
        for t in OUTTYPES:
            out = golden / f"{v}-{t}.gguf"
            convert(llama_cpp, d, t, out, logs)
            print(f"  golden {out.name}: {out.stat().st_size} bytes")
        if v in NEW_FAMILIES:
            write_hparams(golden / f"{v}-f32.gguf", golden / f"{v}.hparams.txt", llama_cpp)

    if args.smollm2 is not None and not args.skip_convert:
        args.big_out.mkdir(parents=True, exist_ok=True)
        for t in OUTTYPES:
            out = args.big_out / f"{args.smollm2.name}-{t}.gguf"
            convert(llama_cpp, args.smollm2, t, out, logs)
            print(f"  big golden {out}: {out.stat().st_size} bytes")

    # manifest over everything currently in checkpoints/ and golden/
    files = sorted(p for p in list(ck_root.rglob("*")) + list(golden.glob("*.gguf"))
                   + list(golden.glob("*.hparams.txt")) if p.is_file())
    lines = [f"{sha256(p)}  {p.relative_to(args.out)}" for p in files]
    (golden / "SHA256SUMS").write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_json(golden / "MANIFEST.json", {
        "generator": "Fixtures/make_fixtures.py",
        "convert": str(llama_cpp / "convert_hf_to_gguf.py"),
        "convert_sha256": sha256(llama_cpp / "convert_hf_to_gguf.py"),
        "versions": versions(),
        "outtypes": OUTTYPES,
        "variants": VARIANTS,
    })
    total = dir_size(args.out) - sum(f.stat().st_size for f in args.out.glob("*.py"))
    print(f"\nsizes: checkpoints {dir_size(ck_root)} bytes, golden {dir_size(golden)} bytes, "
          f"Fixtures/ total {dir_size(args.out)} bytes (data only {total})")
    print(f"convert logs: {logs}")


if __name__ == "__main__":
    main()
