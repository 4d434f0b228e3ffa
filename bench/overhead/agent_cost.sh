#!/usr/bin/env bash
# bench/overhead/agent_cost.sh: the steady-state cost of `ember agent` per
# sample, beside `perf record -a -g`, at the same rate on the same work.
#
# One copy of ratio_fp per CPU keeps every CPU busy. Each profiler runs for a
# short and a long window (SHORT_S, LONG_S seconds after it is ready); its CPU
# time (utime+stime from /proc) and its sample count are read at the end of
# each window. The cost per sample is the slope between the two:
#   (cpu_long - cpu_short) / (samples_long - samples_short)
# so start-up (BPF load, the first symbolization of every binary) does not
# hide in it. Printed per profiler as the median of REPS repetitions:
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

cpu_seconds() {  # utime+stime of pid $1, in seconds
  awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0
}
peak_rss_mib() { awk '/^VmHWM:/ { print $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo 0; }
metric() {  # sum of every series of metric $1 on the agent's /metrics
  curl -s "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $2 } END { print s + 0 }'
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

# One window of `ember agent`: prints "cpu_s samples rss_mib bpf_ns bpf_runs".
ember_window() {
  local secs=$1
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
  local bt bc at ac
  read -r bt bc < <(bpf_ns_runs)
  sleep "$secs"
  local cpu samples rss
  cpu=$(cpu_seconds "$pid")
  samples=$(metric ember_samples_aggregated_total)  # counted live by the pipeline thread
  rss=$(peak_rss_mib "$pid")
  read -r at ac < <(bpf_ns_runs)
  kill -TERM "$pid"; wait "$pid" 2>/dev/null
  echo "$cpu $samples $rss $((at - bt)) $((ac - bc))"
}

# One window of `perf record -a -g`: the same numbers (no BPF); samples from
# perf's own count after it stops.
perf_window() {
  local secs=$1
  perf record -F "$HZ" -a -g -o "$TMP/perf.data" 2>"$TMP/perf.err" &
  local pid=$!
  sleep 1
  local cpu rss
  sleep "$secs"
  cpu=$(cpu_seconds "$pid")
  rss=$(peak_rss_mib "$pid")
  kill -INT "$pid"; wait "$pid" 2>/dev/null
  local samples
  samples=$(sed -n 's/.*(\([0-9]*\) samples).*/\1/p' "$TMP/perf.err")
  echo "$cpu ${samples:-0} $rss 0 0"
}

median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "-"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

profilers=(ember)
command -v perf >/dev/null && profilers+=(perf)
echo "workload: $NCPU x ratio_fp (every CPU busy); $HZ Hz; windows ${SHORT_S}s and ${LONG_S}s; $REPS repetitions; kernel $(uname -r)"
start_workload
for rep in $(seq "$REPS"); do
  for p in "${profilers[@]}"; do
    read -r cs ss _ bns_s bruns_s < <(${p}_window "$SHORT_S")
    read -r cl sl rl bns_l bruns_l < <(${p}_window "$LONG_S")
    us=$(echo "($cl - $cs) * 1000000 / ($sl - $ss)" | bc -l 2>/dev/null || echo 0)
    bpf=$( [ "$bruns_l" -gt 0 ] && echo "$bns_l / $bruns_l" | bc -l || echo 0)
    rate=$(echo "$sl / $LONG_S" | bc -l)
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
echo "(slope between a ${SHORT_S}s and a ${LONG_S}s run: start-up excluded; perf's cost excludes 'perf report')"
