#!/usr/bin/env bash
# Kill-safety on the real model (issue 12, part 4): `convert --type q4_k_m` of SmolLM2 and `batch`
# are SIGKILLed at random moments; after every kill each output must be absent or byte-identical
# to an uninterrupted run's, and the temporary files a killed run leaves must be removed by the
# next run into the same directory (0 left at the end). Then the faults of the disk on the CLI: a
# full tmpfs and a read-only one (when this shell may mount; the swift tests cover both with a
# test double otherwise).
#
#   bash scripts/kill-test.sh [CONVERT_KILLS=50] [BATCH_KILLS=20] [OTHER_KILLS=10]
# (OTHER_KILLS: of quantize, imatrix and compare --keep each, checked the same way.)
# Environment: EDGEQUANT_WORK (default .build/smollm2, as scripts/test.sh), KILL_SEED (default 12),
# EDGEQUANT_BIN (a built edgequant to run; default: a release build of its own).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/python-env.sh "${EDGEQUANT_VENV:-.build/venv}"
KILLS=${1:-50}
BKILLS=${2:-20}
OKILLS=${3:-10}
RANDOM=${KILL_SEED:-12}
WORK=${EDGEQUANT_WORK:-.build/smollm2}
CKPT="$WORK/SmolLM2-135M-Instruct"
[ -f "$CKPT/model.safetensors" ] || "$PY" scripts/smollm2-checkpoint.py "$CKPT" --cache "$WORK/.cache" >/dev/null
TEXT=${EDGEQUANT_WIKI_EVAL:-$WORK/wiki/wiki-eval-20k.txt}
[ -f "$TEXT" ] || TEXT=Fixtures/tokenizer/wiki-eval-20k.txt
# EDGEQUANT_BIN: a binary already built (scripts/test.sh's); otherwise a release build of our own
if [ -n "${EDGEQUANT_BIN:-}" ]; then BIN=$EDGEQUANT_BIN; else
  swift build -c release --product edgequant; BIN=$(swift build -c release --show-bin-path)/edgequant; fi
K="$WORK/kill"; rm -rf "$K"; mkdir -p "$K"
sha() { (sha256sum "$1" 2>/dev/null || echo missing) | cut -d' ' -f1; }
temps() { find "$1" -name '.edgequant.tmp-*' 2>/dev/null | wc -l; }
now() { date +%s.%N; }
# a random moment in [0, $1] seconds ($2: a draw of $RANDOM, taken in this shell so that KILL_SEED holds)
moment() { awk -v t="$1" -v r="$2" 'BEGIN { printf "%.3f", t * r / 32767 }'; }
pass=0; fail=0
ok() { echo "$1"; pass=$((pass+1)); }
bad() { echo "$1"; fail=$((fail+1)); }

# --- convert --type q4_k_m -------------------------------------------------------------------
OUT="$K/convert/SmolLM2-Q4_K_M.gguf"; mkdir -p "$K/convert"
t0=$(now); "$BIN" convert "$CKPT" --type q4_k_m --outfile "$OUT" --quiet --threads 2; t1=$(now)
REF=$(sha "$OUT"); T=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) * 1.15 }')
echo "convert reference: $REF, kills spread over ${T}s"
absent=0; same=0; differ=0; over=0; maxleft=0; mid=0
for i in $(seq 1 "$KILLS"); do
  rm -f "$OUT"                              # leftover temp files stay: the next run must remove them
  "$BIN" convert "$CKPT" --type q4_k_m --outfile "$OUT" --quiet --threads 2 & pid=$!
  r=$RANDOM; sleep "$(moment "$T" "$r")"
  kill -KILL $pid 2>/dev/null || true; wait $pid 2>/dev/null || true
  got=$(sha "$OUT")
  if [ "$got" = missing ]; then absent=$((absent+1)); elif [ "$got" = "$REF" ]; then same=$((same+1)); else differ=$((differ+1)); fi
  [ -z "$(find "$K/convert" -name ".edgequant.tmp-$pid-*")" ] || mid=$((mid+1))  # killed while writing
  left=$(temps "$K/convert"); [ "$left" -gt "$maxleft" ] && maxleft=$left
  [ "$left" -le 1 ] || over=$((over+1))   # each run removes the one before it left
