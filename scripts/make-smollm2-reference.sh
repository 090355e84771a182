#!/usr/bin/env bash
# Records what llama.cpp's convert_hf_to_gguf.py writes for the real SmolLM2 checkpoint, so that CI
# can check edgequant against it without running the Python converter (torch) on every run.
# usage: scripts/make-smollm2-reference.sh LLAMA_CPP_SRC CHECKPOINT_DIR [CALIBRATION_TEXT]
#        (the dir must be named SmolLM2-135M-Instruct: general.name and the file name derive from it)
# writes Fixtures/smollm2/SHA256SUMS (convert_hf_to_gguf.py --outtype f32/f16/bf16/q8_0),
#        Fixtures/smollm2/SHA256SUMS-llama-quantize (llama-quantize of the F32 file to every file type;
#        LLAMA_BIN, default LLAMA_CPP_SRC/../bin, holds llama-quantize and llama-imatrix),
#        Fixtures/smollm2/SHA256SUMS-llama-quantize-imatrix (llama-quantize --imatrix with
#        Fixtures/smollm2/imatrix.gguf, and with its legacy .dat form),
#        Fixtures/smollm2/SHA256SUMS-llama-quantize-iquants (the i-quant file types with that imatrix) and
#        Fixtures/smollm2/llama-quantize-types-imatrix.json (tensor types llama-quantize --dry-run
#        --imatrix chooses for every file type) and Fixtures/smollm2/SHA256SUMS-gguf-split
#        (llama-gguf-split --split of the Q8_0 file by --split-max-size 50M, and of llama-quantize's
#        Q4_K_M by --split-max-tensors 64).
#        With CALIBRATION_TEXT, Fixtures/smollm2/imatrix.gguf is first made anew from it
#        (llama-imatrix -c 512 --chunks 10 -t 2), and its .dat form by llama-imatrix too.
set -euo pipefail
SRC=$1; CKPT=$2; CALIB=${3:-}
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
# --imatrix. llama-quantize records the imatrix path as given (quantize.imatrix.file), so test.sh
# must pass the same strings: Fixtures/smollm2/imatrix.gguf from the repository root, and
# imatrix.dat from the directory holding it.
IM=Fixtures/smollm2/imatrix.gguf
if [ -n "$CALIB" ]; then
  "$LBIN/llama-imatrix" -m "$OUT/f32.gguf" -f "$CALIB" -c 512 --chunks 10 -t 2 -o "$IM" >/dev/null 2>&1
  "$LBIN/llama-imatrix" -m "$OUT/f32.gguf" -f "$CALIB" -c 512 --chunks 10 -t 2 --output-format dat -o "$OUT/imatrix.dat" >/dev/null 2>&1
  # test.sh derives the .dat from the GGUF; it must be what llama-imatrix writes.
  python3 scripts/imatrix_gguf_to_dat.py "$IM" "$OUT/derived.dat"
  cmp "$OUT/imatrix.dat" "$OUT/derived.dat"
else
  python3 scripts/imatrix_gguf_to_dat.py "$IM" "$OUT/imatrix.dat"
fi
: > Fixtures/smollm2/SHA256SUMS-llama-quantize-imatrix
for t in Q4_0 Q4_1 Q5_0 Q5_1 Q4_K_M Q6_K IQ4_NL; do
  "$LBIN/llama-quantize" --imatrix "$IM" "$OUT/f32.gguf" "$OUT/q.gguf" "$t" 2 >/dev/null 2>&1
  echo "$(sha256sum "$OUT/q.gguf" | cut -d' ' -f1)  SmolLM2-135M-Instruct-$t-imatrix.gguf" >> Fixtures/smollm2/SHA256SUMS-llama-quantize-imatrix
  (cd "$OUT" && "$LBIN/llama-quantize" --imatrix imatrix.dat f32.gguf q.gguf "$t" 2 >/dev/null 2>&1)
  echo "$(sha256sum "$OUT/q.gguf" | cut -d' ' -f1)  SmolLM2-135M-Instruct-$t-imatrix-dat.gguf" >> Fixtures/smollm2/SHA256SUMS-llama-quantize-imatrix
done
# The i-quant file types (issue 16), all with the imatrix (most require one).
: > Fixtures/smollm2/SHA256SUMS-llama-quantize-iquants
for t in IQ2_XXS IQ2_XS IQ2_S IQ2_M IQ1_S IQ1_M IQ3_XXS IQ3_XS IQ3_S IQ3_M IQ4_XS; do
  "$LBIN/llama-quantize" --imatrix "$IM" "$OUT/f32.gguf" "$OUT/q.gguf" "$t" 2 >/dev/null 2>&1
  echo "$(sha256sum "$OUT/q.gguf" | cut -d' ' -f1)  SmolLM2-135M-Instruct-$t-imatrix.gguf" >> Fixtures/smollm2/SHA256SUMS-llama-quantize-iquants
done
for t in Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K IQ4_NL F16 BF16 F32; do
  "$LBIN/llama-quantize" --dry-run --imatrix "$IM" "$OUT/f32.gguf" "$OUT/q.gguf" "$t" 1 > "$OUT/dry-$t.log" 2>&1
done
python3 - "$OUT" <<'PY'
import glob, json, os, re, sys
tensors, types = [], {}
for log in sorted(glob.glob(os.path.join(sys.argv[1], "dry-*.log"))):
    ft = os.path.basename(log)[4:-4]
    types[ft] = {}
    for line in open(log):
        m = re.search(r"\[\s*\d+/\s*\d+\]\s+(\S+)\s+- \[([^\]]*)\], type =\s+(\w+),", line)
        if not m: continue
        name, cur = m.group(1), m.group(3)
        if ft == "F32": tensors.append([name, [int(x) for x in m.group(2).split(",")]])
        q = re.search(r"-> .*\((\w+)\)\s*$", line)
        types[ft][name] = q.group(1) if q else cur
# Types as lists in the tensors' order (llama-quantize's), to keep the fixture small.
types = {ft: [t[n] for n, _ in tensors] for ft, t in types.items()}
json.dump({"tensors": tensors, "types": types}, open("Fixtures/smollm2/llama-quantize-types-imatrix.json", "w"),
          separators=(",", ":"), sort_keys=True)
PY
# Split files, named as convert/quantize name them from --outfile PREFIX.gguf.
: > Fixtures/smollm2/SHA256SUMS-gguf-split
python3 "$SRC/convert_hf_to_gguf.py" "$CKPT" --outtype q8_0 --outfile "$OUT/q8.gguf" >/dev/null 2>&1
"$LBIN/llama-quantize" "$OUT/f32.gguf" "$OUT/q4km.gguf" Q4_K_M 2 >/dev/null 2>&1
mkdir -p "$OUT/split"
"$LBIN/llama-gguf-split" --split --split-max-size 50M "$OUT/q8.gguf" "$OUT/split/split-size-Q8_0" >/dev/null
"$LBIN/llama-gguf-split" --split --split-max-tensors 64 "$OUT/q4km.gguf" "$OUT/split/split-tensors-Q4_K_M" >/dev/null
(cd "$OUT/split" && sha256sum *.gguf) >> Fixtures/smollm2/SHA256SUMS-gguf-split
rm -rf "$OUT"
cat Fixtures/smollm2/SHA256SUMS-gguf-split /smollm2/SHA256SUMS Fixtures/smollm2/SHA256SUMS-llama-quantize Fixtures/smollm2/SHA256SUMS-llama-quantize-imatrix
