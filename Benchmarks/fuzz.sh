#!/usr/bin/env bash
# Benchmarks/fuzz.sh [SECONDS] [TARGET...] — fuzz each input format for SECONDS (default 60) with
# libFuzzer and AddressSanitizer, and print one row per target: executions, crashes, hangs
# (timeouts), OOMs (allocations over the limit), libFuzzer's coverage (cov: edges, ft: features),
# corpus size and seconds. Exits 1 if any target found anything.
#
# Targets (Fuzz/Targets/*.swift): gguf, model, safetensors, torch, checkpoint, imatrix, tokenizer, manifest.
# The fuzz build lives in .build-fuzz (EDGEQUANT_FUZZ_BUILD): `swift build --sanitize fuzzer
# --sanitize address -DFUZZING` of each fuzz-<target> product, -c release by default (Swift's bounds
# and overflow checks stay on; 2-3x the executions of debug), EDGEQUANT_FUZZ_CONFIG=debug builds
# faster (CI's short run). A target stops early after EDGEQUANT_FUZZ_RUNS executions (default
# 1000000). Seeds come from Fixtures/ at run time (Fuzz/seeds.py); the corpus each run grows is kept in .build-fuzz/corpus/<target> for the next.
# Findings (crash-*, timeout-*, oom-*) go to .build-fuzz/findings/<target>/; minimise one with
#   .build-fuzz/release/fuzz-<target> -minimize_crash=1 -runs=10000 -exact_artifact_path=OUT FILE
# and keep it in Fixtures/fuzz-regressions/<target>/, where `swift test` replays it.
#
# One fuzzing process at a time (2 cores, shared): EDGEQUANT_FUZZ_BUILD_JOBS sets the build's -j.
# After a finding the target is restarted for the rest of its time, up to 5 findings per target.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-60}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(gguf model safetensors torch checkpoint imatrix tokenizer manifest)
B=${EDGEQUANT_FUZZ_BUILD:-.build-fuzz}
TIMEOUT=${EDGEQUANT_FUZZ_TIMEOUT:-10}        # seconds for one input before it counts as a hang
RSS_MB=${EDGEQUANT_FUZZ_RSS_MB:-4096}
MALLOC_MB=${EDGEQUANT_FUZZ_MALLOC_MB:-1024}  # a single allocation over this is a finding

CONFIG=${EDGEQUANT_FUZZ_CONFIG:-release}
RUNS=${EDGEQUANT_FUZZ_RUNS:-1000000}
start=$(date +%s)
for t in "${TARGETS[@]}"; do
  swift build -c "$CONFIG" --scratch-path "$B" -j "${EDGEQUANT_FUZZ_BUILD_JOBS:-2}" --sanitize fuzzer --sanitize address \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING --product "fuzz-$t" 2>&1 | grep -E "error|warning: .*\.swift|Compiling|Build" | grep -v "^\[" || true
  [ -x "$B/$CONFIG/fuzz-$t" ] || { echo "fuzz-$t did not build" >&2; exit 2; }
done
echo "fuzz build: $(( $(date +%s) - start )) s" >&2

rm -rf "$B/seeds"
python3 -c "import gguf" 2>/dev/null || pip install -q gguf numpy || true  # for the tiny model seed
PYTHONDONTWRITEBYTECODE=1 python3 Fuzz/seeds.py "$B/seeds"

dict_for() { case "$1" in gguf|model|imatrix) echo Fuzz/dicts/gguf.dict;; *) echo Fuzz/dicts/json.dict;; esac; }

