#!/usr/bin/env bash
# Runs every libFuzzer target (tests/fuzz) for SECONDS each and prints, per
# target, the inputs it executed and what it found. Exit code 1 if any
# target crashed, leaked, hung or ran out of memory; the input that did it
# is kept in BUILD/fuzz/artifacts/ (add it, as hex, to
# tests/fuzz/regressions/<target>/; ctest's fuzz_replay.* then replays it).
#
#   scripts/fuzz.sh [SECONDS] [BUILD_DIR] [TARGET...]
#                                  (defaults: 30, build-fuzz, every target)
#
# BUILD_DIR must be configured with -DEMBER_FUZZ=ON (scripts/sanitize.sh
# does). Each target's corpus grows in BUILD/fuzz/corpus/<target> across
# runs; it starts from the seeds the build made and every input in
# tests/fuzz/regressions/<target>/ (inputs that once failed, as hex text).
#
# FUZZ_JOBS targets run at once (default: one per CPU). Fuzzing is pure CPU
# and nothing timing-sensitive runs beside it, so on CI's 2 cores this halves
# the fuzzing step (9 targets x 30 s: 270 s serially).
set -uo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
build="${2:-build-fuzz}"
shift $(( $# < 2 ? $# : 2 ))
only=("$@")
dir="$build/fuzz"
# The seed corpora: this build's, or another build's (FUZZ_SEEDS, e.g.
# build-sanitize/fuzz/seeds, when only the fuzz targets were built here).
seeds="${FUZZ_SEEDS:-$dir/seeds}"
if ! ls "$dir"/*_fuzz >/dev/null 2>&1; then
  echo "fuzz.sh: no fuzz targets in $dir (configure with -DEMBER_FUZZ=ON, or run scripts/sanitize.sh)" >&2
  exit 2
fi
seeds_of() {
  case "$1" in
    elf_fuzz|unwind_table_fuzz) echo elf ;;
    cfi_fuzz) echo cfi ;;
    text_parsers_fuzz) echo text ;;
    config_fuzz) echo config ;;
    kube_json_fuzz) echo kube ;;
    metrics_request_fuzz) echo http ;;
    ring_record_fuzz) echo ring ;;
    profile_reader_fuzz) echo profile ;;
    *) echo none ;;
  esac
}
mkdir -p "$dir/artifacts" "$dir/logs"
# Leaks count as failures; UBSan already aborts (-fno-sanitize-recover).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
jobs="${FUZZ_JOBS:-$(nproc)}"
# Runs one target; its result line (and, on failure, the log's tail) go to
# $dir/logs/<target>.result, printed in order once every target is done.
run_one() {
  local t="$1" name corpus extra log rc execs size result
  name=$(basename "$t")
  corpus="$dir/corpus/$name"
  mkdir -p "$corpus"
  extra=()
  [ -d "$seeds/$(seeds_of "$name")" ] && extra+=("$seeds/$(seeds_of "$name")")
  if [ -d "tests/fuzz/regressions/$name" ]; then
    # Stored as hex text (no binaries in the repository): decoded for libFuzzer.
    rm -rf "$dir/regressions/$name" && mkdir -p "$dir/regressions/$name"
    for h in "tests/fuzz/regressions/$name"/*.hex; do
      python3 -c 'import sys; open(sys.argv[2], "wb").write(bytes.fromhex(open(sys.argv[1]).read()))' \
        "$h" "$dir/regressions/$name/$(basename "$h" .hex)"
    done
    extra+=("$dir/regressions/$name")
  fi
  log="$dir/logs/$name.log"
  "$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
       -print_final_stats=1 -artifact_prefix="$dir/artifacts/$name-" "$corpus" "${extra[@]}" >"$log" 2>&1
  rc=$?
  execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log" | tail -n 1)
  size=$(find "$corpus" -type f | wc -l)
  if [ "$rc" -eq 0 ]; then
    result=ok
  else
    result="FAILED (exit $rc): $(grep -m1 -E 'ERROR: |runtime error|SUMMARY' "$log" | cut -c1-120)"
  fi
  {
    printf '%-22s %12s %8s  %s\n' "$name" "${execs:-?}" "$size" "$result"
    if [ "$rc" -ne 0 ]; then
      grep -m1 -E "Test unit written to" "$log" || true
      tail -n 40 "$log" | sed 's/^/    /'
    fi
  } >"$dir/logs/$name.result"
  return "$rc"
}
targets=()
for t in "$dir"/*_fuzz; do
  name=$(basename "$t")
  if [ "${#only[@]}" -gt 0 ] && [[ ! " ${only[*]} " == *" $name "* ]]; then continue; fi
  targets+=("$t")
  rm -f "$dir/logs/$name.result"
done
failed=0
running=0
for t in "${targets[@]}"; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n || failed=1
    running=$((running - 1))
  fi
  run_one "$t" &
  running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
  wait -n || failed=1
  running=$((running - 1))
done
printf '%-22s %12s %8s  %s\n' target executions corpus result
for t in "${targets[@]}"; do
  name=$(basename "$t")
  if [ -f "$dir/logs/$name.result" ]; then
    cat "$dir/logs/$name.result"
    grep -q '  ok$' "$dir/logs/$name.result" || failed=1
  else
    printf '%-22s %12s %8s  %s\n' "$name" "?" "?" "FAILED: no result"
    failed=1
  fi
done
exit "$failed"
