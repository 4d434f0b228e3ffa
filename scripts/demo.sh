#!/usr/bin/env bash
# Installs dependencies, builds Ember, and profiles a small workload whose
# CPU splits 60/30/10 between three callers of one function. Shows the
# hottest stacks and writes an interactive flamegraph.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "demo.sh: run as root: Ember loads a BPF program" >&2
  exit 1
fi
./scripts/install-deps.sh
./scripts/build.sh
out="$PWD/ember-demo"
echo
echo "== ember record -F 99 -o $out.html -o $out.folded -- ratio_fp 5"
build/ember record -F 99 -o "$out.html" -o "$out.folded" -- build/tests/fixtures/ratio_fp 5
echo
echo "== hottest stacks (samples, root first)"
sort -t' ' -k2 -nr "$out.folded" | head -5 | awk '{c=$NF; $NF=""; printf "%6d  %s\n", c, $0}'
echo
echo "Flamegraph: $out.html (open it in a browser; click to zoom, Ctrl-F to search)"
echo "Whole system for 10 s: build/ember record -a -d 10s -o system.html"
