#!/usr/bin/env bash
# Redis lists (and hashes) side by side: LPUSH then LPOP on one key with Debian's redis-benchmark (the same
# client for every system), against Omnibus's Redis door, redis-server with
# `appendfsync always` and redis-server with `appendfsync everysec`, each alone on the machine,
# a fresh data folder per run, in two shapes (4 connections x 32 pipelined; 50 x 1).
#
#   scripts/bench-redis-lists.sh [rounds]      # default 3; CSV lines on stdout:
#   system,shape,"TEST","rps","avg_ms","min_ms","p50_ms","p95_ms","p99_ms","max_ms"
#
# Env: OMNIBUS_BIN (default target/release/omnibus, built if missing), PORT (default 16420),
# REQUESTS (default 300000), SIZE (value bytes, default 100), TESTS (redis-benchmark's -t,
# default lpush,lpop; `hset`, `sadd`, `zadd` write `element:<n>` into one hash, set or sorted
# set, `spop` and `zpopmin` take from them), RANDOM_KEYS (its -r:
# n distinct values of __rand_int__, default none). Installs redis-server and
# redis-tools with apt-get when missing. Stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
port="${PORT:-16420}"
requests="${REQUESTS:-300000}"
size="${SIZE:-100}"
tests="${TESTS:-lpush,lpop}"
random_keys=()
[ -n "${RANDOM_KEYS:-}" ] && random_keys=(-r "$RANDOM_KEYS")
omnibus="${OMNIBUS_BIN:-target/release/omnibus}"
if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server redis-tools >&2
fi
[ -x "$omnibus" ] || cargo build --release -p omnibus-server >&2
work="$(mktemp -d)"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

wait_for_port() {
  for _ in $(seq 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "nothing answers on port $port" >&2
  return 1
}

for _ in $(seq "$rounds"); do
  for system in omnibus always everysec; do
    dir="$work/$system"
    mkdir -p "$dir"
    case "$system" in
      omnibus)
        "$omnibus" serve --data-dir "$dir" --http-listen 127.0.0.1:0 --kafka-listen off \
          --nats-listen off --amqp-listen off --redis-listen "127.0.0.1:$port" >"$dir/log" 2>&1 &
        ;;
      *)
        redis-server --port "$port" --save '' --appendonly yes --appendfsync "$system" \
          --dir "$dir" >"$dir/log" 2>&1 &
        ;;
    esac
    pid=$!
    wait_for_port
    for shape in "-c 4 -P 32" "-c 50 -P 1"; do
      # shellcheck disable=SC2086 # the shape is two options
      redis-benchmark -p "$port" -t "$tests" -n "$requests" -d "$size" "${random_keys[@]}" $shape --csv 2>/dev/null |
        grep -v '^"test"' | sed "s/^/$system,$shape,/"
      redis-cli -p "$port" del mylist myhash myset myzset >/dev/null
    done
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    pid=""
    rm -rf "$dir"
  done
done
