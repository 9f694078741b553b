#!/usr/bin/env bash
# The broker's CPU per SET with keyspace notifications on: starts BINARY (loopback, Redis
# door only), turns on `notify-keyspace-events KEg$l` with one subscriber PSUBSCRIBEd to
# `__key*__:*`, runs Debian's redis-benchmark SET (400,000 calls over 100,000 random keys,
# 100-byte values, 4 x 32 pipelined) and prints the rate and the broker's µs of CPU per SET
# (user + system, every thread, from /proc).
#
#   scripts/cpu-per-set-notify.sh /tmp/omnibus-old
#
# Env: PORT (default 16490).
set -uo pipefail
bin=$1; port=${PORT:-16490}; dir=$(mktemp -d)
"$bin" serve --data-dir "$dir" --http-listen 127.0.0.1:0 --kafka-listen off --nats-listen off --amqp-listen off --redis-listen "127.0.0.1:$port" >"$dir.log" 2>&1 &
pid=$!
for _ in $(seq 100); do redis-cli -p $port ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p $port config set notify-keyspace-events 'KEg$l' >/dev/null
redis-cli -p $port psubscribe '__key*__:*' >/dev/null & sub=$!
sleep 0.3
ticks() { awk '{print $14+$15}' /proc/$pid/stat; }
t0=$(ticks)
rate=$(redis-benchmark -p $port --csv -c 4 -P 32 -n 400000 -r 100000 -d 100 -t set | sed -n 2p | grep -oE '"[0-9]+\.[0-9]+"' | head -1 | tr -d '"')
t1=$(ticks)
hz=$(getconf CLK_TCK)
awk -v t="$((t1 - t0))" -v hz="$hz" -v rate="$rate" 'BEGIN { printf "%s %.2f\n", rate, t * 1e6 / hz / 400000 }'
kill $sub 2>/dev/null; kill "$pid"; wait "$pid" 2>/dev/null || true; rm -rf "$dir" "$dir.log"
