#!/usr/bin/env bash
# llama.cpp's side of the budget comparison, on one checkpoint: the unquantized reference
# (bf16 GGUF) and its base logits, a llama-imatrix of CHUNKS×512 tokens of the calibration text,
# and every llama-quantize --imatrix file type with its size and llama-perplexity KLD on the eval
# text. Results go to OUT/llama.tsv (type, bytes, mean KLD, PPL); files stay in OUT for
# Benchmarks/budgets.sh to measure ours against the same base logits.
# usage: Benchmarks/budgets-llama.sh CHECKPOINT CALIB_TEXT EVAL_TEXT LLAMA_BIN OUT [THREADS=2] [EVAL_CHUNKS=40] [CALIB_CHUNKS=20]
set -euo pipefail
CKPT=$1; CALIB=$2; EVAL=$3; LBIN=$4; OUT=$5; THREADS=${6:-2}; ECH=${7:-40}; CCH=${8:-20}
TYPES=${TYPES:-"IQ1_S IQ1_M IQ2_XXS IQ2_XS IQ2_S IQ2_M Q2_K_S Q2_K IQ3_XXS IQ3_XS Q3_K_S IQ3_S IQ3_M Q3_K_M Q3_K_L IQ4_XS IQ4_NL Q4_0 Q4_K_S Q4_1 Q4_K_M Q5_0 Q5_K_S Q5_1 Q5_K_M Q6_K Q8_0"}
cd "$(dirname "$0")/.."
swift build -c release --product edgequant >/dev/null
BIN=$(swift build -c release --show-bin-path)/edgequant
mkdir -p "$OUT"
export GGML_NO_BACKTRACE=1
[ -f "$OUT/ref.gguf" ] || "$BIN" convert "$CKPT" --type bf16 --outfile "$OUT/ref.gguf" --quiet
[ -f "$OUT/base.kld" ] || "$LBIN/llama-perplexity" -m "$OUT/ref.gguf" -f "$EVAL" -c 512 --chunks "$ECH" -t "$THREADS" \
  --kl-divergence-base "$OUT/base.kld" > "$OUT/base.log" 2>&1
[ -f "$OUT/imatrix.gguf" ] || "$LBIN/llama-imatrix" -m "$OUT/ref.gguf" -f "$CALIB" -c 512 --chunks "$CCH" -t "$THREADS" \
  -o "$OUT/imatrix.gguf" > "$OUT/imatrix.log" 2>&1
kld() { # FILE LOG -> "bytes kld ppl"
  "$LBIN/llama-perplexity" -m "$1" -f "$EVAL" -c 512 --chunks "$ECH" -t "$THREADS" \
    --kl-divergence-base "$OUT/base.kld" --kl-divergence > "$2" 2>&1
  echo "$(stat -c %s "$1") $(grep -E "Mean +KLD:" "$2" | awk '{print $(NF-2)}') $(grep -E "Mean PPL\(Q\) +:" "$2" | awk '{print $(NF-2)}')"
}
: > "$OUT/llama.tsv.part"
for t in $TYPES; do
  f="$OUT/ll-$t.gguf"
  [ -f "$f" ] || "$LBIN/llama-quantize" --imatrix "$OUT/imatrix.gguf" "$OUT/ref.gguf" "$f" "$t" "$THREADS" > "$OUT/q-$t.log" 2>&1
  echo "$t $(kld "$f" "$OUT/kld-$t.log")" | tee -a "$OUT/llama.tsv.part"
done
mv "$OUT/llama.tsv.part" "$OUT/llama.tsv"
