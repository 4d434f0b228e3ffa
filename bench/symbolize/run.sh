#!/usr/bin/env bash
# bench/symbolize: how fast does Ember turn addresses into functions, files,
# lines and inlined frames, against the usual tools, doing the same work?
#
# Every return address of a large binary with debug info (the address after
# each `call` in .text; Debian's python3.11d by default) is resolved with
# inlined frames, in one process per tool, by:
#   - Ember cold:  build/ember_bench_symbolize, a fresh process that opens
#                  the ELF, loads it and resolves everything once;
#   - Ember warm:  the same process's next passes over the same addresses,
#                  everything parsed (ns per lookup; with and without the
#                  per-address cache);
#   - llvm-symbolizer --inlining   (Debian llvm)
#   - eu-addr2line -i -f           (elfutils)
#   - addr2line -f -i              (binutils)
# Each reads the addresses on stdin (the fastest way for each: argv is no
# faster) and writes to /dev/null. Every tool runs REPS times, interleaved;
# the table shows medians of wall time, CPU time (user+sys) and peak RSS
# (/usr/bin/time %M). Ember's answers are then compared with
# llvm-symbolizer's on every address: function, file name and line of every
# frame, so the speeds are for the same work.
#
# Usage: bench/symbolize/run.sh [REPS] [BINARY]
#   EU_REPS=N  runs of eu-addr2line (default REPS; it takes minutes per run)
# Needs: build/ember_bench_symbolize (scripts/build.sh), and the Debian
#        packages python3.11-dbg llvm elfutils binutils time python3.
set -uo pipefail
cd "$(dirname "$0")/../.."

REPS="${1:-3}"
BIN="${2:-$(command -v python3.11d || echo /usr/bin/python3.11d)}"
EU_REPS="${EU_REPS:-$REPS}"
BENCH=build/ember_bench_symbolize
TMP=$(mktemp -d /tmp/ember-bench-symbolize-XXXXXX)
trap 'rm -rf "$TMP"' EXIT

[ -x "$BENCH" ] || { echo "build first: scripts/build.sh (target ember_bench_symbolize)" >&2; exit 1; }
[ -r "$BIN" ] || { echo "$BIN missing: apt-get install python3.11-dbg, or pass a binary" >&2; exit 1; }
for t in objdump /usr/bin/time python3; do
  command -v "$t" >/dev/null || { echo "$t missing (binutils, time, python3)" >&2; exit 1; }
done

median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "-"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# Where the DWARF is: in the binary, or in a separate file found by build-id.
build_id=$(readelf -n "$BIN" 2>/dev/null | awk '/Build ID:/ {print $3; exit}')
if readelf -S "$BIN" 2>/dev/null | grep -q '\.debug_info'; then
  debug_where="in the binary itself (.debug_info)"
else
  dbg="/usr/lib/debug/.build-id/${build_id:0:2}/${build_id:2}.debug"
  if [ -r "$dbg" ]; then debug_where="separate: $dbg"
  else echo "$BIN has no debug info (no .debug_info, no $dbg)" >&2; exit 1; fi
fi

# Return addresses: the instruction after every call in .text.
objdump -d --no-show-raw-insn -j .text "$BIN" |
  awk '/\tcall/ {want=1; next} want && /^ *[0-9a-f]+:/ {sub(":", "", $1); print "0x" $1; want=0}' \
  > "$TMP/addrs"
N=$(wc -l < "$TMP/addrs")
[ "$N" -gt 0 ] || { echo "no call instructions found in $BIN" >&2; exit 1; }

echo "binary: $BIN ($(du -h "$(readlink -f "$BIN")" | cut -f1), build-id $build_id)"
echo "debug info: $debug_where"
echo "addresses: $N return addresses (after each call in .text, objdump -d)"
echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), $REPS runs each (eu-addr2line: $EU_REPS)"
echo

