#!/usr/bin/env bash
# bench/overhead/agent_cost.sh: the steady-state cost of `ember agent` per
# sample, beside `perf record -a -g`, at the same rate on the same work.
#
# One copy of ratio_fp per CPU keeps every CPU busy. Each profiler's CPU time
# (the sum of its threads' schedstat, in ns) and its sample count are read
# twice in one run, SHORT_S and LONG_S seconds after it is ready. The cost per
# sample is the slope between the two readings:
#   (cpu_long - cpu_short) / (samples_long - samples_short)
# so start-up (BPF load, the first symbolization of every binary) does not
# hide in it. (Two runs of different lengths were tried first: their start-up
# costs differ by more than the whole steady state, so that slope was noise.)
# Nothing the bench itself starts lands in the window: the CPU readings use
# bash builtins, and the sample counts (a /metrics scrape through curl) are
# read just outside it. Each new process costs the agent its unwind-table
# load and symbols, and each scrape about 1 ms: costs per process and per
# scrape, not per sample, which a reading inside the window added to the
# figure: on the 2-CPU development VM at dc5bdda, 3.43 us per sample (median
# of 5, 2.75-4.51) with the reading inside, 2.36 (2.34-2.51) without.
# Printed per profiler as the median of REPS repetitions:
#   - user-space µs per sample (the slope, utime+stime of the profiler),
#   - BPF ns per sample (kernel.bpf_stats_enabled, Ember's program only),
#   - peak RSS (VmHWM) at the end of the long window,
#   - samples per second.
#
# Usage (root): bench/overhead/agent_cost.sh [SHORT_S] [LONG_S] [REPS] [HZ]
# Needs: build/ember, build/tests/fixtures/ratio_fp, curl; perf for the
# comparison (scripts/install-deps.sh --bench).
set -uo pipefail
cd "$(dirname "$0")/../.."

SHORT_S="${1:-10}"
LONG_S="${2:-60}"
REPS="${3:-3}"
HZ="${4:-100}"
EMBER="${EMBER:-build/ember}"  # EMBER=/path/to/old/ember for a before figure
WORKLOAD=build/tests/fixtures/ratio_fp
NCPU=$(nproc)
PORT=19799
TMP=$(mktemp -d /tmp/ember-cost-XXXXXX)
old_stats=$(sysctl -n kernel.bpf_stats_enabled)
cleanup() {
  pkill -P $$ 2>/dev/null
  rm -rf "$TMP"
  sysctl -q kernel.bpf_stats_enabled="$old_stats" 2>/dev/null
}
trap cleanup EXIT

[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 1; }
[ -x "$EMBER" ] && [ -x "$WORKLOAD" ] || { echo "build first: scripts/build.sh" >&2; exit 1; }
sysctl -q kernel.bpf_stats_enabled=1

