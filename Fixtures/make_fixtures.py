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
VARIANTS = ["llama-tied", "llama-untied-sharded", "mistral", "qwen2"]

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


WRITERS = {
    "llama-tied": write_llama_tied,
    "llama-untied-sharded": write_llama_untied_sharded,
    "mistral": write_mistral,
    "qwen2": write_qwen2,
}


# --------------------------------------------------------------------------------------

def convert(llama_cpp: Path, model_dir: Path, outtype: str, outfile: Path, log_dir: Path) -> None:
    cmd = [sys.executable, str(llama_cpp / "convert_hf_to_gguf.py"), str(model_dir),
           "--outtype", outtype, "--outfile", str(outfile)]
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

    if args.smollm2 is not None and not args.skip_convert:
        args.big_out.mkdir(parents=True, exist_ok=True)
        for t in OUTTYPES:
            out = args.big_out / f"{args.smollm2.name}-{t}.gguf"
            convert(llama_cpp, args.smollm2, t, out, logs)
            print(f"  big golden {out}: {out.stat().st_size} bytes")

    # manifest over everything currently in checkpoints/ and golden/
    files = sorted(p for p in list(ck_root.rglob("*")) + list(golden.glob("*.gguf")) if p.is_file())
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
