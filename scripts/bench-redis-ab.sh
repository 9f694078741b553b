#!/usr/bin/env bash
# Two Omnibus builds A/B on the Redis door, beside redis-server with `appendfsync always`
# (equal durability), in one run: rounds interleave A, B, redis, each alone on the machine
# with a fresh data folder. The client is Debian's redis-benchmark for all three. One line
# per system and round, ops/s. Two workloads (WORKLOAD):
#
# - keys (the default): SET/GET (100 B, 4 x 32 pipelined, a million random keys), SADD
#   (4 x 32) and an EVAL of one INCR (4 x 32 and 50 x 1);
# - streams: XADD with `MAXLEN ~ 10000` and without (4 x 32), and BullMQ's script shape, an
#   EVAL of an INCR and an XADD with `MAXLEN ~ 10000` (4 x 32 and 8 x 1); redis-server also
#   runs with `everysec`, its default with AOF on.
#
#   scripts/bench-redis-ab.sh OMNIBUS_A OMNIBUS_B [rounds]    # default 3 rounds
#   WORKLOAD=streams scripts/bench-redis-ab.sh OMNIBUS_A OMNIBUS_B [rounds]
#
# Env: PORT (default 16440). Installs redis-server and redis-tools with apt-get when missing.
set -euo pipefail
a="$1"; b="$2"; rounds="${3:-3}"; port="${PORT:-16440}"; workload="${WORKLOAD:-keys}"
if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server redis-tools >&2
fi
rate() { # the rps of the first line a --csv run answers
  sed -n 2p | grep -oE '"[0-9]+\.[0-9]+"' | head -1 | tr -d '"'
}
bench() { redis-benchmark -p "$port" --csv "$@" | rate; }
script="redis.call('incr', KEYS[1]) return redis.call('xadd', KEYS[2], 'MAXLEN', '~', '10000', '*', 'job', ARGV[1])"
case "$workload" in
  keys) fsyncs="always" ;;
  streams) fsyncs="always everysec" ;;
  *) echo "WORKLOAD is keys or streams" >&2; exit 2 ;;
esac
measure() {
  local out
  if [ "$workload" = keys ]; then
    out="set=$(bench -c 4 -P 32 -n 300000 -r 1000000 -d 100 -t set)"
    out+=" get=$(bench -c 4 -P 32 -n 300000 -r 1000000 -d 100 -t get)"
    out+=" sadd=$(bench -c 4 -P 32 -n 200000 -r 1000000 -t sadd)"
    out+=" eval_4x32=$(bench -c 4 -P 32 -n 200000 EVAL "return redis.call('incr', KEYS[1])" 1 counter)"
    out+=" eval_50x1=$(bench -c 50 -P 1 -n 100000 EVAL "return redis.call('incr', KEYS[1])" 1 counter)"
  else
    out="xadd_maxlen_4x32=$(bench -c 4 -P 32 -n 300000 XADD a MAXLEN '~' 10000 '*' job 42)"
    out+=" xadd_4x32=$(bench -c 4 -P 32 -n 300000 XADD b '*' job 42)"
    out+=" eval_xadd_4x32=$(bench -c 4 -P 32 -n 200000 EVAL "$script" 2 n c 42)"
    out+=" eval_xadd_8x1=$(bench -c 8 -P 1 -n 30000 EVAL "$script" 2 n d 42)"
  fi
  echo "$out"
}
wait_port() {
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && return; sleep 0.1; done
  echo "nothing answers on port $port" >&2; exit 1
}
for round in $(seq 1 "$rounds"); do
  for arm in a b; do
    bin="${!arm}"; dir="$(mktemp -d)"
    "$bin" serve --data-dir "$dir" --http-listen 127.0.0.1:0 --kafka-listen off \
      --nats-listen off --amqp-listen off --redis-listen "127.0.0.1:$port" >"$dir.log" 2>&1 &
    pid=$!; wait_port
    echo "round $round omnibus-$arm $(measure)"
    kill "$pid"; wait "$pid" 2>/dev/null || true; rm -rf "$dir" "$dir.log"
  done
  for fsync in $fsyncs; do
    dir="$(mktemp -d)"
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly yes \
      --appendfsync "$fsync" --dir "$dir" >/dev/null 2>&1 &
    pid=$!; wait_port
    echo "round $round redis-$fsync $(measure)"
    kill "$pid"; wait "$pid" 2>/dev/null || true; rm -rf "$dir"
  done
done
