#!/usr/bin/env bash
# Records what llama.cpp's convert_hf_to_gguf.py writes for the real SmolLM2 checkpoint, so that CI
# can check edgequant against it without running the Python converter (torch) on every run.
# usage: scripts/make-smollm2-reference.sh LLAMA_CPP_SRC CHECKPOINT_DIR   (the dir must be named
#        SmolLM2-135M-Instruct: general.name and the file name derive from it)
# writes Fixtures/smollm2/SHA256SUMS (convert_hf_to_gguf.py --outtype f32/f16/bf16/q8_0) and
#        Fixtures/smollm2/SHA256SUMS-llama-quantize (llama-quantize of the F32 file to every file type;
#        LLAMA_BIN, default LLAMA_CPP_SRC/../bin, holds llama-quantize)
set -euo pipefail
SRC=$1; CKPT=$2
OUT=$(mktemp -d)
cd "$(dirname "$0")/.."
mkdir -p Fixtures/smollm2
: > Fixtures/smollm2/SHA256SUMS
for t in f32 f16 bf16 q8_0; do
  python3 "$SRC/convert_hf_to_gguf.py" "$CKPT" --outtype "$t" --outfile "$OUT/" >/dev/null 2>&1
  f=$(ls "$OUT"/*.gguf)
  (cd "$OUT" && sha256sum "$(basename "$f")") >> Fixtures/smollm2/SHA256SUMS
  rm -f "$f"
done
python3 "$SRC/convert_hf_to_gguf.py" "$CKPT" --outtype f32 --outfile "$OUT/f32.gguf" >/dev/null 2>&1
LBIN=${LLAMA_BIN:-$SRC/../bin}
: > Fixtures/smollm2/SHA256SUMS-llama-quantize
for t in Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K IQ4_NL F16 BF16 F32; do
  "$LBIN/llama-quantize" "$OUT/f32.gguf" "$OUT/q.gguf" "$t" 2 >/dev/null 2>&1
  echo "$(sha256sum "$OUT/q.gguf" | cut -d' ' -f1)  SmolLM2-135M-Instruct-$t.gguf" >> Fixtures/smollm2/SHA256SUMS-llama-quantize
done
rm -rf "$OUT"
cat Fixtures/smollm2/SHA256SUMS Fixtures/smollm2/SHA256SUMS-llama-quantize
