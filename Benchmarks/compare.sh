#!/usr/bin/env bash
# `edgequant compare` beside the same job done with llama.cpp's tools, same machine, text, chunks
# and threads, in one run:
#   llama.cpp: convert_hf_to_gguf.py --outtype bf16, llama-perplexity --kl-divergence-base on it,
#              then per type llama-quantize + llama-perplexity --kl-divergence (PPL and KLD in one pass)
#   edgequant: compare --types <the same six>,nf4 --keep DIR
# Prints both wall times, then per type our table's PPL/KLD/same-top beside llama-perplexity's for
# the same file (ours and llama-quantize's files are byte-identical, checked by sha256; when they
# are not, llama-perplexity is run on our file) with the relative differences and whether they are
# within the evaluation's tolerances (PPL 0.3 %, KLD 5 %).
# usage: Benchmarks/compare.sh CHECKPOINT_DIR TEXT LLAMA_CPP_DIR [THREADS=2] [CHUNKS]
#   LLAMA_CPP_DIR holds src/ (convert_hf_to_gguf.py, gguf-py) and bin/ (as ../shared/tools/llama-cpp.sh makes it)
#   PLOT_DIR=dir also writes our run's plot there (compare-plot.svg and .png)
set -euo pipefail
CKPT=$1; TEXT=$2; LL=$3; THREADS=${4:-2}; CHUNKS=${5:-}
TYPES="Q8_0 Q6_K Q5_K_M Q4_K_M Q4_0 IQ4_NL"
cd "$(dirname "$0")/.."
swift build -c release --product edgequant >/dev/null
BIN=$(swift build -c release --show-bin-path)/edgequant
T=$(mktemp -d /tmp/eq-compare.XXXX); trap 'rm -rf "$T"' EXIT
CH=(); [ -n "$CHUNKS" ] && CH=(--chunks "$CHUNKS")
now() { date +%s.%N; }

# --- llama.cpp's tools ---
t0=$(now)
PYTHONPATH="$LL/src/gguf-py" python3 "$LL/src/convert_hf_to_gguf.py" "$CKPT" --outtype bf16 --outfile "$T/bf16.gguf" > "$T/convert.log" 2>&1
"$LL/bin/llama-perplexity" -m "$T/bf16.gguf" -f "$TEXT" -c 512 "${CH[@]}" -t "$THREADS" --kl-divergence-base "$T/base.kld" > "$T/base.log" 2>&1
for t in $TYPES; do
  "$LL/bin/llama-quantize" "$T/bf16.gguf" "$T/ll-$t.gguf" "$t" "$THREADS" > "$T/q-$t.log" 2>&1
  "$LL/bin/llama-perplexity" -m "$T/ll-$t.gguf" -f "$TEXT" -c 512 "${CH[@]}" -t "$THREADS" \
    --kl-divergence-base "$T/base.kld" --kl-divergence > "$T/ppl-$t.log" 2>&1
done
t1=$(now)

# --- edgequant ---
types=$(echo "$TYPES nf4" | tr 'A-Z ' 'a-z,')
PL=(); [ -n "${PLOT_DIR:-}" ] && PL=(--plot "$PLOT_DIR/compare-plot.svg" --plot "$PLOT_DIR/compare-plot.png")
"$BIN" compare "$CKPT" --types "$types" --text "$TEXT" "${CH[@]}" --threads "$THREADS" --keep "$T/ours" "${PL[@]}" --json --quiet > "$T/ours.json"
t2=$(now)

llama_s=$(python3 -c "print(f'{$t1-$t0:.1f}')"); ours_s=$(python3 -c "print(f'{$t2-$t1:.1f}')")
printf "%-58s %8s s\n" "llama.cpp: convert bf16 + base logits + 6 × (quantize + perplexity/KLD)" "$llama_s"
printf "%-58s %8s s   (%.2fx)\n" "edgequant compare: reference + 7 types (6 + nf4 simulated)" "$ours_s" "$(python3 -c "print($llama_s/$ours_s)")"
echo
python3 - "$T/ours.json" <<'EOF'
import json, sys
print("edgequant compare's table:")
print(f"{'type':<18} {'MB':>7} {'bpw':>5} {'PPL':>8} {'ΔPPL%':>7} {'KLD':>9} {'p99 KLD':>8} {'top%':>6} {'quant s':>7} {'tok/s':>6}")
for r in json.load(open(sys.argv[1])):
    n = r["type"] + (" (reference)" if r.get("reference") else " (simulated)" if r.get("simulated") else "")
    g = lambda k, f: format(r[k], f) if k in r else "-"
    print(f"{n:<18} {r['size_bytes']/1e6:7.1f} {g('bpw','5.2f')} {g('ppl','8.4f')} {g('ppl_delta_pct','+7.2f')} {g('kld_mean','9.6f')} {g('kld_p99','8.4f')} {g('same_top_pct','6.2f')} {g('quantize_seconds','7.1f')} {g('eval_tokens_per_second','6.0f')}")
EOF
echo
printf "%-8s %-10s | %9s %9s %7s | %9s %9s %7s | %7s %7s | %s\n" type file "PPL ll" "PPL ours" "Δ%" "KLD ll" "KLD ours" "Δ%" "top% ll" "top% us" verdict
for t in $TYPES; do
  lt=$(echo "$t" | tr 'A-Z' 'a-z')
  ours=$(python3 -c "import json; r=[x for x in json.load(open('$T/ours.json')) if x['type']=='$lt'][0]; print(r['path'])")
  log="$T/ppl-$t.log"; same="identical"
  if ! cmp -s "$ours" "$T/ll-$t.gguf"; then
    same="differs"; log="$T/ppl-ours-$t.log"
    "$LL/bin/llama-perplexity" -m "$ours" -f "$TEXT" -c 512 "${CH[@]}" -t "$THREADS" \
      --kl-divergence-base "$T/base.kld" --kl-divergence > "$log" 2>&1
  fi
  lp=$(grep -E "Mean PPL\(Q\) +:" "$log" | awk '{print $(NF-2)}')
  lk=$(grep -E "Mean +KLD:" "$log" | awk '{print $(NF-2)}')
  ls=$(grep -E "Same top p:" "$log" | awk '{print $(NF-3)}')
  python3 - "$T/ours.json" "$lt" "$lp" "$lk" "$ls" "$same" <<'EOF'
import json, sys
rows, t, lp, lk, ls, same = json.load(open(sys.argv[1])), sys.argv[2], *map(float, sys.argv[3:6]), sys.argv[6]
r = [x for x in rows if x["type"] == t][0]
dp, dk = 100 * (r["ppl"] - lp) / lp, 100 * (r["kld_mean"] - lk) / lk
ok = abs(dp) <= 0.3 and abs(dk) <= 5
print(f"{t:<8} {same:<10} | {lp:9.4f} {r['ppl']:9.4f} {dp:+7.3f} | {lk:9.6f} {r['kld_mean']:9.6f} {dk:+7.2f} | {ls:7.3f} {r['same_top_pct']:7.3f} | {'within' if ok else 'OUTSIDE'}")
EOF
done
python3 -c "
import json; r=[x for x in json.load(open('$T/ours.json')) if x.get('reference')][0]
print(f\"reference ({r['type']}): PPL ours {r['ppl']:.4f}\")"
echo "llama.cpp reference: $(grep -E 'Final estimate: PPL' "$T/base.log")"
