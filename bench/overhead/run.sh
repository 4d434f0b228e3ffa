#!/usr/bin/env bash
# bench/overhead: what does whole-system profiling at 100 Hz cost?
#
# Runs the same fixed amount of CPU-bound work (one copy of ratio_fp per CPU)
#   - alone,
#   - under `ember record -a -F 100`,
#   - under `perf record -F 100 -a -g`,
#   - under bpftrace `profile:hz:100` counting kernel+user stacks,
#   - under bcc's `profile-bpfcc -F 100` when kernel headers exist for it,
# REPS times each, interleaved, and prints medians of:
#   - the workload's wall time and slowdown against running alone,
#   - the profiler's own CPU seconds (user+sys) and peak RSS,
#   - the BPF sampling program's ns per run (kernel.bpf_stats_enabled),
#   - samples collected.
#
# Usage (root): bench/overhead/run.sh [ROUNDS] [REPS]
# Needs: build/ember and build/tests/fixtures/ratio_fp (scripts/build.sh),
#        scripts/install-deps.sh --bench for perf and bpftrace.
set -uo pipefail
cd "$(dirname "$0")/../.."

ROUNDS="${1:-40000}"   # about 9 s of work per copy on the reference machine
REPS="${2:-3}"
EMBER=build/ember
WORKLOAD=build/tests/fixtures/ratio_fp
NCPU=$(nproc)
TMP=$(mktemp -d /tmp/ember-bench-XXXXXX)
trap 'rm -rf "$TMP"; sysctl -q kernel.bpf_stats_enabled="$old_stats" 2>/dev/null' EXIT

[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 1; }
[ -x "$EMBER" ] && [ -x "$WORKLOAD" ] || { echo "build first: scripts/build.sh" >&2; exit 1; }
old_stats=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -q kernel.bpf_stats_enabled=1

# Runs NCPU copies of the workload and prints the wall time in seconds.
run_workload() {
  local start end
  start=$(date +%s.%N)
  for _ in $(seq "$NCPU"); do "$WORKLOAD" -n "$ROUNDS" & done
  wait
  end=$(date +%s.%N)
  echo "$end - $start" | bc -l
}

# Sums run_time_ns and run_cnt of loaded perf_event programs whose name
# matches $1, printing "ns_per_run runs".
bpf_prog_stats() {
  bpftool prog show 2>/dev/null | awk -v pat="$1" '
    /^[0-9]+: perf_event/ && $0 ~ pat {
      for (i = 1; i <= NF; i++) {
        if ($i == "run_time_ns") t += $(i+1);
        if ($i == "run_cnt") c += $(i+1);
      }
    }
    END { if (c > 0) printf "%.0f %d\n", t / c, c; else print "- 0" }'
}

# profile <name> <ready-seconds> <command...>: starts the profiler under
# /usr/bin/time, waits until it is ready, runs the workload, stops the
# profiler with SIGINT and appends one result line to $TMP/<name>.
profile() {
  local name=$1 ready=$2; shift 2
  /usr/bin/time -f "%U %S %M" -o "$TMP/time.$name" "$@" >"$TMP/out.$name" 2>"$TMP/err.$name" &
  local tpid=$!
  sleep "$ready"
  # The profiler itself is the child of `time`.
  local ppid
  ppid=$(pgrep -P "$tpid" | head -1)
  local wall
  wall=$(run_workload)
  local stats
  case "$name" in
    ember) stats=$(bpf_prog_stats ember_sample) ;;
    bpftrace) stats=$(bpf_prog_stats 'name 100 ') ;;  # bpftrace names it after the rate
    bcc) stats=$(bpf_prog_stats do_perf_event) ;;
    *) stats="- 0" ;;
  esac
  kill -INT "$ppid" 2>/dev/null
  wait "$tpid" 2>/dev/null
  # `time` prefixes a line when the command was signaled; values are last.
  read -r u s rss < <(tail -1 "$TMP/time.$name")
  local samples="-"
  case "$name" in
    ember) samples=$(sed -n 's/^ember: \([0-9]*\) samples.*/\1/p' "$TMP/err.$name") ;;
    perf) samples=$(sed -n 's/.*(\([0-9]*\) samples).*/\1/p' "$TMP/err.$name") ;;
    bpftrace) samples=$(awk -F': ' '/^\]: / || /, \]: / {s += $NF} END {print s+0}' "$TMP/out.$name") ;;
  esac
  echo "$wall $(echo "$u + $s" | bc -l) $rss $stats $samples" >> "$TMP/$name"
}

median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "-"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

profilers=(alone ember perf bpftrace)
have_bcc=0
if command -v profile-bpfcc >/dev/null && [ -d "/lib/modules/$(uname -r)/build" ]; then
  profilers+=(bcc); have_bcc=1
fi

echo "workload: $NCPU x ratio_fp -n $ROUNDS; $REPS repetitions each; kernel $(uname -r)"
for rep in $(seq "$REPS"); do
  for p in "${profilers[@]}"; do
    case "$p" in
      alone) echo "$(run_workload) 0 0 - 0 -" >> "$TMP/alone" ;;
      ember) profile ember 1 "$EMBER" record -a -F 100 -o "$TMP/ember.pb.gz" ;;
      perf) command -v perf >/dev/null && profile perf 1 perf record -F 100 -a -g -o "$TMP/perf.data" ;;
      bpftrace) command -v bpftrace >/dev/null &&
          profile bpftrace 3 bpftrace -e 'profile:hz:100 { @[kstack, ustack] = count(); }' ;;
      bcc) profile bcc 3 profile-bpfcc -F 100 -f ;;
    esac
  done
  echo "  repetition $rep done" >&2
done

base=$(cut -d' ' -f1 "$TMP/alone" | median)
printf "\n%-34s %9s %9s %11s %12s %13s %8s\n" "profiler" "wall_s" "slowdown" "prof_cpu_s" "peak_rss_MB" "bpf_ns/run" "samples"
for p in "${profilers[@]}"; do
  [ -f "$TMP/$p" ] || continue
  wall=$(cut -d' ' -f1 "$TMP/$p" | median)
  cpu=$(cut -d' ' -f2 "$TMP/$p" | median)
  rss=$(cut -d' ' -f3 "$TMP/$p" | median)
  ns=$(cut -d' ' -f4 "$TMP/$p" | grep -v - | median)
  samples=$(cut -d' ' -f6 "$TMP/$p" | grep -v - | median)
  case "$p" in
    alone) label="alone" ;;
    ember) label="ember record -a -F 100" ;;
    perf) label="perf record -F 100 -a -g" ;;
    bpftrace) label="bpftrace profile:hz:100 k+u stacks" ;;
    bcc) label="profile-bpfcc -F 100" ;;
  esac
  if [ "$p" = alone ]; then
    printf "%-34s %9.2f %9s %11s %12s %13s %8s\n" "$label" "$wall" "1.000" "-" "-" "-" "-"
  else
    printf "%-34s %9.2f %9.3f %11.2f %12.1f %13s %8s\n" "$label" "$wall" \
      "$(echo "$wall / $base" | bc -l)" "$cpu" "$(echo "$rss / 1024" | bc -l)" "$ns" "$samples"
  fi
done
[ "$have_bcc" -eq 1 ] || echo "(bcc profile-bpfcc skipped: it needs kernel headers in /lib/modules/$(uname -r)/build)"
echo "(libbpf-tools' profile is not packaged in Debian 12; not compared)"
echo "(perf's CPU and RSS exclude 'perf report', which symbolizes; Ember's include symbolization)"