done
echo "convert: $KILLS SIGKILLs ($mid while writing the file): $absent absent, $same identical, $differ DIFFERENT; at most $maxleft temp file(s) after a kill"
[ "$differ" = 0 ] && ok "convert kills: the output is absent or identical every time" || bad "convert kills: $differ outputs DIFFER"
[ "$over" = 0 ] && ok "convert kills: every run removed the temp file of the run killed before it" || bad "convert kills: temp files ACCUMULATED ($over times)"
# a temp file caught mid-write, removed by `edgequant clean`
for attempt in 1 2 3 4 5 6 7 8 9 10; do              # until one is caught while writing
  rm -f "$OUT"
  "$BIN" convert "$CKPT" --type q4_k_m --outfile "$OUT" --quiet --threads 2 & pid=$!
  while [ "$(temps "$K/convert")" = 0 ] && kill -0 $pid 2>/dev/null; do sleep 0.02; done
  kill -KILL $pid 2>/dev/null || true; wait $pid 2>/dev/null || true
  [ "$(temps "$K/convert")" = 0 ] || break
done
rm -f "$OUT"
before=$(temps "$K/convert")
"$BIN" clean "$K/convert" --quiet
[ "$before" -ge 1 ] && [ "$(temps "$K/convert")" = 0 ] && [ ! -e "$OUT" ] \
  && ok "edgequant clean: removed the $before temp file(s) of a run killed mid-write" || bad "edgequant clean: $before before, $(temps "$K/convert") after"
# and the next run: complete, identical, nothing left
"$BIN" convert "$CKPT" --type q4_k_m --outfile "$OUT" --quiet --threads 2 & pid=$!
r=$RANDOM; sleep "$(moment "$T" "$r")"; kill -KILL $pid 2>/dev/null || true; wait $pid 2>/dev/null || true
"$BIN" convert "$CKPT" --type q4_k_m --outfile "$OUT" --quiet --threads 2
left=$(temps "$K/convert")
[ "$(sha "$OUT")" = "$REF" ] && [ "$left" = 0 ] \
  && ok "convert next run: identical output, leftover temp files: $left" || bad "convert next run: $(sha "$OUT"), $left temp files left"

# --- batch -------------------------------------------------------------------------------------
B="$K/batch"; mkdir -p "$B"
cat > "$B/manifest.yaml" <<EOF
output: out
eval: {text: $PWD/$TEXT, ctx: 128, chunks: 1}
threads: 2
types: [q8_0, q4_k_m]
models:
  - name: smollm2
    path: $PWD/$CKPT
