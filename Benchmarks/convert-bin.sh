#!/usr/bin/env bash
# PyTorch .bin conversion: edgequant (release) beside convert_hf_to_gguf.py on the same
# pytorch_model.bin checkpoint, same run; best wall seconds of N and peak RSS, and whether the
# files are identical. PYTHON: an interpreter with torch (convert_hf_to_gguf needs it).
# usage: Benchmarks/convert-bin.sh BIN_CHECKPOINT_DIR LLAMA_CPP_SRC [RUNS=3] [SCRATCH=/tmp/eq-bench-bin]
set -euo pipefail
CKPT=$1; SRC=$2; RUNS=${3:-3}; SCRATCH=${4:-/tmp/eq-bench-bin}; PY=${PYTHON:-python3}
cd "$(dirname "$0")/.."
mkdir -p "$SCRATCH"
swift build -c release --product edgequant >/dev/null
BIN=$(swift build -c release --show-bin-path)/edgequant
measure() { # "best_seconds peak_rss_mb" over RUNS runs
  local best="" rss=0
  for _ in $(seq "$RUNS"); do
    /usr/bin/time -f "%e %M" -o "$SCRATCH/time" "$@" >/dev/null 2>&1
    read -r s kb < "$SCRATCH/time"
    best=$("$PY" -c "print(min(float('$s'), float('${best:-1e9}')))")
    rss=$(( kb > rss ? kb : rss ))
  done
  echo "$best $((rss / 1024))"
}
printf "%-6s %-24s %8s %12s %8s\n" type tool seconds "peak RSS MB" speedup
for t in f16 q8_0; do
  read -r es er < <(measure "$BIN" convert "$CKPT" --type "$t" --outfile "$SCRATCH/eq.gguf" --threads 2 --quiet)
  read -r ps pr < <(measure env TQDM_DISABLE=1 "$PY" "$SRC/convert_hf_to_gguf.py" "$CKPT" --outtype "$t" --outfile "$SCRATCH/py.gguf")
  cmp -s "$SCRATCH/eq.gguf" "$SCRATCH/py.gguf" && same="identical" || same="DIFFERENT"
  printf "%-6s %-24s %8.2f %12d\n" "$t" "convert_hf_to_gguf.py" "$ps" "$pr"
  printf "%-6s %-24s %8.2f %12d %7.1fx  (%s)\n" "$t" "edgequant convert" "$es" "$er" "$("$PY" -c "print($ps/$es)")" "$same"
done
rm -f "$SCRATCH/eq.gguf" "$SCRATCH/py.gguf"