declare -A CMD
NAMES=("ember cold" "llvm-symbolizer" "addr2line" "eu-addr2line")
CMD["ember cold"]="$BENCH --warm 0 --output /dev/null $BIN $TMP/addrs"
CMD["llvm-symbolizer"]="llvm-symbolizer --inlining --obj=$BIN < $TMP/addrs > /dev/null"
CMD["addr2line"]="addr2line -f -i -e $BIN < $TMP/addrs > /dev/null"
CMD["eu-addr2line"]="eu-addr2line -i -f -e $BIN < $TMP/addrs > /dev/null"
declare -A HAVE
for name in "${NAMES[@]}"; do
  exe=${CMD[$name]%% *}
  if command -v "$exe" >/dev/null; then HAVE[$name]=1
  else echo "skipping $name: $exe not installed"; fi
done

echo "commands:"
for name in "${NAMES[@]}"; do [ -n "${HAVE[$name]:-}" ] && printf "  %-16s %s\n" "$name" "${CMD[$name]}"; done
echo "  ember warm       $BENCH --warm 2 [--no-cache] $BIN $TMP/addrs"
echo

# One timed run: appends wall seconds, CPU seconds and peak RSS (KiB).
run_one() {
  local name="$1" key="${1// /_}" start end
  start=$(date +%s%N)
  /usr/bin/time -f "%U %S %M" -o "$TMP/time" sh -c "${CMD[$name]}" 2>"$TMP/err" ||
    { echo "$name failed:"; cat "$TMP/err"; }
  end=$(date +%s%N)
  echo "($end - $start) / 1000000000" | bc -l >> "$TMP/$key.wall"
  read -r u s m < <(tail -1 "$TMP/time")
  echo "$u + $s" | bc -l >> "$TMP/$key.cpu"
  echo "$m" >> "$TMP/$key.rss"
}

for rep in $(seq "$REPS"); do
  for name in "${NAMES[@]}"; do
    [ -n "${HAVE[$name]:-}" ] || continue
    [ "$name" = "eu-addr2line" ] && [ "$rep" -gt "$EU_REPS" ] && continue
    run_one "$name"
  done
  # Warm: ns per lookup, median of the two warm passes, per run.
  for mode in cached uncached; do
    flag=""; [ "$mode" = uncached ] && flag="--no-cache"
    /usr/bin/time -f "%M" -o "$TMP/time" "$BENCH" --warm 2 $flag "$BIN" "$TMP/addrs" 2>"$TMP/warm.err" >/dev/null
    sed -n 's/^warm_ns_per_lookup: //p' "$TMP/warm.err" >> "$TMP/warm_$mode.ns"
    sed -n 's/^warm_shuffled_ns_per_lookup: \([0-9.]*\).*/\1/p' "$TMP/warm.err" >> "$TMP/warm_$mode.shuf"
    tail -1 "$TMP/time" >> "$TMP/warm_$mode.rss"
  done
done

