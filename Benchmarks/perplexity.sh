#!/usr/bin/env bash
# Evaluation benchmark: `edgequant perplexity` beside llama-perplexity on the same GGUF files, text,
# context, chunk count and threads, in one run: PPL of each, their relative difference, tokens/s
# and peak RSS.
# usage: Benchmarks/perplexity.sh TEXT LLAMA_BIN CHUNKS THREADS MODEL.gguf...
set -euo pipefail
TEXT=$1; LBIN=$2; CHUNKS=$3; THREADS=$4; shift 4
cd "$(dirname "$0")/.."
swift build -c release --product edgequant >/dev/null
BIN=$(swift build -c release --show-bin-path)/edgequant
T=$(mktemp -d)
printf "%-28s %12s %12s %8s %14s %14s %12s\n" model "PPL llama" "PPL ours" "diff %" "tok/s llama" "tok/s ours" "RSS MB ours"
for m in "$@"; do
  /usr/bin/time -f "%M" -o "$T/lt" "$LBIN/llama-perplexity" -m "$m" -f "$TEXT" -c 512 --chunks "$CHUNKS" -t "$THREADS" > "$T/l.txt" 2>&1
  lppl=$(grep -o "Final estimate: PPL = [0-9.]*" "$T/l.txt" | awk '{print $NF}')
  lsec=$(grep -o "[0-9.]* seconds per pass" "$T/l.txt" | awk '{print $1}')
  nseq=$(( 2048 / 512 )); [ "$CHUNKS" -lt "$nseq" ] && nseq=$CHUNKS
  ltps=$(python3 -c "print(512*$nseq/$lsec)")
  /usr/bin/time -f "%M" -o "$T/et" "$BIN" perplexity "$m" --text "$TEXT" --chunks "$CHUNKS" --threads "$THREADS" --json > "$T/e.json"
  read -r eppl etps < <(python3 -c "import json; d=json.load(open('$T/e.json')); print(d['ppl'], d['tokens_per_second'])")
  printf "%-28s %12.4f %12.4f %8.3f %14.1f %14.1f %12d\n" "$(basename "$m")" "$lppl" "$eppl" \
    "$(python3 -c "print(100*($eppl-$lppl)/$lppl)")" "$ltps" "$etps" $(( $(cat "$T/et") / 1024 ))
done
rm -rf "$T"
