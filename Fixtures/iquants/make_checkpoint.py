#!/usr/bin/env python3
"""A tiny Llama checkpoint whose matrices are whole i-quant super-blocks (hidden 256, ffn 512, so
no tensor falls back to IQ4_NL as SmolLM2's 576-wide ones do), for checking every i-quant file type
against llama-quantize (scripts/test.sh; references by Fixtures/iquants/make_reference.sh).

It is generated, not committed (2.4 MB): weights come from a counter-based hash (splitmix64) turned
into Irwin-Hall normals with integer and exactly rounded float64 arithmetic only, so the bytes are
the same with any numpy on any machine. The tokenizer is Fixtures/eval/eval-llama's.
usage: make_checkpoint.py OUT_DIR [--hidden 256 --ffn 512 --layers 2]  (other sizes: for benchmarks)"""
import argparse
import json
import shutil
from pathlib import Path

import numpy as np

HIDDEN, FFN, LAYERS, HEADS, KV_HEADS, VOCAB = 256, 512, 2, 4, 1, 320
M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def normals(seed: int, n: int) -> np.ndarray:
    """n ~N(0, 1) values: the sum of four uniforms (53-bit fractions, exact in float64), centred
    and scaled by sqrt(3) — exact arithmetic up to the final float32 rounding."""
    idx = np.arange(4 * n, dtype=np.uint64) + np.uint64(seed) * np.uint64(1 << 40)
    u = (splitmix64(idx) >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
    s = u.reshape(n, 4).sum(axis=1) - 2.0
    return (s * 1.7320508075688772).astype(np.float32)


def bf16_bits(a: np.ndarray) -> np.ndarray:
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def main(out: Path, HIDDEN=HIDDEN, FFN=FFN, LAYERS=LAYERS) -> None:
    HEAD_DIM = HIDDEN // HEADS
    out.mkdir(parents=True, exist_ok=True)
    seed = [0]

    def mat(rows, cols, std=0.05):
        seed[0] += 1
        return normals(seed[0], rows * cols).reshape(rows, cols) * np.float32(std)

    def vec(n, mean=1.0, std=0.1):
        seed[0] += 1
        return np.float32(mean) + normals(seed[0], n) * np.float32(std)

    t = [("model.embed_tokens.weight", mat(VOCAB, HIDDEN))]
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        t += [(p + "input_layernorm.weight", vec(HIDDEN)),
              (p + "self_attn.q_proj.weight", mat(HEADS * HEAD_DIM, HIDDEN)),
              (p + "self_attn.k_proj.weight", mat(KV_HEADS * HEAD_DIM, HIDDEN)),
              (p + "self_attn.v_proj.weight", mat(KV_HEADS * HEAD_DIM, HIDDEN)),
              (p + "self_attn.o_proj.weight", mat(HIDDEN, HEADS * HEAD_DIM)),
              (p + "post_attention_layernorm.weight", vec(HIDDEN)),
              (p + "mlp.gate_proj.weight", mat(FFN, HIDDEN)),
              (p + "mlp.up_proj.weight", mat(FFN, HIDDEN)),
              (p + "mlp.down_proj.weight", mat(HIDDEN, FFN))]
    t += [("model.norm.weight", vec(HIDDEN)), ("lm_head.weight", mat(VOCAB, HIDDEN))]
    header, blobs, off = {}, [], 0
    for name, a in t:
        b = bf16_bits(a).tobytes()
        header[name] = {"dtype": "BF16", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {"format": "pt"}
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(out / "model.safetensors", "wb") as f:
        f.write(len(hj).to_bytes(8, "little"))
        f.write(hj)
        for b in blobs:
            f.write(b)
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": HIDDEN,
              "intermediate_size": FFN, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
              "num_key_value_heads": KV_HEADS, "rms_norm_eps": 1e-05, "vocab_size": VOCAB,
              "max_position_embeddings": 256, "rope_theta": 10000.0, "tie_word_embeddings": False,
              "torch_dtype": "bfloat16"}
    (out / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    src = Path(__file__).resolve().parent.parent / "eval" / "eval-llama"
    for f in ("tokenizer.model", "tokenizer_config.json"):
        shutil.copy(src / f, out / f)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--hidden", type=int, default=HIDDEN)
    ap.add_argument("--ffn", type=int, default=FFN)
    ap.add_argument("--layers", type=int, default=LAYERS)
    a = ap.parse_args()
    main(Path(a.out), a.hidden, a.ffn, a.layers)
