#!/usr/bin/env bash
# SmolLM2 as a PyTorch checkpoint: its safetensors weights saved by torch.save as pytorch_model.bin
# (one file, and two shards with pytorch_model.bin.index.json), converted by edgequant and by
# llama.cpp's convert_hf_to_gguf.py; every file must have the SHA-256 the safetensors checkpoint
# converts to (Fixtures/smollm2/SHA256SUMS). Needs what convert_hf_to_gguf needs (torch,
# transformers, safetensors) — it is not part of scripts/test.sh, whose machine needs no torch;
# the tiny torch-written fixtures (Fixtures/checkpoints/*-bin) cover .bin there.
# usage: scripts/smollm2-bin-check.sh LLAMA_CPP_SRC [WORK]   (PYTHON: an interpreter with torch)
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=${1:?usage: smollm2-bin-check.sh LLAMA_CPP_SRC [WORK]}
WORK=${2:-.build/smollm2}
PY=${PYTHON:-python3}
CKPT="$WORK/SmolLM2-135M-Instruct"
[ -f "$CKPT/model.safetensors" ] || { echo "no $CKPT (run scripts/test.sh or scripts/smollm2-checkpoint.py first)" >&2; exit 2; }
swift build -c release --product edgequant >/dev/null
BIN=$(swift build -c release --show-bin-path)/edgequant
pass=0; fail=0
for layout in single sharded; do
  D="$WORK/bin-$layout/SmolLM2-135M-Instruct"   # the same directory name: it names the model
  rm -rf "$WORK/bin-$layout"; mkdir -p "$D"
  for f in "$CKPT"/*; do case "$f" in *.safetensors|*.safetensors.index.json) ;; *) cp "$f" "$D/";; esac; done
  "$PY" - "$CKPT/model.safetensors" "$D" "$layout" <<'PY'
import json, sys, torch
from safetensors.torch import load_file
src, dst, layout = sys.argv[1:]
sd = load_file(src)  # safetensors' key order: convert_hf_to_gguf visits the .bin in this order too
if layout == "single":
    torch.save(sd, f"{dst}/pytorch_model.bin")
else:
    names = list(sd); half = len(names) // 2; wm = {}
    for i, part in enumerate([names[:half], names[half:]]):
        fn = f"pytorch_model-{i + 1:05d}-of-00002.bin"
        torch.save({k: sd[k] for k in part}, f"{dst}/{fn}"); wm.update({k: fn for k in part})
    json.dump({"metadata": {"total_size": sum(t.numel() * t.element_size() for t in sd.values())}, "weight_map": wm},
              open(f"{dst}/pytorch_model.bin.index.json", "w"), indent=2)
PY
  while read -r sum name; do
    type=$(echo "$name" | sed -E 's/.*-([A-Za-z0-9_]+)\.gguf$/\1/' | tr A-Z a-z)
    [ "$type" = f16 ] || [ "$type" = q8_0 ] || continue
    /usr/bin/time -f "%e s %M KB" -o "$WORK/time.txt" "$BIN" convert "$D" --type "$type" --outfile "$WORK/ours.gguf" --quiet
    (cd "$WORK" && TQDM_DISABLE=1 "$PY" "$OLDPWD/$SRC/convert_hf_to_gguf.py" "bin-$layout/SmolLM2-135M-Instruct" --outtype "$type" --outfile theirs.gguf >/dev/null 2>&1) \
      || (TQDM_DISABLE=1 "$PY" "$SRC/convert_hf_to_gguf.py" "$D" --outtype "$type" --outfile "$WORK/theirs.gguf" >/dev/null 2>&1)
    ours=$(sha256sum "$WORK/ours.gguf" | cut -d' ' -f1); theirs=$(sha256sum "$WORK/theirs.gguf" | cut -d' ' -f1)
    if [ "$ours" = "$sum" ] && [ "$theirs" = "$sum" ]; then
      echo "smollm2 .bin $layout $type: edgequant = convert_hf_to_gguf = safetensors conversion ($sum; edgequant $(cat "$WORK/time.txt"))"; pass=$((pass+1))
    else echo "smollm2 .bin $layout $type: DIFFERS (edgequant $ours, convert_hf_to_gguf $theirs, safetensors $sum)"; fail=$((fail+1)); fi
    rm -f "$WORK/ours.gguf" "$WORK/theirs.gguf"
  done < Fixtures/smollm2/SHA256SUMS
  rm -rf "$WORK/bin-$layout"
done
rm -f "$WORK/time.txt"
echo "smollm2-bin-check: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
