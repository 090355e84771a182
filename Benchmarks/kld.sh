#!/usr/bin/env bash
# KL divergence of quantized GGUFs against one unquantized reference, measured by llama-perplexity
# --kl-divergence and by `edgequant perplexity --reference-logits` on the same base file (written
# once by llama-perplexity --kl-divergence-base from REF.gguf), same text, chunks and threads.
# usage: Benchmarks/kld.sh TEXT LLAMA_BIN CHUNKS THREADS REF.gguf MODEL.gguf...
set -euo pipefail
TEXT=$1; LBIN=$2; CHUNKS=$3; THREADS=$4; REF=$5; shift 5
cd "$(dirname "$0")/.."
swift build -c release --product edgequant >/dev/null
BIN=$(swift build -c release --show-bin-path)/edgequant
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
"$LBIN/llama-perplexity" -m "$REF" -f "$TEXT" -c 512 --chunks "$CHUNKS" -t "$THREADS" --kl-divergence-base "$T/base.kld" > "$T/base.txt" 2>&1
printf "%-22s | %10s %10s | %9s %9s | %9s %9s | %8s %8s\n" model "KLD llama" "KLD ours" "p99 llama" "p99 ours" \
  "same% ll" "same% us" "diff% KLD" "diff% top"
for m in "$@"; do
  "$LBIN/llama-perplexity" -m "$m" -f "$TEXT" -c 512 --chunks "$CHUNKS" -t "$THREADS" \
    --kl-divergence-base "$T/base.kld" --kl-divergence > "$T/l.txt" 2>&1
  lk=$(grep -E "Mean +KLD:" "$T/l.txt" | awk '{print $(NF-2)}')
  lp=$(grep -E "99\.0% +KLD:" "$T/l.txt" | awk '{print $NF}')
  ls=$(grep -E "Same top p:" "$T/l.txt" | awk '{print $(NF-3)}')
  "$BIN" perplexity "$m" --reference-logits "$T/base.kld" --chunks "$CHUNKS" --threads "$THREADS" --json > "$T/e.json"
  read -r ek ep es < <(python3 -c "import json; d=json.load(open('$T/e.json')); print(d['kld_mean'], d['kld_p99'], d['same_top_pct'])")
  printf "%-22s | %10.6f %10.6f | %9.6f %9.6f | %9.3f %9.3f | %8.2f %8.2f\n" "$(basename "$m")" "$lk" "$ek" "$lp" "$ep" "$ls" "$es" \
    "$(python3 -c "print(100*($ek-$lk)/$lk)")" "$(python3 -c "print(100*($es-$ls)/$ls)")"
done
