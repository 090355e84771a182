#!/usr/bin/env bash
# What calibration costs, ours beside llama.cpp's, same machine, text, chunks and threads:
#   llama.cpp: llama-imatrix (CHUNKS × 512 tokens of CALIB_TEXT, on the bf16 GGUF), then
#              llama-quantize --imatrix Q4_K_M;
#   edgequant: convert --type q4_k_m --calibrate (importance matrix and GPTQ, same chunks), and a
#              first plan, convert --target-size TARGET --calibrate (sensitivities measured, no file
#              reused), each from the checkpoint.
# Prints CPU seconds (user + system), wall seconds and peak RSS of each step; the files stay in OUT
# for measuring their KL divergence (Benchmarks/budgets.sh's kld, or llama-perplexity directly).
# usage: Benchmarks/calibrate-cost.sh CHECKPOINT CALIB_TEXT OUT LLAMA_BIN TARGET_BYTES [THREADS=2] [CHUNKS=32]
set -euo pipefail
CKPT=$1; CALIB=$2; OUT=$3; LBIN=$4; TARGET=$5; THREADS=${6:-2}; CHUNKS=${7:-32}
cd "$(dirname "$0")/.."
swift build -c release --product edgequant >/dev/null
BIN=$(swift build -c release --show-bin-path)/edgequant
mkdir -p "$OUT"
export GGML_NO_BACKTRACE=1
[ -f "$OUT/bf16.gguf" ] || "$BIN" convert "$CKPT" --type bf16 --outfile "$OUT/bf16.gguf" --quiet
step() { # NAME CMD... -> one table row
  local name=$1; shift
  /usr/bin/time -f "%U %S %e %M" -o "$OUT/$name.time" "$@" > "$OUT/$name.log" 2>&1
  read -r u s e m < "$OUT/$name.time"
  printf "| %s | %.0f | %.0f | %d |\n" "$name" "$(echo "$u + $s" | bc)" "$e" $((m / 1024))
}
echo "| step ($THREADS threads, $CHUNKS chunks of 512) | CPU s | wall s | peak RSS MB |"
echo "|---|---|---|---|"
step llama-imatrix "$LBIN/llama-imatrix" -m "$OUT/bf16.gguf" -f "$CALIB" -c 512 --chunks "$CHUNKS" -t "$THREADS" -o "$OUT/imatrix.gguf"
step "llama-quantize --imatrix Q4_K_M" "$LBIN/llama-quantize" --imatrix "$OUT/imatrix.gguf" "$OUT/bf16.gguf" "$OUT/ll-Q4_K_M.gguf" Q4_K_M "$THREADS"
step "edgequant --type q4_k_m --calibrate" "$BIN" convert "$CKPT" --type q4_k_m --calibrate "$CALIB" --calib-chunks "$CHUNKS" \
  --gptq-chunks "$CHUNKS" --threads "$THREADS" --outfile "$OUT/eq-Q4_K_M.gguf"
step "edgequant --target-size $TARGET --calibrate (first plan)" "$BIN" convert "$CKPT" --target-size "$TARGET" --calibrate "$CALIB" \
  --calib-chunks "$CHUNKS" --gptq-chunks "$CHUNKS" --threads "$THREADS" --outfile "$OUT/eq-plan.gguf"
