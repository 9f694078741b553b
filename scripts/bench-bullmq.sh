#!/usr/bin/env bash
# BullMQ (Node, the pinned version in tests/clients/node) against Omnibus's Redis door and
# against redis-server with AOF `everysec` (its default durability with AOF on) and
# `appendfsync always` (Omnibus's: every acknowledged write fsynced), in one run: rounds
# interleave the three, each alone on the machine with a fresh data folder. The workload is
# tests/clients/node/bullmq-bench.mjs (jobs added by 8 awaiting loops, then processed by one
# Worker of concurrency 8), then the shape of its scripts alone with Debian's redis-benchmark:
# an EVAL of an INCR and an XADD with MAXLEN ~ 10000, from 8 clients one at a time and from 4
# clients 32 deep. One line per system and round: jobs/s, then EVALs/s.
#
#   scripts/bench-bullmq.sh OMNIBUS_BINARY [rounds]    # default 3 rounds
#
# Env: PORT (default 16450), JOBS, ADDERS, CONCURRENCY (passed to the workload). Installs
# redis-server and redis-tools with apt-get, and the Node clients with npm ci, when missing.
set -euo pipefail
binary="$1"; rounds="${2:-3}"; port="${PORT:-16450}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
node_dir="$repo/tests/clients/node"
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server redis-tools >&2
fi
[ -d "$node_dir/node_modules/bullmq" ] || (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
wait_port() {
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && return; sleep 0.1; done
  echo "nothing answers on port $port" >&2; exit 1
}
script="redis.call('incr', KEYS[1]) return redis.call('xadd', KEYS[2], 'MAXLEN', '~', '10000', '*', 'job', ARGV[1])"
rate() { # the rps of the first line a --csv run answers
  sed -n 2p | grep -oE '"[0-9]+\.[0-9]+"' | head -1 | tr -d '"'
}
measure() {
  local out
  out="$(cd "$node_dir" && REDIS_URL="redis://127.0.0.1:$port" node bullmq-bench.mjs)"
  out+=" eval_xadd_8x1=$(redis-benchmark -p "$port" -c 8 -P 1 -n 30000 --csv EVAL "$script" 2 n events 42 | rate)"
  out+=" eval_xadd_4x32=$(redis-benchmark -p "$port" -c 4 -P 32 -n 100000 --csv EVAL "$script" 2 n events 42 | rate)"
  echo "$out"
}
for round in $(seq 1 "$rounds"); do
  dir="$(mktemp -d)"
  "$binary" serve --data-dir "$dir" --http-listen 127.0.0.1:0 --kafka-listen off \
    --nats-listen off --amqp-listen off --redis-listen "127.0.0.1:$port" >"$dir.log" 2>&1 &
  pid=$!; wait_port
  echo "round $round omnibus $(measure)"
  kill "$pid"; wait "$pid" 2>/dev/null || true; rm -rf "$dir" "$dir.log"
  for fsync in everysec always; do
    dir="$(mktemp -d)"
    redis-server --port "$port" --save '' --appendonly yes --appendfsync "$fsync" \
      --dir "$dir" --daemonize no >"$dir.log" 2>&1 &
    pid=$!; wait_port
    echo "round $round redis-$fsync $(measure)"
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || kill "$pid"
    wait "$pid" 2>/dev/null || true; rm -rf "$dir" "$dir.log"
  done
done
