#!/usr/bin/env bash
# Memory and UB checking, in two builds:
#   build-sanitize  the whole project with the plain build's compiler (gcc)
#                   under AddressSanitizer and UndefinedBehaviorSanitizer; the
#                   unit and end-to-end tests run once against it. The same
#                   compiler keeps the fixtures' code, whose shape the tests
#                   know (fixtures themselves are never instrumented).
#   build-fuzz      clang, for libFuzzer: the fuzz targets (tests/fuzz) under
#                   ASan and UBSan, each run for FUZZ_SECONDS.
# Any sanitizer report fails the run: UBSan aborts on the first error and
# LeakSanitizer fails a process that leaks.
#
#   scripts/sanitize.sh [FUZZ_SECONDS]     (default 30; 0 skips fuzzing)
#
# The kernel matrix is not run here: it checks kernels, which the plain build
# covers; nor the container image test, whose image holds the plain build. Run as root (the end-to-end tests load BPF), after install-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzz_seconds="${1:-30}"
jobs="$(nproc)"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
rc=0
times=()
mark=$SECONDS
step_done() {
  times+=("$(printf '%-26s %5d s' "$1" $((SECONDS - mark)))")
  mark=$SECONDS
}

# -O1 -g1, not RelWithDebInfo's -O2 -g: half the compile time (a test file
# with gtest: 48 s at -O2 -g, 24 s at -O1 -g1; the whole build took 1058 s of
# CI's 3039), with ASan reports still naming file:line. The fixtures set
# their own -O2 -g, so their code keeps the shape the tests expect.
san_flags="-O1 -g1 -DNDEBUG"
cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEMBER_SANITIZE=ON \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="$san_flags" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$san_flags"
cmake --build build-sanitize -j"$jobs"
step_done "sanitizer build"
ctest --test-dir build-sanitize --output-on-failure --timeout 900 -LE "kernels|image" || rc=$?
step_done "tests under sanitizers"

if [ "$fuzz_seconds" -gt 0 ]; then
  cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
    -DCMAKE_CXX_COMPILER=clang++ -DEMBER_SANITIZE=ON -DEMBER_FUZZ=ON
  # Only the targets: their seeds are build-sanitize's (made from its fixtures).
  cmake --build build-fuzz -j"$jobs" --target fuzz_targets
  step_done "fuzz build"
  FUZZ_SEEDS=build-sanitize/fuzz/seeds ./scripts/fuzz.sh "$fuzz_seconds" build-fuzz || rc=1
  step_done "fuzzing"
fi
echo "sanitize.sh: time by step"
printf '  %s\n' "${times[@]}"
exit "$rc"
