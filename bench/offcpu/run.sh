#!/usr/bin/env bash
# bench/offcpu: what does off-CPU profiling cost under a context-switch storm?
#
# Runs a fixed number of round trips of bench/offcpu/pingpong.c (two threads
# passing a byte through two pipes as fast as they can: 100k+ context
# switches per second on two CPUs)
#   - alone,
#   - under `ember record --profile off-cpu -a`,
#   - under `perf record -e sched:sched_switch -g -a`,
#   - under bpftrace counting sched_switch by kernel and user stack, when
#     installed (scripts/install-deps.sh --bench),
# REPS times each, interleaved, and prints medians of:
#   - the ping-pong's wall time and slowdown against running alone,
#   - the profiler process's CPU seconds (user+sys), its BPF programs' run
#     time (kernel.bpf_stats_enabled) and both added up,
#   - what it recorded: Ember's waits measured, drawn into samples and left
#     undrawn (unbiased: see README, Off-CPU); perf's samples (one per switch).
# perf's own kernel-side work (a stack walk and a record per switch) runs in
# the switching threads and shows in the slowdown, not in its CPU column.
#
# Usage (root): bench/offcpu/run.sh [ROUND_TRIPS] [REPS]
# Environment: PIN (default 0): the CPU both ping-pong threads run on, so each
# pass is a switch on that CPU (150k+ per second here; unpinned, each pass
# is a cross-CPU wakeup, about half as many); PIN= leaves them free.
# Needs build/ember (scripts/build.sh); perf and bpftrace from
# scripts/install-deps.sh --bench.
set -uo pipefail
cd "$(dirname "$0")/../.."

TRIPS="${1:-300000}"
REPS="${2:-5}"
EMBER=${EMBER:-build/ember}
TMP=$(mktemp -d /tmp/ember-offcpu-XXXXXX)
old_stats=$(sysctl -n kernel.bpf_stats_enabled)
trap 'rm -rf "$TMP"; sysctl -q kernel.bpf_stats_enabled="$old_stats"' EXIT

[ "$(id -u)" -eq 0 ] || { echo "bench/offcpu: run as root" >&2; exit 1; }
[ -x "$EMBER" ] || { echo "bench/offcpu: build first (scripts/build.sh)" >&2; exit 1; }
cc -O2 -pthread -o "$TMP/pingpong" bench/offcpu/pingpong.c || exit 1
sysctl -q kernel.bpf_stats_enabled=1

# run_pingpong: prints "wall_s switches".
PIN=${PIN-0}
run_pingpong() {
  if [ -n "$PIN" ]; then taskset -c "$PIN" "$TMP/pingpong" "$TRIPS"; else "$TMP/pingpong" "$TRIPS"; fi |
    awk '{print $2, $3}'
}

# Run time in seconds of the loaded BPF programs whose line matches $1.
bpf_seconds() {
  bpftool prog show 2>/dev/null | awk -v pat="$1" '
    $0 ~ pat { for (i = 1; i <= NF; i++) if ($i == "run_time_ns") t += $(i+1) }
    END { printf "%.4f\n", t / 1e9 }'
}

