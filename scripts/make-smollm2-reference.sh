#!/usr/bin/env bash
# Records what llama.cpp's convert_hf_to_gguf.py writes for the real SmolLM2 checkpoint, so that CI
# can check edgequant against it without running the Python converter (torch) on every run.
# usage: scripts/make-smollm2-reference.sh LLAMA_CPP_SRC CHECKPOINT_DIR   (the dir must be named
#        SmolLM2-135M-Instruct: general.name and the file name derive from it)
# writes Fixtures/smollm2/SHA256SUMS
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
rm -rf "$OUT"
cat Fixtures/smollm2/SHA256SUMS