printf "%-12s %12s %8s %6s %6s %8s %8s %7s %6s\n" target executions crashes hangs ooms cov ft corpus seconds
# One libFuzzer process per core (EDGEQUANT_FUZZ_JOBS, default 2): each target's row and verdict go
# to files and are printed in target order when all are done.
JOBS=${EDGEQUANT_FUZZ_JOBS:-2}
fuzz_target() {
  local t=$1 corpus="$B/corpus/$1" findings="$B/findings/$1"
  mkdir -p "$corpus" "$findings"
  local execs=0 crashes=0 hangs=0 ooms=0 cov=0 ft=0 tstart runs=0 left log n c f
  tstart=$(date +%s)
  while :; do
    left=$(( SECONDS_PER_TARGET - ($(date +%s) - tstart) ))
    [ "$left" -gt 0 ] && [ "$execs" -lt "$RUNS" ] && [ $((crashes + hangs + ooms)) -lt 5 ] || break
    log="$findings/run-$$-$runs.log"; runs=$((runs + 1))  # per process: sessions may overlap
    set +e
    SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=0:abort_on_error=0 \
      "$B/$CONFIG/fuzz-$t" "$corpus" "$B/seeds/$t" -dict="$(dict_for "$t")" -max_total_time="$left" -runs=$((RUNS - execs)) -timeout="$TIMEOUT" \
      -rss_limit_mb="$RSS_MB" -malloc_limit_mb="$MALLOC_MB" -max_len=400000 -len_control=200 -print_final_stats=1 \
      -artifact_prefix="$findings/" > "$log" 2>&1
    set -e
    # executions: the final stats, or (after a finding, which ends the run early) the last status line
    n=$(grep -oE "stat::number_of_executed_units: [0-9]+" "$log" | grep -oE "[0-9]+$" | tail -1)
    [ -n "$n" ] || n=$(grep -oE "^#[0-9]+" "$log" | tr -d '#' | tail -1)
    execs=$((execs + ${n:-0}))
    c=$(grep -oE " cov: [0-9]+" "$log" | grep -oE "[0-9]+" | tail -1); [ -z "$c" ] || [ "$c" -le "$cov" ] || cov=$c
    f=$(grep -oE " ft: [0-9]+" "$log" | grep -oE "[0-9]+" | tail -1); [ -z "$f" ] || [ "$f" -le "$ft" ] || ft=$f
    if grep -qE "ERROR: libFuzzer: timeout" "$log"; then hangs=$((hangs + 1))
    elif grep -qE "ERROR: libFuzzer: (out-of-memory|malloc)|allocation-size-too-big|requested allocation size .* exceeds" "$log"; then ooms=$((ooms + 1))
    elif grep -qE "ERROR: (libFuzzer|AddressSanitizer)|Fatal error|SUMMARY: " "$log"; then crashes=$((crashes + 1))
    elif ! grep -q "Done [0-9]* runs" "$log"; then
      echo "fuzz-$t: stopped without a verdict, see $log" >&2; crashes=$((crashes + 1))
    fi
    if [ $((crashes + hangs + ooms)) -gt 0 ] && grep -qE "ERROR|Fatal error" "$log"; then
      echo "fuzz-$t: $(grep -m1 -E "ERROR|Fatal error" "$log" | cut -c1-200)" >&2
      grep -m1 -E "Test unit written to" "$log" >&2 || true
    fi
  done
  printf "%-12s %12d %8d %6d %6d %8d %8d %7d %6d\n" "$t" "$execs" "$crashes" "$hangs" "$ooms" "$cov" "$ft" \
    "$(ls "$corpus" | wc -l)" $(( $(date +%s) - tstart )) > "$B/row-$t"
  [ $((crashes + hangs + ooms)) -eq 0 ] && echo ok > "$B/verdict-$t" || echo bad > "$B/verdict-$t"
}
rm -f "$B"/row-* "$B"/verdict-*
for t in "${TARGETS[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 0.2; done
  fuzz_target "$t" &
done
wait
bad=0
for t in "${TARGETS[@]}"; do
  cat "$B/row-$t" 2>/dev/null || echo "$t: no result"
  [ "$(cat "$B/verdict-$t" 2>/dev/null)" = ok ] || bad=1
done
exit $bad
