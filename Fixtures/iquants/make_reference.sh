#!/usr/bin/env bash
# References for the i-quant file types on the tiny checkpoint of make_checkpoint.py: its F32 GGUF
# from convert_hf_to_gguf.py, an importance matrix from llama-imatrix on calibration text
# (Fixtures/iquants/imatrix.gguf, committed: 19 KB), and the SHA-256 of llama-quantize --imatrix for
# every i-quant file type (Fixtures/iquants/SHA256SUMS). scripts/test.sh checks edgequant's
# quantize and convert --type against them.
# usage: Fixtures/iquants/make_reference.sh LLAMA_CPP_SRC LLAMA_BIN CALIB_TEXT [PYTHON]
set -euo pipefail
SRC=$1; LBIN=$2; CALIB=$3; PY=${4:-python3}
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
"$PY" Fixtures/iquants/make_checkpoint.py "$T/llama-iq"
"$PY" "$SRC/convert_hf_to_gguf.py" "$T/llama-iq" --outtype f32 --outfile "$T/f32.gguf" >/dev/null 2>&1
"$LBIN/llama-imatrix" -m "$T/f32.gguf" -f "$CALIB" -c 64 --chunks 16 -t 2 -o Fixtures/iquants/imatrix.gguf >/dev/null 2>&1
{
  echo "$(sha256sum "$T/f32.gguf" | cut -d' ' -f1)  llama-iq-F32.gguf"
  for t in IQ2_XXS IQ2_XS IQ2_S IQ2_M IQ1_S IQ1_M IQ3_XXS IQ3_XS IQ3_S IQ3_M IQ4_XS; do
    "$LBIN/llama-quantize" --imatrix Fixtures/iquants/imatrix.gguf "$T/f32.gguf" "$T/q.gguf" "$t" 2 >/dev/null 2>&1
    echo "$(sha256sum "$T/q.gguf" | cut -d' ' -f1)  llama-iq-$t.gguf"
  done
} > Fixtures/iquants/SHA256SUMS
rm -rf "$T"
cat Fixtures/iquants/SHA256SUMS
