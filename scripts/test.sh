#!/usr/bin/env bash
# Installs dependencies, builds, and runs the whole test suite: unit tests,
# the end-to-end tests (which load real BPF programs, so run as root) and the
# kernel matrix; then the unit and end-to-end tests under the sanitizers, and
# the fuzz targets (scripts/sanitize.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "test.sh: run as root: the end-to-end tests load BPF programs" >&2
  exit 1
fi
# Each step's wall time, printed last: CI shows the end of the output, and
# the whole run must stay well inside CI's budget.
times=()
mark=$SECONDS
step_done() {
  times+=("$(printf '%-28s %5d s' "$1" $((SECONDS - mark)))")
  mark=$SECONDS
}
./scripts/install-deps.sh
# The kernel matrix's kernels (cached in /var/cache/ember/kernels): the build
# checks the BPF object against each one's BTF, and ctest boots each.
/usr/bin/python3 tests/kernels/matrix.py fetch
step_done "install and fetch kernels"
./scripts/build.sh
step_done "build"
cd build
rm -rf kernels && mkdir -p kernels  # each kernel's report (matrix.py run --report)
rc=0
ctest --output-on-failure --timeout 900 || rc=$?
# ctest shows only failures: each kernel's figures, passed or not.
/usr/bin/python3 ../tests/kernels/matrix.py summary kernels/*.json || true
step_done "tests and kernel matrix"
cd ..
# The unit and end-to-end tests again under ASan and UBSan, and every fuzz
# target for 30 s (README: Sanitizers and fuzzing).
./scripts/sanitize.sh 30 || rc=$?
step_done "sanitizers and fuzzing"
echo "test.sh: time by step"
printf '  %s\n' "${times[@]}"
printf '  %-28s %5d s (exit %d)\n' "total" "$SECONDS" "$rc"
exit "$rc"