EOF
t0=$(now); "$BIN" batch "$B/manifest.yaml" --quiet > /dev/null; t1=$(now)
REFQ8=$(sha "$B/out/smollm2/smollm2-Q8_0.gguf"); REFQ4=$(sha "$B/out/smollm2/smollm2-Q4_K_M.gguf")
T=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) * 1.15 }')
echo "batch reference: Q8_0 $REFQ8, Q4_K_M $REFQ4, kills spread over ${T}s"
absent=0; same=0; differ=0; over=0; maxleft=0; badmeta=0; mid=0
for i in $(seq 1 "$BKILLS"); do
  # every finished file goes (GGUFs, sidecars, records, reports, cached reference log-probs), the
  # temp files of earlier kills stay: each run does all the work and must sweep them
  find "$B/out" -type f ! -name '.edgequant.tmp-*' -delete 2>/dev/null || true
  "$BIN" batch "$B/manifest.yaml" --quiet > /dev/null 2>&1 & pid=$!
  r=$RANDOM; sleep "$(moment "$T" "$r")"
  kill -KILL $pid 2>/dev/null || true; wait $pid 2>/dev/null || true
  for pair in "Q8_0 $REFQ8" "Q4_K_M $REFQ4"; do
    set -- $pair; got=$(sha "$B/out/smollm2/smollm2-$1.gguf")
    if [ "$got" = missing ]; then absent=$((absent+1)); elif [ "$got" = "$2" ]; then same=$((same+1)); else differ=$((differ+1)); fi
    side="$B/out/smollm2/smollm2-$1.gguf.sha256"
    [ ! -e "$side" ] || [ "$(cut -d' ' -f1 "$side")" = "$2" ] || badmeta=$((badmeta+1))
  done
  for j in "$B"/out/report.json "$B"/out/.edgequant/jobs/*.json; do
    [ -e "$j" ] || continue
    "$PY" -c "import json,sys; json.load(open(sys.argv[1]))" "$j" 2>/dev/null || badmeta=$((badmeta+1))
  done
  [ -z "$(find "$B/out" -name ".edgequant.tmp-$pid-*")" ] || mid=$((mid+1))
  left=$(temps "$B/out"); [ "$left" -gt "$maxleft" ] && maxleft=$left
  [ "$left" -le 1 ] || over=$((over+1))
done
echo "batch: $BKILLS SIGKILLs ($mid while writing a file): GGUFs $absent absent, $same identical, $differ DIFFERENT; $badmeta bad sidecar/record/report; at most $maxleft temp file(s) after a kill"
[ "$differ" = 0 ] && [ "$badmeta" = 0 ] && ok "batch kills: every GGUF, sidecar, record and report absent or complete" || bad "batch kills: $differ GGUFs DIFFER, $badmeta bad files"
[ "$over" = 0 ] && ok "batch kills: every run removed the temp files of the run killed before it" || bad "batch kills: temp files ACCUMULATED ($over times)"
set +e; "$BIN" batch "$B/manifest.yaml" --quiet > /dev/null 2>&1; code=$?; set -e
left=$(temps "$B/out")
[ "$code" = 0 ] && [ "$(sha "$B/out/smollm2/smollm2-Q8_0.gguf")" = "$REFQ8" ] && [ "$(sha "$B/out/smollm2/smollm2-Q4_K_M.gguf")" = "$REFQ4" ] && [ "$left" = 0 ] \
  && ok "batch next run: exit 0, identical GGUFs, leftover temp files: $left" || bad "batch next run: exit $code, $left temp files left"

# --- quantize, imatrix, compare --keep ----------------------------------------------------------
# kills LABEL N DIR CMD...: an uninterrupted run of CMD writes its files into DIR (the reference);
# then N runs killed at random moments, each after the finished files are deleted (temp files of
# the killed runs stay): every file present after a kill must be identical to the reference's.
kills() {
  local label=$1 n=$2 dir=$3; shift 3
  rm -rf "$dir"; mkdir -p "$dir"
  local t0 t1 T r pid bad=0 over=0 mid=0 present=0
  t0=$(now); "$@" > /dev/null 2>&1; t1=$(now)
  T=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) * 1.15 }')
  (cd "$dir" && find . -type f ! -name '.edgequant.tmp-*' -exec sha256sum {} + | sort -k2) > "$K/$label.ref"
  for i in $(seq 1 "$n"); do
    find "$dir" -type f ! -name '.edgequant.tmp-*' -delete
    "$@" > /dev/null 2>&1 & pid=$!
    r=$RANDOM; sleep "$(moment "$T" "$r")"
    kill -KILL $pid 2>/dev/null || true; wait $pid 2>/dev/null || true
    [ -z "$(find "$dir" -name ".edgequant.tmp-$pid-*")" ] || mid=$((mid+1))
    while read -r f; do
      present=$((present+1))
      grep -qx "$(cd "$dir" && sha256sum "$f")" "$K/$label.ref" || bad=$((bad+1))
    done < <(cd "$dir" && find . -type f ! -name '.edgequant.tmp-*')
    [ "$(temps "$dir")" -le 1 ] || over=$((over+1))
  done
  "$@" > /dev/null 2>&1
  local left; left=$(temps "$dir")
  echo "$label: $n SIGKILLs ($mid while writing) over ${T}s: $present files present after kills, $bad DIFFERENT; next run left $left temp files"
  [ "$bad" = 0 ] && [ "$over" = 0 ] && [ "$left" = 0 ] && (cd "$dir" && find . -type f ! -name '.edgequant.tmp-*' -exec sha256sum {} + | sort -k2) | cmp -s - "$K/$label.ref" \
    && ok "$label kills: files absent or identical, temp files swept" || bad "$label kills: $bad differ, $over accumulations, $left left"
}
"$BIN" convert "$CKPT" --type f16 --outfile "$K/f16.gguf" --quiet
kills quantize "$OKILLS" "$K/quantize" "$BIN" quantize "$K/f16.gguf" "$K/quantize/q.gguf" q4_k_m 2 --quiet
kills imatrix "$OKILLS" "$K/imatrix" "$BIN" imatrix "$K/f16.gguf" --text "$TEXT" --ctx 128 --chunks 1 --threads 2 -o "$K/imatrix/imatrix.gguf"
kills compare "$OKILLS" "$K/compare" "$BIN" compare "$CKPT" --types q8_0 --text "$TEXT" --ctx 128 --chunks 1 --threads 2 --quiet --keep "$K/compare"
rm -f "$K/f16.gguf"

# --- a full disk, a read-only destination ----------------------------------------------------
M="$PWD/$K/mnt"; mkdir -p "$M"
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=8m tmpfs "$M" 2>/dev/null; then
  set +e; "$BIN" convert "$CKPT" --type q4_k_m --outfile "$M/full.gguf" --quiet 2> "$K/enospc.err"; code=$?; set -e
  echo "ENOSPC (8 MB tmpfs): exit $code: $(cat "$K/enospc.err")"
  [ "$code" = 1 ] && [ "$(wc -l < "$K/enospc.err")" = 1 ] && grep -q "No space left on device" "$K/enospc.err" && [ -z "$(ls -A "$M")" ] \
    && ok "convert onto a full disk: one-line error, exit 1, nothing left" || bad "convert onto a full disk: exit $code, left: $(ls -A "$M")"
  sed -e "s|^output: out|output: $M/out|" "$B/manifest.yaml" > "$K/full.yaml"
  set +e; "$BIN" batch "$K/full.yaml" --quiet > /dev/null 2> "$K/batch-enospc.err"; code=$?; set -e
  echo "batch ENOSPC: exit $code: $(cat "$K/batch-enospc.err")"
  [ "$code" = 1 ] && [ "$(wc -l < "$K/batch-enospc.err")" = 1 ] && grep -q "No space left on device" "$K/batch-enospc.err" \
    && [ "$(temps "$M")" = 0 ] && [ -z "$(find "$M" -name '*.gguf')" ] \
    && ok "batch onto a full disk: exit 1 (not a failed gate), one line, no partial GGUF" || bad "batch onto a full disk: exit $code"
  rm -rf "${M:?}"/*
  # 2 chunks of 256: the reference's logits alone outgrow the 8 MB disk (1 of 128 fit, and are kept)
  set +e; "$BIN" compare "$CKPT" --types q8_0 --text "$TEXT" --ctx 256 --chunks 2 --threads 2 --quiet --keep "$M/cmp" \
    > /dev/null 2> "$K/compare-enospc.err"; code=$?; set -e
  echo "compare --keep ENOSPC: exit $code: $(cat "$K/compare-enospc.err")"
  [ "$code" = 1 ] && [ "$(wc -l < "$K/compare-enospc.err")" = 1 ] && grep -q "No space left on device" "$K/compare-enospc.err" \
    && [ "$(temps "$M")" = 0 ] && [ -z "$(find "$M" -type f)" ] \
    && ok "compare --keep onto a full disk: one-line error, exit 1, nothing left" || bad "compare --keep onto a full disk: exit $code"
  umount "$M"
  mount -t tmpfs -o ro,size=1m tmpfs "$M"
  set +e; "$BIN" convert "$CKPT" --type q4_k_m --outfile "$M/ro.gguf" --quiet 2> "$K/erofs.err"; code=$?; set -e
  echo "EROFS (read-only tmpfs): exit $code: $(cat "$K/erofs.err")"
  [ "$code" = 1 ] && [ "$(wc -l < "$K/erofs.err")" = 1 ] && grep -q "Read-only file system" "$K/erofs.err" \
    && ok "convert to a read-only destination: one-line error, exit 1" || bad "convert to a read-only destination: exit $code"
  umount "$M"
else
  echo "disk faults: cannot mount a tmpfs here; covered by the swift tests' OutputFaults double"
fi
rm -rf "$K"
echo "kill-test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
