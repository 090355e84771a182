#!/usr/bin/env python3
"""Records llama-tokenize's ids for the real Gemma 3 270M vocabulary (262144 SentencePiece pieces)
into expected/gemma3.json, for the same cases and 20k wiki text as the other expected files.

usage: record_gemma3.py GEMMA3_F32_GGUF LLAMA_TOKENIZE [CHECKPOINT_DIR]
The GGUF is `edgequant convert` (= convert_hf_to_gguf) of scripts/gemma3-checkpoint.py's output;
CHECKPOINT_DIR/tokenizer.json, when given, is checked with HF tokenizers too.
"""
import os, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_tokenizer_fixtures as m

gguf_path, binary = sys.argv[1], sys.argv[2]
tj = os.path.join(sys.argv[3], "tokenizer.json") if len(sys.argv) > 3 else None
wiki20k = (m.HERE / "wiki-eval-20k.txt").read_bytes().decode("utf-8")
obj = m.record("gemma3", gguf_path, tj, m.CASES + [("wiki-eval-20k", wiki20k)], binary,
               "Gemma 3 270M f32 GGUF of scripts/gemma3-checkpoint.py's checkpoint (convert_hf_to_gguf.py; edgequant convert writes the same file)")
m.dump(obj, m.HERE / "expected" / "gemma3.json")
