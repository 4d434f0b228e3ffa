#!/usr/bin/env bash
# bench/unwind: how complete are user stacks of code without frame pointers,
# and what does it cost?
#
# The same workloads (tests/fixtures/unwind_target.c built with
# -O2 -fomit-frame-pointer, calling through Debian's libc) are profiled by:
#   - ember record --unwinder tables (the BPF table-driven unwinder)
#   - ember record --unwinder fp     (frame pointers only)
#   - perf record --call-graph dwarf (copies 8 KiB of stack per sample, unwinds later)
#   - perf record -g                 (frame pointers)
# and the script prints, per workload and profiler, the fraction of samples
# whose stack reaches main, then Ember's BPF ns per sample (median of REPS),
# its kernel map memory and peak RSS, and the time to build unwind tables for
# libc, libstdc++ and the ember binary.
#
# Usage (root): bench/unwind/run.sh [SECONDS] [REPS]
set -uo pipefail
cd "$(dirname "$0")/../.."

SECS="${1:-5}"
REPS="${2:-3}"
EMBER=build/ember
TARGET=build/tests/fixtures/unwind_nofp
TMP=$(mktemp -d /tmp/ember-bench-unwind-XXXXXX)
trap 'rm -rf "$TMP"' EXIT

[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 1; }
[ -x "$EMBER" ] && [ -x "$TARGET" ] || { echo "build first: scripts/build.sh" >&2; exit 1; }
command -v perf >/dev/null || { echo "perf missing: scripts/install-deps.sh --bench" >&2; exit 1; }

median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "-"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# Fraction of the workload's samples (comm unwind_nofp) with `main` in a folded file.
folded_main() {
  awk '$0 ~ /^unwind_nofp;/ {c=$NF; t+=c; if ($0 ~ /;main;/) m+=c} END {if (t) printf "%.4f %d\n", m/t, t; else print "0 0"}' "$1"
}
# Same for `perf script` output: a sample is a header line and its frames.
perf_main() {
  perf script -i "$1" 2>/dev/null | awk '
    /^unwind_nofp / {if (in_s) {t++; if (has) m++} in_s=1; has=0; next}
    /^[^ \t]/ {if (in_s) {t++; if (has) m++} in_s=0; next}
    in_s && ($2 ~ /^main(\+|$)/) {has=1}
    END {if (in_s) {t++; if (has) m++} if (t) printf "%.4f %d\n", m/t, t; else print "0 0"}'
}

workloads=(ratio qsort recurse)
printf "%-9s %-30s %8s %8s\n" "workload" "profiler" "samples" "to_main"
for w in "${workloads[@]}"; do
  for rep in $(seq "$REPS"); do
    /usr/bin/time -f "%M" -o "$TMP/rss" "$EMBER" record -v --bpf-stats --unwinder tables -F 99 \
        -o "$TMP/t.folded" -- "$TARGET" "$w" "$SECS" >/dev/null 2>"$TMP/t.err"
    read -r frac n < <(folded_main "$TMP/t.folded")
    echo "$frac" >> "$TMP/$w.tables"
    sed -n 's/^ember: BPF sampler: .* \([0-9]*\) ns per run/\1/p' "$TMP/t.err" >> "$TMP/ns.tables"
    tail -1 "$TMP/rss" >> "$TMP/rss.tables"
    sed -n 's/.*ember_unwind_map_bytes{} \([0-9]*\)/\1/p' "$TMP/t.err" >> "$TMP/mapbytes"
    sed -n 's/.*ember_unwind_rows{} \([0-9]*\)/\1/p' "$TMP/t.err" >> "$TMP/rows"
    sed -n 's/.*ember_unwind_row_bytes{} \([0-9]*\)/\1/p' "$TMP/t.err" >> "$TMP/rowbytes"
    echo "$n" >> "$TMP/$w.tables.n"

    "$EMBER" record --bpf-stats --unwinder fp -F 99 -o "$TMP/f.folded" -- "$TARGET" "$w" "$SECS" \
        >/dev/null 2>"$TMP/f.err"
    read -r frac n < <(folded_main "$TMP/f.folded")
    echo "$frac" >> "$TMP/$w.fp"
    echo "$n" >> "$TMP/$w.fp.n"
    sed -n 's/^ember: BPF sampler: .* \([0-9]*\) ns per run/\1/p' "$TMP/f.err" >> "$TMP/ns.fp"
  done
  perf record -q --call-graph dwarf -F 99 -o "$TMP/d.data" -- "$TARGET" "$w" "$SECS" >/dev/null 2>&1
  read -r dfrac dn < <(perf_main "$TMP/d.data")
  perf record -q -g -F 99 -o "$TMP/g.data" -- "$TARGET" "$w" "$SECS" >/dev/null 2>&1
  read -r gfrac gn < <(perf_main "$TMP/g.data")
  printf "%-9s %-30s %8s %8s\n" "$w" "ember --unwinder tables" "$(median < "$TMP/$w.tables.n")" "$(median < "$TMP/$w.tables")"
  printf "%-9s %-30s %8s %8s\n" "$w" "ember --unwinder fp" "$(median < "$TMP/$w.fp.n")" "$(median < "$TMP/$w.fp")"
  printf "%-9s %-30s %8s %8s\n" "$w" "perf record --call-graph dwarf" "$dn" "$dfrac"
  printf "%-9s %-30s %8s %8s\n" "$w" "perf record -g" "$gn" "$gfrac"
done

echo
echo "BPF ns per sample (median of $(wc -l < "$TMP/ns.tables") runs): tables $(median < "$TMP/ns.tables"), fp $(median < "$TMP/ns.fp")"
rows=$(median < "$TMP/rows"); rowbytes=$(median < "$TMP/rowbytes")
echo "unwind maps (preallocated kernel memory): $(( $(median < "$TMP/mapbytes") / 1048576 )) MiB; rows loaded: $rows (row pages in use: $rowbytes bytes, 4 bytes/row)"
echo "ember peak RSS (KiB, median): $(median < "$TMP/rss.tables")"
echo
echo "Table build times (cold, median of 7):"
build/ember_bench_tables /lib/x86_64-linux-gnu/libc.so.6 \
  "$(readlink -f /usr/lib/x86_64-linux-gnu/libstdc++.so.6)" "$(readlink -f "$EMBER")"
