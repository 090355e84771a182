#!/usr/bin/env bash
# Every command on every family (issue 13): for each tiny forward-pass checkpoint in Fixtures/eval
# (llama, qwen2, gemma, gemma2, gemma3, qwen3, phi2, phi3, minicpm, smollm3; seeded weights whose
# log-probs llama-perplexity recorded), run convert (f32, a llama-quantize type, --imatrix,
# --calibrate with GPTQ, --target-bpw), quantize, inspect, imatrix, perplexity with a reference,
# generate, compare and batch, and check what each prints: exit 0, finite numbers, the files
# llama.cpp would load. Byte-exactness and llama.cpp agreement are the golden and forward tests'.
# usage: scripts/families-test.sh EDGEQUANT_BIN CALIB_TEXT [WORK]
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/python-env.sh "${EDGEQUANT_VENV:-.build/venv}"
BIN=$1; CALIB=$2; WORK=${3:-.build/families}
EVAL=Fixtures/tokenizer/wiki-eval-20k.txt
rm -rf "$WORK"; mkdir -p "$WORK"; WORK=$(cd "$WORK" && pwd)
pass=0; fail=0
for dir in Fixtures/eval/eval-*/; do
  fam=$(basename "$dir"); fam=${fam#eval-}; W="$WORK/$fam"; mkdir -p "$W"
  errs=()
  run() { local what=$1; shift; "$@" > "$W/out.txt" 2> "$W/err.txt" || errs+=("$what: $(tail -1 "$W/err.txt")"); }
  run "convert f32" "$BIN" convert "$dir" --type f32 --outfile "$W/f32.gguf" --quiet
  run "quantize q4_k_m" "$BIN" quantize "$W/f32.gguf" "$W/q4_k_m.gguf" q4_k_m --quiet
  run "inspect" "$BIN" inspect "$W/q4_k_m.gguf" --json
  "$PY" -c "import json,sys; d=json.load(open('$W/out.txt')); assert d" 2>/dev/null || errs+=("inspect: no JSON")
  run "imatrix" "$BIN" imatrix "$W/f32.gguf" --text "$CALIB" --ctx 32 --chunks 4 --threads 2 -o "$W/imatrix.gguf"
  run "convert --imatrix" "$BIN" convert "$dir" --type q4_0 --imatrix "$W/imatrix.gguf" --outfile "$W/q4_0-imx.gguf" --quiet
  run "convert --calibrate" "$BIN" convert "$dir" --type q4_0 --calibrate "$CALIB" --calib-ctx 32 --calib-chunks 4 \
    --outfile "$W/q4_0-gptq.gguf" --quiet
  run "convert --target-bpw" "$BIN" convert "$dir" --type q4_k_m --calibrate "$CALIB" --calib-ctx 32 --calib-chunks 4 \
    --target-bpw 6 --outfile "$W/bpw6.gguf" --quiet
  run "perplexity f32" "$BIN" perplexity "$W/f32.gguf" --text "$EVAL" --ctx 32 --chunks 4 --threads 2 --save-logits "$W/base.logits" --json
  run "perplexity --reference" "$BIN" perplexity "$W/q4_0-gptq.gguf" --text "$EVAL" --ctx 32 --chunks 4 --threads 2 \
    --reference-logits "$W/base.logits" --json
  "$PY" -c "
import json, math; d = json.load(open('$W/out.txt'))
assert math.isfinite(d['ppl']) and d['ppl'] > 1 and 0 <= d['kld_mean'] < 5, d" 2>/dev/null || errs+=("perplexity --reference: bad numbers")
  run "generate" "$BIN" generate "$W/q4_k_m.gguf" --prompt "The river" -n 8 --json
  "$PY" -c "import json; d = json.load(open('$W/out.txt')); assert 'text' in d" 2>/dev/null || errs+=("generate: no text")
  run "compare" "$BIN" compare "$dir" --types q8_0,q4_0 --text "$EVAL" --ctx 32 --chunks 4 --threads 2 --quiet --json
  "$PY" -c "
import json; rows = json.load(open('$W/out.txt'))
assert [r['type'] for r in rows][1:] == ['q8_0', 'q4_0'] and all('error' not in r for r in rows), rows" 2>/dev/null || errs+=("compare: bad table")
  printf 'output: %s\neval: {text: %s, ctx: 32, chunks: 4}\nthreads: 2\ntypes: [q8_0, q4_0]\nmodels:\n  - path: %s\n' \
    "$W/batch" "$PWD/$EVAL" "$PWD/$dir" > "$W/manifest.yaml"
  run "batch" "$BIN" batch "$W/manifest.yaml" --quiet
  [ -f "$W/batch/report.json" ] || errs+=("batch: no report.json")
  if [ ${#errs[@]} -eq 0 ]; then echo "family $fam: every command ran"; pass=$((pass+1))
  else echo "family $fam: FAILED: ${errs[*]}"; fail=$((fail+1)); fi
done
rm -rf "$WORK"
echo "families: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -eq 10 ]
