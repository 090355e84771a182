#!/usr/bin/env bash
# Quantization benchmark: `edgequant quantize` beside llama-quantize from the same F32 GGUF, same
# thread count, same run (best of N wall seconds, peak RSS, and whether the files are identical);
# then `edgequant convert --type q4_k_m` from safetensors against convert_hf_to_gguf.py (f32) +
# llama-quantize, the two-step path it replaces.
# With IMATRIX=FILE both quantize with that importance matrix (the i-quants below IQ4_NL need one):
#   IMATRIX=Fixtures/smollm2/imatrix.gguf SKIP_TWO_STEP=1 Benchmarks/quantize.sh F32 CKPT SRC BIN 2 3 \
#     "iq2_xxs iq2_xs iq2_s iq2_m iq1_s iq1_m iq3_xxs iq3_xs iq3_s iq3_m iq4_xs"
# usage: Benchmarks/quantize.sh F32_GGUF CHECKPOINT_DIR LLAMA_CPP_SRC LLAMA_BIN [THREADS=2] [RUNS=3] [TYPES]
set -euo pipefail
F32=$1; CKPT=$2; SRC=$3; LBIN=$4; THREADS=${5:-2}; RUNS=${6:-3}
TYPES=${7:-"q4_0 q4_1 q5_0 q5_1 q8_0 q2_k q3_k_m q4_k_s q4_k_m q5_k_m q6_k iq4_nl"}
SCRATCH=${SCRATCH:-/tmp/eq-qbench}
IM=()
[ -n "${IMATRIX:-}" ] && IM=(--imatrix "$IMATRIX")
cd "$(dirname "$0")/.."
mkdir -p "$SCRATCH"
swift build -c release --product edgequant >/dev/null
BIN=$(swift build -c release --show-bin-path)/edgequant
measure() {
  local best="" rss=0
  for _ in $(seq "$RUNS"); do
    /usr/bin/time -f "%e %M" -o "$SCRATCH/time" "$@" >/dev/null 2>&1
    read -r s kb < "$SCRATCH/time"
    best=$(python3 -c "print(min(float('$s'), float('${best:-1e9}')))")
    rss=$(( kb > rss ? kb : rss ))
  done
  echo "$best $((rss / 1024))"
}
printf "%-8s %16s %16s %9s %10s   %s\n" type "llama-quantize s" "edgequant s" speedup "RSS MB" "(ours/theirs)"
for t in $TYPES; do
  read -r ls lr < <(measure "$LBIN/llama-quantize" "${IM[@]}" "$F32" "$SCRATCH/l.gguf" "$t" "$THREADS")
  read -r es er < <(measure "$BIN" quantize "$F32" "$SCRATCH/e.gguf" "$t" "${IM[@]}" --threads "$THREADS" --quiet)
  cmp -s "$SCRATCH/l.gguf" "$SCRATCH/e.gguf" && same=identical || same=DIFFERENT
  printf "%-8s %16.2f %16.2f %8.1fx %5d/%-5d %s\n" "$t" "$ls" "$es" "$(python3 -c "print($ls/$es)")" "$er" "$lr" "$same"
done
rm -f "$SCRATCH/l.gguf" "$SCRATCH/e.gguf"
if [ "${SKIP_TWO_STEP:-0}" != 1 ]; then
  start=$(date +%s.%N)
  python3 "$SRC/convert_hf_to_gguf.py" "$CKPT" --outtype f32 --outfile "$SCRATCH/f32.gguf" >/dev/null 2>&1
  "$LBIN/llama-quantize" "$SCRATCH/f32.gguf" "$SCRATCH/two.gguf" q4_k_m "$THREADS" >/dev/null 2>&1
  two=$(python3 -c "import time; print(time.time() - $start)")
  read -r es er < <(measure "$BIN" convert "$CKPT" --type q4_k_m --threads "$THREADS" --outfile "$SCRATCH/one.gguf" --quiet)
  cmp -s "$SCRATCH/two.gguf" "$SCRATCH/one.gguf" && same=identical || same=DIFFERENT
  printf "\nsafetensors → Q4_K_M: convert_hf_to_gguf + llama-quantize %.2f s, edgequant convert %.2f s (%.1fx, RSS %d MB, %s)\n" \
    "$two" "$es" "$(python3 -c "print($two/$es)")" "$er" "$same"
  rm -f "$SCRATCH/f32.gguf" "$SCRATCH/two.gguf" "$SCRATCH/one.gguf"
fi
