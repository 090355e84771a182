#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, made from Fixtures/ at run time (nothing large is committed):
fuzz.sh calls `python3 Fuzz/seeds.py OUTDIR`, which writes OUTDIR/<target>/<seed>. Multi-file targets
(checkpoint, tokenizer) get Fuzz/Targets/Support.swift's Container: parts framed by `\\0EQF:<name>\\n`."""
import glob, os, re, sys

MARKER = b"\0EQF:"
CHECKPOINT_FILES = ["config.json", "model.safetensors", "model.safetensors.index.json",
                    "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                    "pytorch_model.bin", "pytorch_model.bin.index.json",
                    "pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin",
                    "tokenizer.json", "tokenizer.model", "tokenizer_config.json", "added_tokens.json",
                    "special_tokens_map.json", "generation_config.json", "README.md", "chat_template.jinja"]
TOKENIZER_FILES = ["tokenizer.json", "tokenizer.model", "tokenizer_config.json", "added_tokens.json",
                   "config.json", "special_tokens_map.json"]
TEXT = "Hello world! 123 don't ça va? 日本語 <s></s> <|endoftext|>\n\tend".encode()


def read(p):
    with open(p, "rb") as f:
        return f.read()


def pack(parts):
    return b"".join(MARKER + n.encode() + b"\n" + d for n, d in parts)


def main(out):
    seeds = {t: {} for t in ["gguf", "model", "safetensors", "torch", "checkpoint", "imatrix", "tokenizer", "manifest"]}
    for p in sorted(glob.glob("Fixtures/golden/*-q8_0.gguf")) + ["Fixtures/golden/llama-tied-f16.gguf",
            "Fixtures/golden/qwen2-bf16.gguf", "Fixtures/calibration/tiny-llama.gguf"]:
        seeds["model"][os.path.basename(p)] = read(p)
        seeds["gguf"][os.path.basename(p)] = read(p)
    os.makedirs(out, exist_ok=True)
    try:  # a 1-layer model of a few KB: thousands of forward passes a second (needs gguf-py)
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import make_model_regressions
        make_model_regressions.model(f"{out}/tiny.gguf")
        seeds["model"]["tiny.gguf"] = read(f"{out}/tiny.gguf")
        os.remove(f"{out}/tiny.gguf")
    except ImportError:
        pass
    for p in glob.glob("Fixtures/tokenizer/*/vocab.gguf") + ["Fixtures/calibration/c12.imatrix.gguf"]:
        seeds["gguf"][p.split("/")[-2] + "-" + os.path.basename(p)] = read(p)
    for p in sorted(glob.glob("Fixtures/checkpoints/*/*.safetensors")):
        seeds["safetensors"][p.split("/")[-2] + "-" + os.path.basename(p)] = read(p)
    for p in sorted(glob.glob("Fixtures/torch/*.bin") + glob.glob("Fixtures/torch/*/*.bin") + glob.glob("Fixtures/checkpoints/*/*.bin")):
        seeds["torch"][p.split("/")[-2] + "-" + os.path.basename(p)] = read(p)
    for p in sorted(glob.glob("Fixtures/calibration/*.imatrix.*")):
        seeds["imatrix"][os.path.basename(p)] = read(p)
    for d in sorted(glob.glob("Fixtures/checkpoints/*/")):
        name = d.rstrip("/").split("/")[-1]
        parts = [(n, read(d + n)) for n in CHECKPOINT_FILES if os.path.exists(d + n)]
        seeds["checkpoint"][name] = pack(parts)
        tparts = [(n, read(d + n)) for n in TOKENIZER_FILES if os.path.exists(d + n)]
        seeds["tokenizer"][name] = pack(tparts + [("text", TEXT)])
        if os.path.exists(d + "tokenizer.json"):  # the same directory read through tokenizer.json only
            seeds["tokenizer"][name + "-json"] = pack([p for p in tparts if p[0] != "tokenizer.model"] + [("text", TEXT)])
    for d in sorted(glob.glob("Fixtures/tokenizer/*/")):
        name = d.rstrip("/").split("/")[-1]
        if not os.path.exists(d + "tokenizer.json"):
            continue
        parts = [(n, read(d + n)) for n in TOKENIZER_FILES if os.path.exists(d + n)]
        seeds["tokenizer"][name] = pack(parts + [("text", TEXT)])
        if os.path.exists(d + "vocab.gguf"):
            seeds["tokenizer"][name + "-gguf"] = pack([("vocab.gguf", read(d + "vocab.gguf")), ("text", TEXT)])
    seeds["manifest"]["example.yaml"] = read("examples/manifest.yaml")
    # The manifests the Batch tests write, taken from their Swift multi-line string literals.
    for p in sorted(glob.glob("Tests/BatchTests/*.swift")):
        for i, m in enumerate(re.findall(r'"""\n(.*?)\n\s*"""', open(p).read(), re.S)):
            if "models" in m or "output" in m:
                seeds["manifest"][f"{os.path.basename(p)[:-6]}-{i}.yaml"] = "\n".join(
                    l[12:] if l.startswith(" " * 12) else l.lstrip() for l in m.split("\n")).encode()
    for t, files in seeds.items():
        os.makedirs(f"{out}/{t}", exist_ok=True)
        for n, d in files.items():
            with open(f"{out}/{t}/{n}", "wb") as f:
                f.write(d)


if __name__ == "__main__":
    main(sys.argv[1])
