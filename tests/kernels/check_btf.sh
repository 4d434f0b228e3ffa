#!/bin/sh
# Build-time check: relocates every CO-RE access of Ember's BPF object against
# every kernel BTF this machine has (the running kernel's, and those of the
# kernel matrix, fetched by `tests/kernels/matrix.py fetch`) and loads the
# programs Ember would use on each, without attaching. A field whose type,
# size or name differs on one of those kernels fails the build here, in
# seconds, naming the field and the kernel.
#
#   check_btf.sh EMBER_BINARY
#
# Loading BPF needs root (or CAP_BPF and CAP_PERFMON); without them the check
# is skipped, loudly.
set -u
ember=$1
here=$(dirname "$0")
if [ "$(id -u)" -ne 0 ]; then
  echo "kernel BTF check: SKIPPED (not root; loading BPF needs privileges)"
  exit 0
fi
set --
[ -r /sys/kernel/btf/vmlinux ] && set -- --btf /sys/kernel/btf/vmlinux
for btf in $(/usr/bin/python3 "$here/matrix.py" btf); do
  set -- "$@" --btf "$btf"
done
if [ $# -eq 0 ]; then
  echo "kernel BTF check: SKIPPED (no kernel BTF here; run tests/kernels/matrix.py fetch)"
  exit 0
fi
out=$("$ember" kernel-check "$@" 2>&1)
rc=$?
if [ $rc -eq 0 ]; then
  echo "kernel BTF check: $(($# / 2)) kernels OK"
  exit 0
fi
echo "$out"
if [ $rc -eq 3 ]; then
  echo "kernel BTF check: SKIPPED (this machine cannot load BPF)"
  exit 0
fi
echo "kernel BTF check: FAILED: Ember's BPF object does not load on every kernel above" >&2
exit 1
