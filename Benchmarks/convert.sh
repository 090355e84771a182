#!/usr/bin/env bash
# Conversion benchmark: edgequant (release) beside llama.cpp's convert_hf_to_gguf.py, same machine,
# same run; wall seconds (best of N) and peak RSS. Then a sparse 7B-shaped sharded checkpoint → q8_0
# to show that memory does not grow with the model.
# usage: Benchmarks/convert.sh CHECKPOINT_DIR LLAMA_CPP_SRC [RUNS=3] [SCRATCH=/tmp/eq-bench]
set -euo pipefail
CKPT=$1; SRC=$2; RUNS=${3:-3}; SCRATCH=${4:-/tmp/eq-bench}
cd "$(dirname "$0")/.."
mkdir -p "$SCRATCH"
swift build -c release --product edgequant >/dev/null
BIN=$(swift build -c release --show-bin-path)/edgequant
measure() { # prints "best_seconds peak_rss_mb" over RUNS runs of the command
  local best="" rss=0
  for _ in $(seq "$RUNS"); do
    /usr/bin/time -f "%e %M" -o "$SCRATCH/time" "$@" >/dev/null 2>&1
    read -r s kb < "$SCRATCH/time"
    best=$(python3 -c "print(min(float('$s'), float('${best:-1e9}')))")
    rss=$(( kb > rss ? kb : rss ))
  done
  echo "$best $((rss / 1024))"
}
printf "%-8s %-26s %10s %12s %9s\n" type tool seconds "peak RSS MB" speedup
for t in bf16 q8_0; do
  read -r es er < <(measure "$BIN" convert "$CKPT" --type "$t" --outfile "$SCRATCH/eq.gguf" --quiet)
  read -r ps pr < <(measure python3 "$SRC/convert_hf_to_gguf.py" "$CKPT" --outtype "$t" --outfile "$SCRATCH/py.gguf")
  cmp -s "$SCRATCH/eq.gguf" "$SCRATCH/py.gguf" && same="identical" || same="DIFFERENT"
  printf "%-8s %-26s %10.2f %12d %9s\n" "$t" "convert_hf_to_gguf.py" "$ps" "$pr" ""
  printf "%-8s %-26s %10.2f %12d %8.1fx  (%s)\n" "$t" "edgequant convert" "$es" "$er" "$(python3 -c "print($ps/$es)")" "$same"
done
rm -f "$SCRATCH/eq.gguf" "$SCRATCH/py.gguf"
if [ "${SKIP_7B:-0}" != 1 ]; then
  python3 Benchmarks/make_sparse_checkpoint.py "$SCRATCH/sparse-7b" >/dev/null
  /usr/bin/time -f "%e %M" -o "$SCRATCH/time" "$BIN" convert "$SCRATCH/sparse-7b" --type q8_0 --outfile "$SCRATCH/sparse-7b.gguf" --quiet
  read -r s kb < "$SCRATCH/time"
  size=$(stat -c %s "$SCRATCH/sparse-7b.gguf")
  printf "%-8s %-26s %10.2f %12d   (7B-shaped sparse, 3 shards, output %.2f GB)\n" q8_0 "edgequant convert" "$s" $((kb / 1024)) "$(python3 -c "print($size/1e9)")"
  rm -rf "$SCRATCH/sparse-7b" "$SCRATCH/sparse-7b.gguf"
fi
