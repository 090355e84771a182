#!/usr/bin/env python3
"""Build the Tokenizer module's fixtures and record the token ids llama.cpp and Hugging Face
`tokenizers` produce for them.

What it writes (relative to this directory):

  cases.json                 the input texts (tricky strings: digit runs, contractions, scripts,
                             emoji, CJK, whitespace runs, special tokens, the convert_hf_to_gguf
                             chktxt, long runs, ...)
  wiki-eval-20k.txt          NOT written here: the first 20,000 bytes of the English evaluation
                             corpus of /work/shared/tools/wiki-corpus.py (Wikipedia summaries,
                             CC BY-SA), copied as is
  qwen2-style/               a small byte-level BPE tokenizer (1200 tokens) trained here on the
                             calibration corpus with Qwen2's pipeline (NFC + Qwen2 split regex +
                             ByteLevel), <|endoftext|>/<|im_start|>/<|im_end|> special and a
                             non-special added token <think>: tokenizer.json, tokenizer_config.json,
                             and vocab.gguf (the same vocabulary as llama.cpp reads it:
                             tokenizer.ggml.pre = qwen2, no tensors)
  llama3-style/              the same with Llama 3's pipeline (llama3 split regex, ignore_merges,
                             <|begin_of_text|> added by the post-processor, pre = llama-bpe)
  expected/<model>.json      per model and text (wiki-eval-20k only for one of the three SPM fixtures,
                             which share their tokenizer.model): "llama" = llama-tokenize ids (parse special, BOS
                             as the model asks), "llama_noparse" = with --no-parse-special (what
                             llama-perplexity does), "hf" = tokenizers' encode(text).ids where the
                             model has a tokenizer.json ("hf_checked"); the last two are written only
                             where they differ from "llama"
  expected/smollm2.json      the same for the real SmolLM2-135M-Instruct GGUF (--smollm2-gguf) and its
                             tokenizer.json (--smollm2-dir), plus the count and SHA-256 of the ids
                             of the whole wiki-eval.txt (--wiki-eval) from llama-tokenize (with and
                             without parse special) and tokenizers: checked by the tokenizer-check
                             executable from scripts/test.sh, not by swift test, since the SmolLM2
                             vocabulary is not in the repository

Both vocabularies have a token " zyzzyva" that no merge produces, which only ignore_merges
tokenizers (llama3) emit whole.

Usage:
  make_tokenizer_fixtures.py [--llama-tokenize BIN] [--smollm2-gguf PATH] [--smollm2-dir DIR]
                             [--wiki-eval PATH] [--calib PATH]
Needs: tokenizers, gguf (gguf-py), llama.cpp's llama-tokenize. Deterministic.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parent

QWEN2_RE = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
LLAMA3_RE = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"

CHKTXT = (
    "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ (multiple emojis concatenated) ✅ 🦙🦙 3 33 333 3333 33333 333333 3333333 "
    "33333333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ ------======= нещо на Български ''''''```````\"\"\"\"......!!!!!!?????? "
    "I've been 'told he's there, 'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL"
)

CASES = [
    ("empty", ""),
    ("hello", "Hello world"),
    ("hello-space", " Hello world"),
    ("hello-caps", "HELLO World! hello,world."),
    ("chktxt", CHKTXT),
    ("digits", "1234567890 3.14159 1,000,000 12 345 6789 a1b22c333d4444 007"),
    ("digit-run", "31415926535897932384626433832795028841971"),
    ("unicode-digits", "\u0663\u0664\u0665 \u2460\u2461\u2462 \u216b \u00bd \u00b2\u00b3 \uff11\uff12\uff13"),
    ("contractions", "I'm you're it's we've they'll she'd can't DON'T I'M YOU'RE It'S We'Ve a'lL 'S 'RE 'd"),
    ("apostrophes", "'''' ' 's' ''s x'y '  'tis rock 'n' roll \u2019s \u2018quoted\u2019"),
    ("latin", "caf\u00e9 na\u00efve Z\u00fcrich Stra\u00dfe \u00c5ngstr\u00f6m \u0141\u00f3d\u017a \u0130stanbul"),
    ("greek-cyrillic", "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac \u0440\u0443\u0441\u0441\u043a\u0438\u0439 \u0442\u0435\u043a\u0441\u0442 \u0411\u044a\u043b\u0433\u0430\u0440\u0441\u043a\u0438"),
    ("rtl", "\u05e2\u05d1\u05e8\u05d9\u05ea \u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u0641\u0627\u0631\u0633\u06cc"),
    ("indic-thai", "\u0939\u093f\u0928\u094d\u0926\u0940 \u0e44\u0e17\u0e22 \u1780\u17b6\u1793\u17cb\u178f\u17c2"),
    ("cjk", "\u6211\u60f3\u5728apple\u5de5\u4f5c1314151\u5929\uff5e \u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8 \ud55c\uad6d\uc5b4 \u3002\u3001"),
    ("emoji", "\U0001f680 \U0001f636\u200d\U0001f32b\ufe0f \U0001f44d\U0001f3fd \U0001f999\U0001f999 \u2705 \U0001f1fa\U0001f1f8 \u2764\ufe0f"),
    ("combining", "e\u0301 \u00e9 A\u030a \u00c5 n\u0303o \u1e9b\u0323 \uac00 \u1100\u1161"),
    ("spaces", "a b  c   d    e     f"),
    ("space-runs", "   leading and trailing   "),
    ("only-spaces", "      "),
    ("newlines", "line1\nline2\n\nline3\n\n\n"),
    ("crlf", "a\r\nb\r\n\r\nc\rd"),
    ("tabs", "\tx\t\ty \t z\t"),
    ("mixed-ws", " \n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n"),
    ("ws-before-newline", "x  \ny \t\n  z"),
    ("unicode-ws", "a\u00a0b\u3000c\u2009d\u2028e\u0085f\u202fg\u1680h"),
    ("control", "\u0000\u0001\u0007 \u007f \u0080\u009f \u200b\u200c\u200d \ufeff"),
    ("private-unassigned", "\ue000\uf8ff \U000e0001 \U0010fffd \u0378"),
    ("code", "def f(x):\n    return x**2  # comment\n\nif __name__ == '__main__':\n\tprint(f(3))\n"),
    ("markup", "<html><body class=\"a\">&amp; &lt;tag&gt;</body></html> [link](http://x.y/z?q=1&r=2)"),
    ("punct", "Hello!!! What?? ...wait... --dash-- (parens) [brackets] {braces} @user #tag $5 % ^ & * _ + = | \\ / ~ `"),
    ("special-chat", "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n"),
    ("special-eot", "end<|endoftext|>start <|endoftext|> x"),
    ("special-llama3", "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"),
    ("special-spm", "<s>Hello</s> <unk> x</s>"),
    ("user-defined", "<think>hmm</think> and <think>"),
    ("special-partial", "<|im_start <|im_end| <| |> <|endoftext"),
    ("ignore-merges", " zyzzyva zyzzyva Zyzzyva"),
    ("long-word", "a" * 300 + " " + "ab" * 150),
    ("long-punct", "-" * 200 + "=" * 57),
    ("long-spaces", " " * 500 + "x"),
    ("long-digits", "9" * 301),
    ("mixed-scripts", "abc\u0430\u0431\u0432\u03b1\u03b2\u03b3\u4e00\u4e8c\u4e09123\u0661\u0662"),
    ("letters-numbers", "abc123def 1st 2nd 3rd 4th H2O CO2 x86_64 arm64e"),
]


def train(kind: str, calib: str, out: Path) -> None:
    """Train a small byte-level BPE tokenizer with Qwen2's or Llama 3's pipeline; write tokenizer.json,
    tokenizer_config.json and vocab.gguf into `out`."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    llama3 = kind == "llama3"
    specials = (["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
                if llama3 else ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    tok = Tokenizer(models.BPE(ignore_merges=llama3))
    if not llama3:
        tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_RE if llama3 else QWEN2_RE), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1200, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train([calib], trainer)
    j = json.loads(tok.to_str())
    vocab = j["model"]["vocab"]
    # A token no merge produces: only ignore_merges vocabularies emit it whole.
    vocab["\u0120zyzzyva"] = len(vocab)
    j["added_tokens"].append({"id": len(vocab), "content": "<think>", "single_word": False, "lstrip": False,
                              "rstrip": False, "normalized": False, "special": False})
    if llama3:
        j["post_processor"] = {
            "type": "Sequence", "processors": [
                {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
                {"type": "TemplateProcessing",
                 "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                 "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                          {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                 "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [0], "tokens": ["<|begin_of_text|>"]}}},
            ]}
    else:
        j["post_processor"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    out.mkdir(parents=True, exist_ok=True)
    (out / "tokenizer.json").write_text(json.dumps(j, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    config = ({"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "add_bos_token": True,
               "clean_up_tokenization_spaces": True, "tokenizer_class": "PreTrainedTokenizerFast"}
              if llama3 else
              {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "add_prefix_space": False,
               "clean_up_tokenization_spaces": False, "tokenizer_class": "Qwen2Tokenizer"})
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    write_gguf(j, out / "vocab.gguf", pre="llama-bpe" if llama3 else "qwen2", llama3=llama3)


def write_gguf(j: dict, path: Path, pre: str, llama3: bool) -> None:
    """The vocabulary as convert_hf_to_gguf.py would store it (token types: added special → control,
    added non-special → user-defined), in a GGUF without tensors (llama-tokenize loads vocab only)."""
    import gguf

    vocab = j["model"]["vocab"]
    n = max(list(vocab.values()) + [a["id"] for a in j["added_tokens"]]) + 1
    tokens = [f"[PAD{i}]" for i in range(n)]
    types = [gguf.TokenType.UNUSED] * n
    for t, i in vocab.items():
        tokens[i], types[i] = t, gguf.TokenType.NORMAL
    for a in j["added_tokens"]:
        tokens[a["id"]] = a["content"]
        types[a["id"]] = gguf.TokenType.CONTROL if a["special"] else gguf.TokenType.USER_DEFINED
    merges = [m if isinstance(m, str) else " ".join(m) for m in j["model"]["merges"]]
    w = gguf.GGUFWriter(str(path), "llama" if llama3 else "qwen2")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    if llama3:
        w.add_bos_token_id(tokens.index("<|begin_of_text|>"))
        w.add_eos_token_id(tokens.index("<|eot_id|>"))
        w.add_add_bos_token(True)
    else:
        w.add_eos_token_id(tokens.index("<|im_end|>"))
        w.add_pad_token_id(tokens.index("<|endoftext|>"))
        w.add_add_bos_token(False)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def llama_tokenize(binary: str, gguf_path: str, text: str, parse_special: bool) -> list[int]:
    with tempfile.NamedTemporaryFile("wb", suffix=".txt", delete=False) as f:
        f.write(text.encode("utf-8"))
        name = f.name
    try:
        args = [binary, "-m", gguf_path, "-f", name, "--ids", "--log-disable", "--no-escape"]
        if not parse_special:
            args.append("--no-parse-special")
        r = subprocess.run(args, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"llama-tokenize failed on {gguf_path}: {r.stderr[-2000:]}")
        lines = [l for l in r.stdout.splitlines() if l.startswith("[")]
        return json.loads(lines[-1])
    finally:
        os.unlink(name)


def record(name: str, gguf_path: str, tokenizer_json: str | None, texts: list[tuple[str, str]], binary: str,
           source: str) -> dict:
    hf = None
    if tokenizer_json:
        from tokenizers import Tokenizer
        hf = Tokenizer.from_file(tokenizer_json)
    cases = {}
    for cname, text in texts:
        c = {"llama": llama_tokenize(binary, gguf_path, text, True),
             "llama_noparse": llama_tokenize(binary, gguf_path, text, False)}
        if hf is not None:
            c["hf"] = hf.encode(text).ids
        # Only what differs from "llama" is written (a missing key means: the same ids).
        if c["llama_noparse"] == c["llama"]:
            del c["llama_noparse"]
        if "hf" in c and c["hf"] == c["llama"]:
            del c["hf"]
        cases[cname] = c
    if hf is not None:
        differ = [k for k, c in cases.items() if "hf" in c]
        print(f"{name}: {len(cases)} texts, tokenizers differs from llama.cpp on {differ}", file=sys.stderr)
    return {"model": name, "source": source, "hf_checked": hf is not None, "cases": cases}


def dump(obj: dict, path: Path) -> None:
    # One case per line block, ids on one line: small and diffable.
    lines = ["{", f' "model": {json.dumps(obj["model"])},', f' "source": {json.dumps(obj["source"])},',
             f' "hf_checked": {json.dumps(obj["hf_checked"])},']
    for k in ("wiki_eval",):
        if k in obj:
            lines.append(f' "{k}": {json.dumps(obj[k])},')
    lines.append(' "cases": {')
    items = list(obj["cases"].items())
    for i, (cname, c) in enumerate(items):
        lines.append(f"  {json.dumps(cname)}: {{")
        keys = list(c.keys())
        for j, k in enumerate(keys):
            lines.append(f"   {json.dumps(k)}: {json.dumps(c[k], separators=(',', ':'))}" + ("," if j + 1 < len(keys) else ""))
        lines.append("  }" + ("," if i + 1 < len(items) else ""))
    lines.append(" }")
    lines.append("}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llama-tokenize", default="/work/ref/llama/bin/llama-tokenize")
    ap.add_argument("--smollm2-gguf", default="/tmp/edgequant-golden-big/smol-f32.gguf")
    ap.add_argument("--smollm2-dir", default="/work/data/smol")
    ap.add_argument("--wiki-eval", default="/work/data/wiki/wiki-eval.txt")
    ap.add_argument("--calib", default="/work/data/wiki/wiki-calib.txt")
    ap.add_argument("--skip-train", action="store_true", help="keep the trained tokenizers, only re-record ids")
    a = ap.parse_args()

    (HERE / "cases.json").write_text(
        json.dumps([{"name": n, "text": t} for n, t in CASES], ensure_ascii=True, indent=1) + "\n", encoding="utf-8")
    wiki20k = (HERE / "wiki-eval-20k.txt").read_bytes().decode("utf-8")
    texts = CASES + [("wiki-eval-20k", wiki20k)]
    if not a.skip_train:
        train("qwen2", a.calib, HERE / "qwen2-style")
        train("llama3", a.calib, HERE / "llama3-style")
    exp = HERE / "expected"
    exp.mkdir(exist_ok=True)
    for style in ("qwen2-style", "llama3-style"):
        d = HERE / style
        dump(record(style, str(d / "vocab.gguf"), str(d / "tokenizer.json"), texts, a.llama_tokenize,
                    f"Fixtures/tokenizer/{style}"), exp / f"{style}.json")
    for variant in ("llama-tied", "mistral", "qwen2"):
        # The three share one 320-piece tokenizer.model: the long text is recorded for the first only.
        tj = FIXTURES / "checkpoints" / variant / "tokenizer.json"
        dump(record(f"spm-{variant}", str(FIXTURES / "golden" / f"{variant}-f32.gguf"), str(tj) if tj.exists() else None,
                    texts if variant == "llama-tied" else CASES, a.llama_tokenize, f"Fixtures/golden/{variant}-f32.gguf"),
             exp / f"spm-{variant}.json")
    if a.smollm2_gguf and os.path.exists(a.smollm2_gguf):
        obj = record("smollm2", a.smollm2_gguf, os.path.join(a.smollm2_dir, "tokenizer.json"), texts, a.llama_tokenize,
                     "SmolLM2-135M-Instruct f32 GGUF (convert_hf_to_gguf.py; edgequant convert writes the same file)")
        wiki = Path(a.wiki_eval).read_bytes().decode("utf-8")
        from tokenizers import Tokenizer
        hf_ids = Tokenizer.from_file(os.path.join(a.smollm2_dir, "tokenizer.json")).encode(wiki).ids
        for mode in ("llama_noparse", "llama", "hf"):
            ids = hf_ids if mode == "hf" else llama_tokenize(a.llama_tokenize, a.smollm2_gguf, wiki, mode == "llama")
            blob = b"".join(struct.pack("<i", i) for i in ids)
            obj.setdefault("wiki_eval", {})[mode] = {"bytes": len(wiki.encode("utf-8")),
                                                      "sha256_text": hashlib.sha256(wiki.encode("utf-8")).hexdigest(),
                                                      "count": len(ids), "sha256_ids_int32le": hashlib.sha256(blob).hexdigest()}
        dump(obj, exp / "smollm2.json")
    else:
        print(f"no SmolLM2 GGUF at {a.smollm2_gguf}: expected/smollm2.json not refreshed", file=sys.stderr)


if __name__ == "__main__":
    main()
