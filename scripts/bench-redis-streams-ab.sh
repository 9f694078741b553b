#!/usr/bin/env bash
# Two Omnibus builds A/B on the Redis door's stream appends, beside redis-server with AOF
# `appendfsync always` (equal durability) and `everysec` (its default with AOF on), in one
# run: rounds interleave A, B and the two redis-servers, each alone with a fresh data folder.
# The client is Debian's redis-benchmark for all: XADD with `MAXLEN ~ 10000` and without (4
# clients x 32 pipelined), and BullMQ's script shape, an EVAL of an INCR and an XADD with
# `MAXLEN ~ 10000` (4 x 32 and 8 x 1). One line per system and round, ops/s.
#
#   scripts/bench-redis-streams-ab.sh OMNIBUS_A OMNIBUS_B [rounds]    # default 3 rounds
#
# Env: PORT (default 16444). Installs redis-server and redis-tools with apt-get when missing.
set -euo pipefail
a="$1"; b="$2"; rounds="${3:-3}"; port="${PORT:-16444}"
if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server redis-tools >&2
fi
script="redis.call('incr', KEYS[1]) return redis.call('xadd', KEYS[2], 'MAXLEN', '~', '10000', '*', 'job', ARGV[1])"
rate() { # the rps of the first line a --csv run answers, whole
  sed -n 2p | awk -F'","' '{print int($2)}'
}
measure() {
  echo "xadd_maxlen_4x32=$(redis-benchmark -p "$port" -c 4 -P 32 -n 300000 --csv XADD a MAXLEN '~' 10000 '*' job 42 | rate)" \
    "xadd_4x32=$(redis-benchmark -p "$port" -c 4 -P 32 -n 300000 --csv XADD b '*' job 42 | rate)" \
    "eval_xadd_4x32=$(redis-benchmark -p "$port" -c 4 -P 32 -n 200000 --csv EVAL "$script" 2 n c 42 | rate)" \
    "eval_xadd_8x1=$(redis-benchmark -p "$port" -c 8 -P 1 -n 30000 --csv EVAL "$script" 2 n d 42 | rate)"
}
up() { until redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; do sleep 0.05; done; }
for round in $(seq 1 "$rounds"); do
  for arm in a b; do
    bin="${!arm}"; dir="$(mktemp -d)"
    "$bin" serve --data-dir "$dir" --http-listen 127.0.0.1:0 --kafka-listen off \
      --nats-listen off --amqp-listen off --redis-listen "127.0.0.1:$port" >"$dir.log" 2>&1 &
    pid=$!; up
    echo "round $round omnibus-$arm $(measure)"
    kill "$pid"; wait "$pid" 2>/dev/null || true; rm -rf "$dir" "$dir.log"
  done
  for fsync in always everysec; do
    dir="$(mktemp -d)"
    redis-server --port "$port" --dir "$dir" --appendonly yes --appendfsync "$fsync" --save '' \
      >/dev/null 2>&1 &
    pid=$!; up
    echo "round $round redis-$fsync $(measure)"
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || kill "$pid"
    wait "$pid" 2>/dev/null || true; rm -rf "$dir"
  done
done
