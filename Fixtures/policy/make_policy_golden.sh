#!/usr/bin/env bash
# Records the tensor types llama-quantize chooses for every file type, for two models: the real
# SmolLM2 (30 layers, GQA 3, rows of 576 so most k-quants fall back) and a synthetic 8-layer GQA-4
# model with 256-multiple rows (the mixes without fallbacks); and for SmolLM2 again with its
# imatrix (Fixtures/smollm2/imatrix.gguf), since the IQ3_XXS, IQ4_* and Q4_0/Q5_0 mixes read
# has_imatrix. Tests replay QuantizationPolicy on the same tensor lists and compare. Needs a built
# edgequant and llama.cpp's llama-quantize.
# usage: Fixtures/policy/make_policy_golden.sh LLAMA_BIN SMOLLM2_F32_GGUF
set -euo pipefail
LBIN=$1; SMOL=$2
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
python3 Benchmarks/make_sparse_checkpoint.py "$T/synth" --layers 8 --dim 256 --ffn 512 --vocab 512 --heads 4 --kv-heads 1 --shards 1 >/dev/null
$(swift build -c release --show-bin-path)/edgequant convert "$T/synth" --type f32 --outfile "$T/synth-f32.gguf" --quiet
FTYPES="Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K IQ4_NL F16 BF16 F32
  IQ2_XXS IQ2_XS IQ2_S IQ2_M IQ1_S IQ1_M IQ3_XXS IQ3_XS IQ3_S IQ3_M IQ4_XS"
for model in smollm2:"$SMOL" synth:"$T/synth-f32.gguf"; do
  name=${model%%:*}; path=${model#*:}
  for ft in $FTYPES; do
    "$LBIN/llama-quantize" --dry-run "$path" "$T/out.gguf" "$ft" 1 > "$T/$name-$ft.log" 2>&1
  done
done
for ft in $FTYPES; do
  "$LBIN/llama-quantize" --dry-run --imatrix Fixtures/smollm2/imatrix.gguf "$SMOL" "$T/out.gguf" "$ft" 1 > "$T/smollm2+imatrix-$ft.log" 2>&1
done
python3 - "$T" <<'PY'
import json, re, sys, glob, os
t = sys.argv[1]
out = {}
shapes = {}
order = {}
for log in sorted(glob.glob(os.path.join(t, "*.log"))):
    model, ft = os.path.basename(log)[:-4].split("-", 1)
    types = {}
    for line in open(log):
        m = re.search(r"\[\s*\d+/\s*\d+\]\s+(\S+)\s+- \[([^\]]*)\], type =\s+(\w+),", line)
        if not m: continue
        name, cur = m.group(1), m.group(3)
        shapes.setdefault(model, {})[name] = [int(x) for x in m.group(2).split(",")]
        q = re.search(r"-> .*\((\w+)\)\s*$", line)
        types[name] = q.group(1) if q else cur
        order.setdefault(model, [])
        if name not in order[model]: order[model].append(name)
    out.setdefault(model, {})[ft] = types
doc = {m: {"tensors": [[n, shapes[m][n]] for n in order[m]], "types": out[m]} for m in out}
json.dump(doc, open("Fixtures/policy/llama-quantize-types.json", "w"), separators=(",", ":"), sort_keys=True)
print({m: {f: len(v) for f, v in d.items()} for m, d in out.items()})
PY
rm -rf "$T"
