#!/usr/bin/env bash
# The broker's CPU per Redis command: starts BINARY on a fresh data folder (loopback, Redis
# door only), runs Debian's redis-benchmark with COMMAND (1,000,000 of it, 4 connections x 32
# pipelined) and prints the rate and the broker's µs of CPU (user + system, every thread,
# from /proc) per command. Rates swing on a shared machine; the CPU per command much less.
#
#   scripts/cpu-per-op-redis.sh /tmp/omnibus-old GET k
#   scripts/cpu-per-op-redis.sh target/release/omnibus EVAL "return redis.call('incr', KEYS[1])" 1 counter
#
# Env: PORT (default 16460), SETUP (commands run first, see below).
set -euo pipefail
bin=$1; shift
port=${PORT:-16460}; dir=$(mktemp -d)
"$bin" serve --data-dir "$dir" --http-listen 127.0.0.1:0 --kafka-listen off --nats-listen off --amqp-listen off --redis-listen "127.0.0.1:$port" >"$dir.log" 2>&1 &
pid=$!
for _ in $(seq 100); do redis-cli -p $port ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p $port set k v >/dev/null
# SETUP: more redis-cli commands first, separated by `;` (SETUP="hset h f v; hpexpire h 600000 fields 1 f").
IFS=';' read -ra setup <<<"${SETUP:-}"
for command in "${setup[@]}"; do
  # shellcheck disable=SC2086 # each command's words
  [ -n "${command// /}" ] && redis-cli -p $port $command >/dev/null
done
ticks() { awk '{print $14+$15}' /proc/$pid/stat; }
t0=$(ticks)
rate=$(redis-benchmark -p $port --csv -c 4 -P 32 -n 1000000 "$@" | sed -n 2p | grep -oE '"[0-9]+\.[0-9]+"' | head -1 | tr -d '"')
t1=$(ticks)
hz=$(getconf CLK_TCK)
awk -v t="$((t1 - t0))" -v hz="$hz" -v rate="$rate" 'BEGIN { printf "%s %.2f\n", rate, t * 1e6 / hz / 1e6 }'
kill "$pid"; wait "$pid" 2>/dev/null || true; rm -rf "$dir" "$dir.log"
