#!/usr/bin/env bash
# Builds the whole project with AddressSanitizer and UndefinedBehaviorSanitizer
# (clang), runs the unit and end-to-end tests under them once, then every fuzz
# target for FUZZ_SECONDS each. Any sanitizer report fails the run: UBSan
# aborts on the first error and LeakSanitizer fails a process that leaks.
#
#   scripts/sanitize.sh [FUZZ_SECONDS]     (default 30; 0 skips fuzzing)
#
# The build goes to $SANITIZE_BUILD (default build-sanitize). The kernel
# matrix is not run here: it checks kernels, which the plain build covers.
# Run as root (the end-to-end tests load BPF), after scripts/install-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzz_seconds="${1:-30}"
build="${SANITIZE_BUILD:-build-sanitize}"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
  -DCMAKE_CXX_COMPILER=clang++ -DEMBER_SANITIZE=ON -DEMBER_FUZZ=ON
cmake --build "$build" -j"$(nproc)"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
rc=0
ctest --test-dir "$build" --output-on-failure --timeout 900 -LE kernels || rc=$?
if [ "$fuzz_seconds" -gt 0 ]; then
  ./scripts/fuzz.sh "$fuzz_seconds" "$build" || rc=1
fi
exit "$rc"
