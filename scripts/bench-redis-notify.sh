#!/usr/bin/env bash
# What keyspace notifications cost: SET, LPUSH and XADD throughput with
# `notify-keyspace-events` off, with `KEg$l` on and with `KEt` on (one subscriber
# PSUBSCRIBEd to `__key*__:*`, reading everything; XADD appends to one stream),
# an Omnibus build beside redis-server (`appendfsync always`), the same client (Debian's
# redis-benchmark, 4 connections x 32 pipelined, 200,000 calls over 100,000 random keys,
# 100-byte values), each system alone with a fresh data folder, 3 rounds interleaved.
#
#   scripts/bench-redis-notify.sh OMNIBUS_BINARY
set -euo pipefail
bin="$1"; port="${PORT:-16470}"
run() {
  local label="$1" classes="$2"
  redis-cli -p "$port" config set notify-keyspace-events "$classes" >/dev/null
  redis-cli -p "$port" psubscribe '__key*__:*' >/dev/null &
  local subscriber=$!
  sleep 0.3
  local payload
  payload=$(head -c 100 /dev/zero | tr '\0' x)
  for test in set lpush xadd; do
    if [ "$test" = xadd ]; then
      rps=$(redis-benchmark -p "$port" -n 200000 -c 4 -P 32 --csv XADD events '*' f "$payload" \
        | sed -n 2p | grep -oE '"[0-9]+\.[0-9]+"' | head -1 | tr -d '"')
    else
      rps=$(redis-benchmark -p "$port" -n 200000 -r 100000 -d 100 -c 4 -P 32 -t "$test" --csv \
        | sed -n 2p | grep -oE '"[0-9]+\.[0-9]+"' | head -1 | tr -d '"')
    fi
    echo "$label ${classes:-off} $test $rps"
  done
  kill "$subscriber" 2>/dev/null || true
  wait "$subscriber" 2>/dev/null || true
}
for round in 1 2 3; do
  for classes in "" 'KEg$l' 'KEt'; do
    dir=$(mktemp -d)
    "$bin" serve --data-dir "$dir" --http-listen 127.0.0.1:0 --kafka-listen off --nats-listen off --amqp-listen off --redis-listen 127.0.0.1:$port >/dev/null 2>&1 &
    pid=$!; sleep 2; run "round $round omnibus" "$classes"; kill $pid; wait $pid 2>/dev/null || true; rm -rf "$dir"
    dir=$(mktemp -d)
    redis-server --port $port --dir "$dir" --appendonly yes --appendfsync always --save '' --daemonize yes >/dev/null
    sleep 1; run "round $round redis" "$classes"; redis-cli -p $port shutdown nosave >/dev/null 2>&1 || true; rm -rf "$dir"
  done
done