cpu_ns() {  # CPU time of every live thread of pid $1, in ns (schedstat: ns, not ticks)
  # Bash builtins only: a process started here would be profiled, and its
  # exec (unwind tables, symbols) would land inside the measured window.
  local f a s=0
  for f in /proc/"$1"/task/*/schedstat; do
    read -r a _ < "$f" 2>/dev/null && s=$((s + a))
  done
  echo "$s"
}
now_s() { echo "$EPOCHREALTIME"; }  # builtin, unlike date
peak_rss_mib() { awk '/^VmHWM:/ { print $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo 0; }
metric() {  # sum of every series of metric $1 on the agent's /metrics
  curl -s "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $2 } END { printf "%d\n", s }'
}
bpf_ns_runs() {  # "run_time_ns run_cnt" of Ember's sampling program
  bpftool prog show 2>/dev/null | awk '
    /^[0-9]+: perf_event/ && /name ember_sample/ {
      for (i = 1; i <= NF; i++) { if ($i == "run_time_ns") t += $(i+1); if ($i == "run_cnt") c += $(i+1) }
    }
    END { print t + 0, c + 0 }'
}

start_workload() {
  for _ in $(seq "$NCPU"); do "$WORKLOAD" -n 100000000 >/dev/null & done
}
stop_workload() { pkill -f "$WORKLOAD -n 100000000"; wait 2>/dev/null; }

# One run of `ember agent`, read at SHORT_S and LONG_S after it is ready:
# prints "delta_cpu_ns delta_samples rss_mib bpf_ns bpf_runs" between the two.
ember_run() {
  cat > "$TMP/ember.yaml" <<EOF
frequency: $HZ
interval: 10s
metrics:
  listen: "127.0.0.1:$PORT"
output:
  directory: $TMP/profiles
EOF
  "$EMBER" agent --config "$TMP/ember.yaml" 2>"$TMP/agent.log" &
  local pid=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break
    sleep 0.1
  done
  # The readings themselves start processes (curl, bpftool, awk) that the
  # agent profiles; read once now so their binaries are loaded before the
  # first reading, as on a host where the same programs run again and again.
  cpu_ns "$pid" >/dev/null; metric ember_samples_aggregated_total >/dev/null; bpf_ns_runs >/dev/null
  # The sample counts come from /metrics (a curl process, and a scrape that
  # costs the agent about 1 ms), so they are read outside the CPU window,
  # 2 s before it starts and right after it ends; the samples inside it are
  # the rate between the two readings times its length.
  sleep "$SHORT_S"
  local c1 s1 b1t b1c c2 s2 b2t b2c rss t_s1 t_s2 t1 t2
  t_s1=$(now_s); s1=$(metric ember_samples_aggregated_total)
  read -r b1t b1c < <(bpf_ns_runs)
  sleep 2
  c1=$(cpu_ns "$pid"); t1=$(now_s)
  sleep $((LONG_S - SHORT_S))
  c2=$(cpu_ns "$pid"); t2=$(now_s)
  s2=$(metric ember_samples_aggregated_total); t_s2=$(now_s)
  read -r b2t b2c < <(bpf_ns_runs)
  rss=$(peak_rss_mib "$pid")
  kill -TERM "$pid"; wait "$pid" 2>/dev/null
  local samples
  samples=$(echo "($s2 - $s1) * ($t2 - $t1) / ($t_s2 - $t_s1)" | bc -l | cut -d. -f1)
  echo "$((c2 - c1)) ${samples:-0} $rss $((b2t - b1t)) $((b2c - b1c))"
}

# One run of `perf record -a -g`, read the same way; its sample count is
# known only when it stops, so the samples between the two readings are its
# rate times the time between them.
perf_run() {
  local start end
  start=$(now_s)
  perf record -F "$HZ" -a -g -o "$TMP/perf.data" 2>"$TMP/perf.err" &
  local pid=$!
  sleep 1
  sleep "$SHORT_S"
  local c1 c2 t1 t2 rss
  c1=$(cpu_ns "$pid"); t1=$(now_s)
  sleep $((LONG_S - SHORT_S))
  c2=$(cpu_ns "$pid"); t2=$(now_s)
  rss=$(peak_rss_mib "$pid")
  kill -INT "$pid"; wait "$pid" 2>/dev/null
  end=$(now_s)
  local samples
  samples=$(sed -n 's/.*(\([0-9]*\) samples).*/\1/p' "$TMP/perf.err")
  echo "$((c2 - c1)) $(echo "${samples:-0} * ($t2 - $t1) / ($end - $start)" | bc -l | cut -d. -f1) $rss 0 0"
}

median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "-"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

profilers=(ember)
command -v perf >/dev/null && profilers+=(perf)
echo "workload: $NCPU x ratio_fp (every CPU busy); $HZ Hz; read at ${SHORT_S}s and ${LONG_S}s; $REPS repetitions; kernel $(uname -r)"
start_workload
for rep in $(seq "$REPS"); do
  for p in "${profilers[@]}"; do
    read -r dc ds rl bns bruns < <(${p}_run)
    us=$( [ "$ds" -gt 0 ] && echo "$dc / 1000 / $ds" | bc -l || echo 0)
    bpf=$( [ "$bruns" -gt 0 ] && echo "$bns / $bruns" | bc -l || echo 0)
    rate=$(echo "$ds / ($LONG_S - $SHORT_S)" | bc -l)
    echo "$us $bpf $rl $rate" >> "$TMP/$p"
    printf "  %s rep %d: %.2f us/sample, %.0f ns BPF, %.1f MiB peak, %.0f samples/s\n" "$p" "$rep" "$us" "$bpf" "$rl" "$rate" >&2
  done
done
stop_workload

printf "\n%-28s %16s %14s %14s %12s\n" "profiler" "user_us/sample" "bpf_ns/sample" "peak_rss_MiB" "samples/s"
for p in "${profilers[@]}"; do
  case "$p" in
    ember) label="ember agent" ;;
    perf) label="perf record -a -g" ;;
  esac
  printf "%-28s %16.2f %14.0f %14.1f %12.0f\n" "$label" \
    "$(cut -d' ' -f1 "$TMP/$p" | median)" "$(cut -d' ' -f2 "$TMP/$p" | median)" \
    "$(cut -d' ' -f3 "$TMP/$p" | median)" "$(cut -d' ' -f4 "$TMP/$p" | median)"
done
echo "(slope between ${SHORT_S}s and ${LONG_S}s of one run: start-up excluded; perf's cost excludes 'perf report')"
