#!/usr/bin/env bash
# The broker's CPU per job, two builds alternated: for each pair, starts build A then build B
# on a fresh data folder (HTTP only, loopback), runs one omnibus-bench jobs run against it and
# prints jobs/s and the broker's CPU per job (user + system, every thread, from /proc, fill
# included). On a shared machine jobs/s swings with the neighbours; the CPU per job moves much
# less, so compare that column, pair by pair and by median (docs/benchmarks.md).
#
#   scripts/jobs-cpu-ab.sh OLD_BINARY NEW_BINARY [PAIRS]
#   MODE=one-chained JOBS=200000 COMPLETIONS=batched scripts/jobs-cpu-ab.sh /tmp/omnibus-old target/release/omnibus 5
#
# Environment: MODE (omnibus-bench --mode: one, one-chained, one-pipelined, batched)
# [one-chained], JOBS [200000], WORKERS [4], COMPLETIONS (fsync or batched) [batched],
# BENCH (the omnibus-bench binary) [target/release/omnibus-bench], DATA_PARENT [/tmp].
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OLD=$1; NEW=$2; PAIRS=${3:-5}
MODE=${MODE:-one-chained}; JOBS=${JOBS:-200000}; WORKERS=${WORKERS:-4}
COMPLETIONS=${COMPLETIONS:-batched}
BENCH=${BENCH:-$ROOT/target/release/omnibus-bench}
DATA_PARENT=${DATA_PARENT:-/tmp}
TICKS=$(getconf CLK_TCK)

# one BINARY: prints "<jobs/s> <µs of broker CPU per job>"
one() {
  local data pid address rate ticks
  data=$(mktemp -d -p "$DATA_PARENT")
  "$1" serve --data-dir "$data" --http-listen 127.0.0.1:0 --kafka-listen off \
    --nats-listen off --amqp-listen off 2>"$data.log" &
  pid=$!
  for _ in $(seq 100); do [ -s "$data/listeners.json" ] && break; sleep 0.1; done
  address=$(sed -n 's/.*"http":"\([^"]*\)".*/\1/p' "$data/listeners.json")
  rate=$("$BENCH" run --system omnibus-http --address "$address" --completions "$COMPLETIONS" \
    --workload jobs --mode "$MODE" --workers "$WORKERS" --jobs "$JOBS" --runs 1 2>&1 |
    grep -o ' [0-9]*/s ' | head -1 | tr -d ' /s')
  # utime + stime of the whole process (fields 14 and 15 of /proc/PID/stat).
  ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$data" "$data.log"
  echo "$rate $(awk -v t="$ticks" -v hz="$TICKS" -v j="$JOBS" 'BEGIN {printf "%.1f", t / hz / j * 1e6}')"
}

echo "pair  A jobs/s  A µs/job  B jobs/s  B µs/job   (A: $OLD, B: $NEW; $MODE, $JOBS jobs, $COMPLETIONS)"
for pair in $(seq "$PAIRS"); do
  read -r a_rate a_cpu <<<"$(one "$OLD")"
  read -r b_rate b_cpu <<<"$(one "$NEW")"
  printf '%4d  %8s  %8s  %8s  %8s\n' "$pair" "$a_rate" "$a_cpu" "$b_rate" "$b_cpu"
done
