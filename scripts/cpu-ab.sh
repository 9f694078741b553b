#!/usr/bin/env bash
# The broker's CPU per message or job, two builds (or two settings) alternated: for each pair,
# starts A then B on a fresh data folder (loopback), runs one omnibus-bench run against it and
# prints the rate and the broker's CPU per message (user + system, every thread, from /proc,
# fill included). On a shared machine the rate swings with the neighbours; the CPU per message
# moves much less, so compare that column, pair by pair and by median (docs/benchmarks.md).
#
#   scripts/cpu-ab.sh OLD_BINARY NEW_BINARY [PAIRS]
#   MODE=one-chained JOBS=200000 scripts/cpu-ab.sh /tmp/omnibus-old target/release/omnibus 5
#   DOOR=redis WORKLOAD=publish scripts/cpu-ab.sh /tmp/omnibus-old target/release/omnibus 5
#   DOOR=redis WORKLOAD=consume ENV_B=OMNIBUS_REDIS_IO_THREADS=0 scripts/cpu-ab.sh B B 5
#
# Environment:
#   DOOR        http (jobs over HTTP) or redis (the Redis door, lean client) [http]
#   MODE        http: omnibus-bench --mode (one, one-chained, one-pipelined, batched) [one-chained]
#   JOBS        http: jobs per run [200000]
#   COMPLETIONS http: fsync or batched [batched]
#   WORKLOAD    redis: publish (pipelined XADD) or consume (XREADGROUP COUNT + XACK) [publish]
#   MESSAGES    redis: messages per run [1000000]
#   SIZE        redis: payload bytes [100]
#   ENV_A, ENV_B  extra environment for broker A / B (e.g. OMNIBUS_REDIS_IO_THREADS=0) [none]
#   BENCH       the omnibus-bench binary [target/release/omnibus-bench]
#   DATA_PARENT where the data folders go [/tmp]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OLD=$1; NEW=$2; PAIRS=${3:-5}
DOOR=${DOOR:-http}
MODE=${MODE:-one-chained}; JOBS=${JOBS:-200000}; COMPLETIONS=${COMPLETIONS:-batched}
WORKLOAD=${WORKLOAD:-publish}; MESSAGES=${MESSAGES:-1000000}; SIZE=${SIZE:-100}
BENCH=${BENCH:-$ROOT/target/release/omnibus-bench}
DATA_PARENT=${DATA_PARENT:-/tmp}
TICKS=$(getconf CLK_TCK)

case $DOOR in
  http) COUNT=$JOBS; WHAT="$MODE, $JOBS jobs, $COMPLETIONS" ;;
  redis) COUNT=$MESSAGES; WHAT="redis $WORKLOAD, $MESSAGES × $SIZE B" ;;
  *) echo "DOOR is http or redis" >&2; exit 2 ;;
esac

# one BINARY EXTRA_ENV: prints "<rate> <µs of broker CPU per message>"
one() {
  local data pid address rate ticks
  data=$(mktemp -d -p "$DATA_PARENT")
  # shellcheck disable=SC2086 # EXTRA_ENV is a list of NAME=VALUE words
  env ${2:-} "$1" serve --data-dir "$data" --http-listen 127.0.0.1:0 --kafka-listen off \
    --nats-listen off --amqp-listen off --redis-listen 127.0.0.1:0 2>"$data.log" &
  pid=$!
  for _ in $(seq 100); do [ -s "$data/listeners.json" ] && break; sleep 0.1; done
  if [ "$DOOR" = http ]; then
    address=$(sed -n 's/.*"http":"\([^"]*\)".*/\1/p' "$data/listeners.json")
    rate=$("$BENCH" run --system omnibus-http --address "$address" --completions "$COMPLETIONS" \
      --workload jobs --mode "$MODE" --workers 4 --jobs "$JOBS" --runs 1 2>&1 |
      grep -o ' [0-9]*/s ' | head -1 | tr -d ' /s')
  else
    address=$(sed -n 's/.*"redis":"\([^"]*\)".*/\1/p' "$data/listeners.json")
    rate=$("$BENCH" run --system redis --label omnibus-redis --address "$address" \
      --workload "$WORKLOAD" --producers 4 --in-flight 32 --messages "$MESSAGES" \
      --size "$SIZE" --runs 1 2>&1 | grep -o ' [0-9]*/s ' | head -1 | tr -d ' /s')
  fi
  # utime + stime of the whole process (fields 14 and 15 of /proc/PID/stat).
  ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$data" "$data.log"
  echo "$rate $(awk -v t="$ticks" -v hz="$TICKS" -v n="$COUNT" 'BEGIN {printf "%.2f", t / hz / n * 1e6}')"
}

echo "pair    A rate/s   A µs/each    B rate/s   B µs/each   (A: $OLD ${ENV_A:-}, B: $NEW ${ENV_B:-}; $WHAT)"
for pair in $(seq "$PAIRS"); do
  read -r a_rate a_cpu <<<"$(one "$OLD" "${ENV_A:-}")"
  read -r b_rate b_cpu <<<"$(one "$NEW" "${ENV_B:-}")"
  printf '%4d  %10s  %10s  %10s  %10s\n' "$pair" "$a_rate" "$a_cpu" "$b_rate" "$b_cpu"
done
