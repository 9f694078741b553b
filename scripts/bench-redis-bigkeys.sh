#!/usr/bin/env bash
# Two Omnibus builds A/B on SETs over a big keyspace, beside redis-server with `appendfsync
# always` (equal durability), in one run: rounds interleave A, B, redis, each alone with a
# fresh data folder. Each arm: N SETs of 100 B over a million random keys (redis-benchmark,
# 4 clients x 32 pipelined), then kill -9 and a restart timed until PING answers, then (for
# Omnibus) a clean stop and a start timed the same way; one line with SET/s, the server's
# CPU seconds and peak memory, the state files' size, the restart time and the keys found
# after it, and the clean restart's time.
#
#   scripts/bench-redis-bigkeys.sh OMNIBUS_A OMNIBUS_B [rounds]    # default 3 rounds
#
# Env: PORT (default 16441), N (default 2000000). Installs redis-server and redis-tools with
# apt-get when missing.
set -euo pipefail
a="$1"; b="$2"; rounds="${3:-3}"; port="${PORT:-16441}"; n="${N:-2000000}"
if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server redis-tools >&2
fi
up() { until redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; do sleep 0.05; done; }
sets() {
  redis-benchmark -p "$port" -c 4 -P 32 -n "$n" -r 1000000 -d 100 -t set --csv |
    sed -n 2p | cut -d, -f2 | tr -d '"'
}
usage() { # cpu seconds (with exited threads) and peak resident MiB of a pid
  echo "cpu_s=$(awk '{print ($14+$15+$16+$17)/100}' "/proc/$1/stat")" \
    "hwm_mib=$(awk '/VmHWM/{print int($2/1024)}' "/proc/$1/status")"
}
omnibus() { # name binary
  local dir pid rate use t0 files
  dir="$(mktemp -d)"
  start() {
    "$2" serve --data-dir "$dir" --http-listen 127.0.0.1:0 --kafka-listen off \
      --nats-listen off --amqp-listen off --redis-listen "127.0.0.1:$port" >>"$dir.log" 2>&1 &
    pid=$!
  }
  start "$@"; up
  rate="$(sets)"; use="$(usage "$pid")"
  files="state_mib=$(du -sm "$dir" | cut -f1)"
  kill -9 "$pid"; wait "$pid" 2>/dev/null || true
  t0="$(date +%s.%N)"; start "$@"; up
  local restart keys
  restart="$(echo "$(date +%s.%N) - $t0" | bc)"; keys="$(redis-cli -p "$port" dbsize)"
  # Then a clean stop (everything checkpointed) and a start again.
  kill "$pid"; wait "$pid" 2>/dev/null || true
  t0="$(date +%s.%N)"; start "$@"; up
  echo "$1 set/s=$rate $use $files restart_s=$restart keys=$keys" \
    "clean_restart_s=$(echo "$(date +%s.%N) - $t0" | bc)"
  kill "$pid"; wait "$pid" 2>/dev/null || true; rm -rf "$dir" "$dir.log"
}
redis() {
  local dir pid rate use t0
  dir="$(mktemp -d)"
  start() {
    redis-server --port "$port" --dir "$dir" --appendonly yes --appendfsync always --save '' \
      >/dev/null 2>&1 &
    pid=$!
  }
  start; up
  rate="$(sets)"; use="$(usage "$pid")"
  kill -9 "$pid"; wait "$pid" 2>/dev/null || true
  t0="$(date +%s.%N)"; start; up
  echo "redis-always set/s=$rate $use restart_s=$(echo "$(date +%s.%N) - $t0" | bc)" \
    "keys=$(redis-cli -p "$port" dbsize)"
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || kill "$pid"
  wait "$pid" 2>/dev/null || true; rm -rf "$dir"
}
for round in $(seq 1 "$rounds"); do
  echo "round $round $(omnibus omnibus-a "$a")"
  echo "round $round $(omnibus omnibus-b "$b")"
  echo "round $round $(redis)"
done
