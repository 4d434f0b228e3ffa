#!/usr/bin/env bash
# bench/ship: what does `ember agent` cost while it ships profiles?
#
# Starts 200 busy processes in 20 services (20 names x 10 copies of
# bench/ship/busy.c), a local Pyroscope stand-in (tests/support/pyroserver),
# and `ember agent` at 100 Hz sending every 10 s to it. After a warm-up it
# measures over DURATION:
#   - the agent's CPU time (user+sys, from /proc/PID/stat) as % of one core,
#   - its RSS (sampled every second: median and max) and peak RSS (VmHWM),
#   - what it sent: profiles, requests, bytes and samples per interval (per
#     interval the pipeline handed over during the window),
#   - what it lost (every ember_*lost*/dropped counter that is not zero).
#
# Usage (root): bench/ship/run.sh [DURATION_S] [API]
#   DURATION_S  measured seconds after a 25 s warm-up (default 60; keep it a
#               multiple of 10)
#   API         push (default) or ingest
# Environment: EMBER, PYROSERVER (binaries; default build/...), METRICS_OUT
# (save the agent's last /metrics scrape there), NICE (the agent's niceness,
# default 0: the same priority as the 200 busy processes).
# Needs a build with tests: scripts/build.sh (build/ember, build/tests/pyroserver).
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION="${1:-60}"
API="${2:-push}"
# The window starts and ends mid-interval (agent start + 25 s, + 25 s + a
# multiple of 10 s), so no interval's sends straddle its edges.
WARMUP=25
SERVICES=20
COPIES=10
EMBER=${EMBER:-build/ember}
PYROSERVER=${PYROSERVER:-build/tests/pyroserver}

[ "$(id -u)" -eq 0 ] || { echo "bench/ship: run as root" >&2; exit 1; }
[ -x "$EMBER" ] && [ -x "$PYROSERVER" ] || { echo "bench/ship: build first (scripts/build.sh)" >&2; exit 1; }

TMP=$(mktemp -d /tmp/ember-ship-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

cc -O2 -fno-omit-frame-pointer -o "$TMP/busy" bench/ship/busy.c
for s in $(seq -w 1 "$SERVICES"); do
  cp "$TMP/busy" "$TMP/svc-$s"
  for _ in $(seq "$COPIES"); do "$TMP/svc-$s" & pids+=($!); done
done

"$PYROSERVER" -addr-file "$TMP/addr" -records "$TMP/records" & pids+=($!)
for _ in $(seq 100); do [ -s "$TMP/addr" ] && break; sleep 0.05; done
ADDR=$(cat "$TMP/addr")

cat > "$TMP/ember.yaml" <<YAML
frequency: 100
interval: 10s
labels: {env: bench}
servers:
  - url: http://$ADDR
    api: $API
metrics:
  listen: "127.0.0.1:0"
YAML
nice -n "${NICE:-0}" "$EMBER" agent --config "$TMP/ember.yaml" 2> "$TMP/agent.log" & AGENT=$!
pids+=("$AGENT")
for _ in $(seq 200); do grep -q "serving metrics" "$TMP/agent.log" && break; sleep 0.05; done
MPORT=$(grep -o 'metrics on http://127.0.0.1:[0-9]*' "$TMP/agent.log" | sed 's/.*://')
scrape() { curl -s "http://127.0.0.1:$MPORT/metrics" > "$TMP/scrape"; }
metric() { awk -v n="$1" '$1 == n { print $2 }' "$TMP/scrape"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$AGENT/stat"; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$AGENT/status"; }

echo "bench/ship: $((SERVICES * COPIES)) busy processes in $SERVICES services on $(nproc) CPUs;"
echo "  ember agent at 100 Hz (nice ${NICE:-0}), interval 10s, api $API; warm-up ${WARMUP}s, measuring ${DURATION}s"
sleep "$WARMUP"
SERVER="server=\"http://$ADDR\""
t0=$(date +%s.%N); c0=$(cpu_ticks); scrape
p0=$(metric "ember_upload_profiles_sent_total{$SERVER}"); b0=$(metric "ember_upload_bytes_sent_total{$SERVER}")
s0=$(metric "ember_upload_samples_sent_total{$SERVER}"); r0=$(metric "ember_upload_requests_total{$SERVER}")
i0=$(metric ember_upload_intervals_total)
: > "$TMP/rss"
end=$(echo "$t0 + $DURATION" | bc -l)
while [ "$(echo "$(date +%s.%N) < $end" | bc -l)" = 1 ]; do sleep 1; rss_kb >> "$TMP/rss"; done
t1=$(date +%s.%N); c1=$(cpu_ticks); scrape
p1=$(metric "ember_upload_profiles_sent_total{$SERVER}"); b1=$(metric "ember_upload_bytes_sent_total{$SERVER}")
s1=$(metric "ember_upload_samples_sent_total{$SERVER}"); r1=$(metric "ember_upload_requests_total{$SERVER}")
i1=$(metric ember_upload_intervals_total)
hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$AGENT/status")
lost=$(curl -s "http://127.0.0.1:$MPORT/metrics" | awk '$1 ~ /(lost|dropped)_total/ && $2 != 0')
tck=$(getconf CLK_TCK)

wall=$(echo "$t1 - $t0" | bc -l)
intervals=$((i1 - i0))  # intervals the pipeline handed over in the window
[ "$intervals" -gt 0 ] || intervals=1
printf 'agent CPU:        %.2f%% of one core (%.2f s over %.0f s)\n' \
  "$(echo "($c1 - $c0) / $tck / $wall * 100" | bc -l)" "$(echo "($c1 - $c0) / $tck" | bc -l)" "$wall"
sort -n "$TMP/rss" > "$TMP/rss.sorted"
printf 'agent RSS:        median %.1f MiB, max %.1f MiB; peak (VmHWM) %.1f MiB\n' \
  "$(awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] / 1024 }' "$TMP/rss.sorted")" \
  "$(tail -1 "$TMP/rss.sorted" | awk '{ print $1 / 1024 }')" "$(echo "$hwm / 1024" | bc -l)"
printf 'sent per interval: %.1f profiles in %.1f requests, %.1f KiB, %.0f samples (%d intervals)\n' \
  "$(echo "($p1 - $p0) / $intervals" | bc -l)" "$(echo "($r1 - $r0) / $intervals" | bc -l)" \
  "$(echo "($b1 - $b0) / 1024 / $intervals" | bc -l)" "$(echo "($s1 - $s0) / $intervals" | bc -l)" \
  "$intervals"
curl -s "http://127.0.0.1:$MPORT/metrics" > "$TMP/metrics"
[ -n "${METRICS_OUT:-}" ] && cp "$TMP/metrics" "$METRICS_OUT"
g() { awk -v n="$1" '$1 == n { print $2 }' "$TMP/metrics"; }
printf 'agent state:      %s processes tracked, %s binaries parsed (%.1f MiB of symbols)\n' \
  "$(g ember_processes_tracked)" "$(g ember_symbolizer_binaries)" \
  "$(echo "$(g ember_symbolizer_cache_bytes) / 1048576" | bc -l)"
if [ -n "$lost" ]; then echo "losses (non-zero counters):"; echo "$lost" | sed 's/^/  /'; else echo "losses: none"; fi