printf "%-26s %9s %9s %9s %12s %9s\n" "tool" "addresses" "wall_s" "cpu_s" "addresses/s" "rss_MB"
for name in "${NAMES[@]}"; do
  key=${name// /_}
  [ -s "$TMP/$key.wall" ] || continue
  wall=$(median < "$TMP/$key.wall"); cpu=$(median < "$TMP/$key.cpu"); rss=$(median < "$TMP/$key.rss")
  echo "$wall" > "$TMP/$key.med"; echo "$cpu" > "$TMP/$key.cmed"
  printf "%-26s %9d %9.3f %9.3f %12.0f %9.1f\n" "$name" "$N" "$wall" "$cpu" "$(echo "$N / $wall" | bc -l)" \
    "$(echo "$rss / 1024" | bc -l)"
done
for mode in cached uncached; do
  ns=$(median < "$TMP/warm_$mode.ns"); shuf=$(median < "$TMP/warm_$mode.shuf")
  rss=$(median < "$TMP/warm_$mode.rss")
  printf "%-26s %9d %9.3f %9s %12.0f %9.1f   %.0f ns/lookup (shuffled order: %.0f ns)\n" "ember warm ($mode)" "$N" \
    "$(echo "$ns * $N / 1000000000" | bc -l)" "-" "$(echo "1000000000 / $ns" | bc -l)" \
    "$(echo "$rss / 1024" | bc -l)" "$ns" "$shuf"
done

# Ember cold against the fastest other tool.
best=""; for name in llvm-symbolizer addr2line eu-addr2line; do
  k=${name// /_}
  [ -s "$TMP/$k.med" ] || continue
  if [ -z "$best" ] || [ "$(echo "$(cat "$TMP/$k.med") < $(cat "$TMP/${best// /_}.med")" | bc -l)" = 1 ]; then best=$name; fi
done
if [ -n "$best" ]; then
  bk=${best// /_}
  echo
  printf "ember cold vs the fastest other tool (%s): %.2fx its speed by wall time, %.2fx by CPU time\n" "$best" \
    "$(echo "$(cat "$TMP/$bk.med") / $(cat "$TMP/ember_cold.med")" | bc -l)" \
    "$(echo "$(cat "$TMP/$bk.cmed") / $(cat "$TMP/ember_cold.cmed")" | bc -l)"
fi

# Same answers? Ember against llvm-symbolizer on every address.
if [ -n "${HAVE[llvm-symbolizer]:-}" ]; then
  "$BENCH" --warm 0 --output "$TMP/ember.out" "$BIN" "$TMP/addrs" 2>/dev/null
  llvm-symbolizer --inlining --obj="$BIN" < "$TMP/addrs" > "$TMP/llvm.out"
  echo
  python3 - "$TMP/ember.out" "$TMP/llvm.out" <<'EOF'
import os, sys

def blocks(path):
    """Per address: frames as (function, file name, line), innermost first."""
    out, cur = [], []
    with open(path, errors="replace") as f:
        lines = f.read().split("\n")
    i = 0
    while i < len(lines):
        if lines[i] == "":
            if i + 1 < len(lines):
                out.append(cur)
            cur = []
            i += 1
            continue
        name, loc = lines[i], lines[i + 1] if i + 1 < len(lines) else ""
        parts = loc.rsplit(":", 2)  # file:line:column
        path_, line = (parts[0], parts[1]) if len(parts) == 3 else ("??", "0")
        line = int(line) if line.isdigit() else 0
        # No line known: both tools may still name a file (from STT_FILE).
        base = os.path.basename(path_) if path_ != "??" and line else ""
        cur.append(("" if name == "??" else name, base, line))
        i += 2
    return out

ours, theirs = blocks(sys.argv[1]), blocks(sys.argv[2])
same = sum(1 for a, b in zip(ours, theirs) if a == b)
# Where names differ only in which alias or part of a function is shown
# (glibc's __GI_abort for abort, foo.cold), the work done is still the same:
# count the addresses whose frames agree on everything but names, too.
where = lambda frames: [(f, l) for _, f, l in frames]
same_where = sum(1 for a, b in zip(ours, theirs) if where(a) == where(b))
frames = sum(len(b) for b in theirs)
n = max(len(theirs), 1)
print(f"agreement with llvm-symbolizer --inlining: {same} of {len(theirs)} addresses "
      f"({100.0 * same / n:.3f}%) have the same frames "
      f"(function, file name, line of each of {frames} frames); "
      f"{same_where} ({100.0 * same_where / n:.3f}%) the same frames but for names")
shown = 0
for i, (a, b) in enumerate(zip(ours, theirs)):
    if a != b and shown < 5:
        print(f"  differs at address #{i}: ember {a} llvm {b}")
        shown += 1
if len(ours) != len(theirs):
    print(f"  answer counts differ: ember {len(ours)}, llvm {len(theirs)}")
EOF
fi