# wait_for FILE PATTERN SECONDS: until the profiler says it is ready.
wait_for() {
  for _ in $(seq $(($3 * 10))); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# profile NAME READY_FILE READY_PATTERN BPF_PATTERN COMMAND...: starts the
# profiler under /usr/bin/time, runs the ping-pong once it is ready, reads
# its BPF run time, stops it with SIGINT and appends a result line to $TMP/NAME.
profile() {
  local name=$1 ready_file=$2 ready_pat=$3 bpf_pat=$4; shift 4
  /usr/bin/time -f "%U %S" -o "$TMP/time.$name" "$@" >"$TMP/out.$name" 2>"$TMP/err.$name" &
  local tpid=$!
  if [ -z "$ready_pat" ]; then
    sleep 2  # perf says nothing when it starts
  elif ! wait_for "$ready_file" "$ready_pat" 30; then
    echo "bench/offcpu: $name did not start:" >&2; cat "$TMP/err.$name" >&2
    kill "$tpid" 2>/dev/null; wait "$tpid" 2>/dev/null; return
  fi
  sleep 0.5
  local pp bpf="0"
  pp=$(run_pingpong)
  [ -n "$bpf_pat" ] && bpf=$(bpf_seconds "$bpf_pat")
  kill -INT "$(pgrep -P "$tpid" | head -1)" 2>/dev/null
  wait "$tpid" 2>/dev/null
  local u s
  read -r u s < <(tail -1 "$TMP/time.$name")
  local events="-"
  case "$name" in
    ember)
      local measured drawn undrawn
      measured=$(sed -n 's/^ember:   ember_bpf_offcpu_intervals_total{} \([0-9]*\)/\1/p' "$TMP/err.$name")
      undrawn=$(sed -n 's/^ember:   ember_bpf_offcpu_intervals_undrawn_total{} \([0-9]*\)/\1/p' "$TMP/err.$name")
      drawn=$(sed -n 's/^ember: \([0-9]*\) samples.*/\1/p' "$TMP/err.$name")
      events="${measured:-0}/${drawn:-0}/${undrawn:-0}" ;;
    perf) events=$(sed -n 's/.*(\([0-9]*\) samples).*/\1/p' "$TMP/err.$name") ;;
    bpftrace) events=$(awk -F': ' '/^\]: / || /, \]: / {s += $NF} END {print s+0}' "$TMP/out.$name") ;;
  esac
  echo "$pp $(echo "$u + $s" | bc -l) $bpf ${events:--}" >> "$TMP/$name"
}

median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "-"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

profilers=(alone ember perf)
command -v bpftrace >/dev/null && profilers+=(bpftrace)
echo "workload: pingpong $TRIPS round trips${PIN:+ on CPU $PIN}; $REPS repetitions each; $(nproc) CPUs; kernel $(uname -r)"
for rep in $(seq "$REPS"); do
  for p in "${profilers[@]}"; do
    case "$p" in
      alone) echo "$(run_pingpong) 0 0 -" >> "$TMP/alone" ;;
      ember) profile ember "$TMP/err.ember" "recording all CPUs" "name ember_s" \
          "$EMBER" record --profile off-cpu -a -v -o "$TMP/ember.pb.gz" ;;
      perf) command -v perf >/dev/null &&
          profile perf "$TMP/err.perf" "" "" perf record -e sched:sched_switch -g -a -o "$TMP/perf.data" ;;
      bpftrace) profile bpftrace "$TMP/out.bpftrace" "Attaching" "sched_switch" \
          bpftrace -e 'tracepoint:sched:sched_switch { @[kstack, ustack] = count(); }' ;;
    esac
  done
  echo "  repetition $rep done" >&2
done

base=$(cut -d' ' -f1 "$TMP/alone" | median)
switches=$(cut -d' ' -f2 "$TMP/alone" | median)
echo "alone: $(echo "$switches / $base" | bc -l | xargs printf '%.0f') voluntary switches per second"
printf "\n%-44s %8s %9s %10s %9s %10s  %s\n" "profiler" "wall_s" "slowdown" "proc_cpu_s" "bpf_cpu_s" "total_cpu" "recorded"
for p in "${profilers[@]}"; do
  [ -f "$TMP/$p" ] || continue
  wall=$(cut -d' ' -f1 "$TMP/$p" | median)
  cpu=$(cut -d' ' -f3 "$TMP/$p" | median)
  bpf=$(cut -d' ' -f4 "$TMP/$p" | median)
  total=$(awk '{print $3 + $4}' "$TMP/$p" | median)
  events=$(cut -d' ' -f5 "$TMP/$p" | sort | sed -n "$(( ($(wc -l < "$TMP/$p") + 1) / 2 ))p")
  case "$p" in
    alone) label="alone" ;;
    ember) label="ember record --profile off-cpu -a" ;;
    perf) label="perf record -e sched:sched_switch -g -a" ;;
    bpftrace) label="bpftrace sched_switch k+u stacks" ;;
  esac
  printf "%-44s %8.3f %9.3f %10.2f %9.2f %10.2f  %s\n" "$label" "$wall" "$(echo "$wall / $base" | bc -l)" \
    "$cpu" "$bpf" "$total" "$events"
done
echo "(recorded: Ember waits measured/samples sent/waits not drawn; perf and bpftrace events)"
command -v bpftrace >/dev/null || echo "(bpftrace not installed: scripts/install-deps.sh --bench)"
echo "(perf's CPU excludes 'perf report', which symbolizes; Ember's includes symbolization)"
