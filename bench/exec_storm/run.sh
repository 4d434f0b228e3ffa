#!/usr/bin/env bash
# bench/exec_storm: what does a stream of short-lived processes cost
# `ember agent`?
#
# Builds, shells and CI jobs are made of processes that live a few
# milliseconds. Each one is a new process to snapshot, and maps binaries
# (the shell, libc, the loader) whose unwind tables go to BPF while it lives.
# This runs `ember agent` at 100 Hz writing profiles to a scratch directory,
# then measures:
#   1. IDLE_S seconds with nothing but a busy workload (the baseline);
#   2. the same, plus a storm: ROUNDS rounds of `sh -c` running /bin/true,
#      date, sed and the short_lived fixture, one after another (4 execs of
#      the programs plus the shell per round);
# and prints the agent's CPU time (user+sys, /proc/PID/stat) in each, the
# difference per exec, and what the agent's own counters say it did:
# unwind tables built, binaries written to the BPF maps and reused from them,
# binaries parsed, debug lookups deferred and retried.
#
# It compares two agents, REPEAT times each, alternating, and prints the
# median CPU per exec of each and their ratio:
#   - with BEFORE=<an older ember binary>: that binary against this one
#     (e.g. a build of the commit before the change);
#   - otherwise this binary with sampler.unwind_table_retention: 0% (every
#     binary's rows freed when its last process exits) against the default.
#
# Usage (root): [BEFORE=old/ember] bench/exec_storm/run.sh [ROUNDS] [IDLE_S] [REPEAT]
#   ROUNDS  default 600 (3000 execs)
#   IDLE_S  default 15
#   REPEAT  default 3
# Environment: EMBER (this binary, default build/ember), BEFORE.
set -euo pipefail
cd "$(dirname "$0")/../.."

ROUNDS="${1:-600}"
IDLE="${2:-15}"
REPEAT="${3:-3}"
EMBER=${EMBER:-build/ember}
FIXTURES=build/tests/fixtures

[ "$(id -u)" -eq 0 ] || { echo "bench/exec_storm: run as root" >&2; exit 1; }
[ -x "$EMBER" ] && [ -x "$FIXTURES/short_lived" ] || { echo "bench/exec_storm: build first (scripts/build.sh)" >&2; exit 1; }

TMP=$(mktemp -d /tmp/ember-storm-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

# A busy workload, so the agent has steady work besides the storm (one: the
# storm needs the other CPU).
cc -O2 -fno-omit-frame-pointer -o "$TMP/busy" bench/ship/busy.c
"$TMP/busy" & pids+=($!)
hz=$(getconf CLK_TCK)

# measure LABEL BINARY [RETENTION]: one agent run; appends its CPU per exec
# (us) to $TMP/results-LABEL
measure() {
  local label=$1 binary=$2 retention=${3:-}
  local port=$((20000 + RANDOM % 20000))
  rm -rf "$TMP/profiles"
  cat > "$TMP/ember.yaml" <<YAML
frequency: 100
interval: 10s
output:
  directory: $TMP/profiles
metrics:
  listen: 127.0.0.1:$port
YAML
  [ -n "$retention" ] && printf 'sampler:\n  unwind_table_retention: %s\n' "$retention" >> "$TMP/ember.yaml"
  "$binary" agent --config "$TMP/ember.yaml" --log-level warn 2> "$TMP/agent.log" &
  local agent=$!
  sleep 5  # start-up: preloading every running process's tables
  cpu_ticks() { awk '{print $14 + $15}' "/proc/$agent/stat"; }
  metric() {  # sum of a metric's samples in the agent's /metrics
    curl -s "http://127.0.0.1:$port/metrics" | awk -v m="$1" '$1 == m || index($1, m "{") == 1 {s += $2} END {print s + 0}'
  }
  local t0 t1 t2 t3 start end
  t0=$(cpu_ticks)
  sleep "$IDLE"
  t1=$(cpu_ticks)
  local b_builds b_loads b_reused b_parsed
  b_builds=$(metric ember_unwind_table_builds_total)
  b_loads=$(metric ember_unwind_binary_loads_total)
  b_reused=$(metric ember_unwind_binaries_reused_total)
  b_parsed=$(metric ember_symbolizer_cache_misses_total)
  start=$(date +%s.%N)
  t2=$(cpu_ticks)
  for _ in $(seq "$ROUNDS"); do
    sh -c "/bin/true; date > /dev/null; echo x | sed s/x/y/ > /dev/null; $FIXTURES/short_lived 1"
  done
  t3=$(cpu_ticks)
  end=$(date +%s.%N)
  sleep 2
  local wall idle_s storm_s per_exec
  wall=$(echo "$end - $start" | bc)
  idle_s=$(echo "scale=3; ($t1 - $t0) / $hz" | bc)
  storm_s=$(echo "scale=3; ($t3 - $t2) / $hz" | bc)
  # The same wall time at the idle rate is the baseline to subtract.
  per_exec=$(echo "scale=1; ($storm_s - $idle_s * $wall / $IDLE) * 1000000 / ($ROUNDS * 5)" | bc)
  printf '  %-7s %5d execs in %5.1f s: agent CPU %5.2f s (idle rate %.2f%% of a core), %6.1f us per exec; tables built %d, binaries written to BPF %d, reused %d, parsed %d; debug lookups deferred %d, retried %d\n' \
    "$label" $((ROUNDS * 5)) "$wall" "$storm_s" "$(echo "$idle_s * 100 / $IDLE" | bc -l)" "$per_exec" \
    $(( $(metric ember_unwind_table_builds_total) - b_builds )) \
    $(( $(metric ember_unwind_binary_loads_total) - b_loads )) \
    $(( $(metric ember_unwind_binaries_reused_total) - b_reused )) \
    $(( $(metric ember_symbolizer_cache_misses_total) - b_parsed )) \
    "$(metric ember_debug_lookups_deferred_total)" "$(metric ember_debug_lookup_retries_total)"
  echo "$per_exec" >> "$TMP/results-$label"
  kill -TERM "$agent"
  wait "$agent" 2>/dev/null || true
}

echo "bench/exec_storm: $REPEAT x $ROUNDS rounds of sh -c 'true; date; sed; short_lived' per agent"
for _ in $(seq "$REPEAT"); do
  if [ -n "${BEFORE:-}" ]; then
    measure before "$BEFORE"
    measure after "$EMBER"
  else
    measure before "$EMBER" 0%
    measure after "$EMBER"
  fi
done
median() { sort -n "$1" | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
before=$(median "$TMP/results-before")
after=$(median "$TMP/results-after")
what="retention 0% -> default"
[ -n "${BEFORE:-}" ] && what="$BEFORE -> $EMBER"
echo "median agent CPU per exec ($what): before $before us, after $after us: $(echo "scale=2; $after / $before" | bc)x"
