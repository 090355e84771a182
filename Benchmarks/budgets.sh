#!/usr/bin/env bash
# Our side of the budget comparison, after Benchmarks/budgets-llama.sh filled OUT:
#  1. at the size of each llama-quantize --imatrix file in SIZES_OF, `convert --target-size` (no
#     --type; one sensitivity file serves every budget) — its mean KLD by llama-perplexity on the
#     same base logits beside the best llama-quantize file of any type that fits;
#  2. at each file type in FIXED, `convert --type T --calibrate` beside llama-quantize --imatrix T.
# Every figure is llama-perplexity's --kl-divergence on EVAL_CHUNKS chunks of the eval text.
# usage: Benchmarks/budgets.sh CHECKPOINT CALIB_TEXT EVAL_TEXT OUT LLAMA_BIN [THREADS=2] [EVAL_CHUNKS=40]
#   (the same text, OUT and chunks as budgets-llama.sh was given)
set -euo pipefail
CKPT=$1; CALIB=$2; EVAL=$3; OUT=$4; LBIN=$5; THREADS=${6:-2}; ECH=${7:-40}
SIZES_OF=${SIZES_OF:-"Q2_K IQ3_XXS Q3_K_M IQ4_XS Q4_K_M Q5_K_M"}
FIXED=${FIXED:-"Q4_0 Q4_K_M Q3_K_M Q2_K IQ4_NL"}
cd "$(dirname "$0")/.."
swift build -c release --product edgequant >/dev/null
BIN=$(swift build -c release --show-bin-path)/edgequant
[ -f "$OUT/llama.tsv" ] || { echo "run Benchmarks/budgets-llama.sh first (no $OUT/llama.tsv)" >&2; exit 1; }
export GGML_NO_BACKTRACE=1
kld() { # FILE LOG -> "kld ppl"
  "$LBIN/llama-perplexity" -m "$1" -f "$EVAL" -c 512 --chunks "$ECH" -t "$THREADS" \
    --kl-divergence-base "$OUT/base.kld" --kl-divergence > "$2" 2>&1
  echo "$(grep -E "Mean +KLD:" "$2" | awk '{print $(NF-2)}') $(grep -E "Mean PPL\(Q\) +:" "$2" | awk '{print $(NF-2)}')"
}

echo "## budgets: edgequant --target-size at each llama-quantize --imatrix file's size"
printf "| size of | bytes | edgequant bytes | edgequant KLD | best llama-quantize that fits | its bytes | its KLD | KLD lower | plan CPU s |\n|---|---|---|---|---|---|---|---|---|\n"
for t in $SIZES_OF; do
  size=$(awk -v t="$t" '$1==t {print $2}' "$OUT/llama.tsv")
  f="$OUT/eq-size-$t.gguf"
  if [ ! -f "$f" ]; then
    /usr/bin/time -f "cpu %U %S %M" -o "$OUT/eq-size-$t.time" "$BIN" convert "$CKPT" --target-size "$size" --calibrate "$CALIB" \
      --sensitivity-file "$OUT/sensitivity.json" --threads "$THREADS" --outfile "$f" > "$OUT/eq-size-$t.log" 2>&1
  fi
  read -r k p < <(kld "$f" "$OUT/kld-eq-size-$t.log")
  read -r bt bb bk < <(awk -v s="$size" '$2<=s && ($3<best || best=="") {best=$3; bt=$1; bb=$2} END {print bt, bb, best}' "$OUT/llama.tsv")
  c=$(awk '{printf "%.0f", $2+$3}' "$OUT/eq-size-$t.time")
  printf "| %s | %s | %s | **%s** | %s | %s | %s | %s | %s |\n" "$t" "$size" "$(stat -c %s "$f")" "$k" "$bt" "$bb" "$bk" \
    "$(python3 -c "print(f'{100*(1-$k/$bk):.0f}%')")" "$c"
done

echo
echo "## fixed types: edgequant --type T --calibrate beside llama-quantize --imatrix T"
printf "| type | bytes (both) | edgequant KLD | llama-quantize KLD | KLD lower |\n|---|---|---|---|---|\n"
for t in $FIXED; do
  lt=$(echo "$t" | tr 'A-Z' 'a-z')
  f="$OUT/eq-type-$t.gguf"
  [ -f "$f" ] || "$BIN" convert "$CKPT" --type "$lt" --calibrate "$CALIB" --threads "$THREADS" --outfile "$f" > "$OUT/eq-type-$t.log" 2>&1
  read -r k p < <(kld "$f" "$OUT/kld-eq-type-$t.log")
  lk=$(awk -v t="$t" '$1==t {print $3}' "$OUT/llama.tsv")
  printf "| %s | %s / %s | **%s** | %s | %s |\n" "$t" "$(stat -c %s "$f")" "$(awk -v t="$t" '$1==t {print $2}' "$OUT/llama.tsv")" "$k" "$lk" \
    "$(python3 -c "print(f'{100*(1-$k/$lk):.0f}%')")"
done
