#!/usr/bin/env bash
# Hash field expiry (Redis 7.4's HEXPIRE family) on Omnibus beside a redis-server >= 7.4, in
# one run: rounds interleave the systems, each alone on the machine with a fresh data folder.
# Debian's redis-server is 7.0, without field expiry: pass a 7.4 one built from its source.
# The client is redis-benchmark and redis-cli (the ones next to REDIS_SERVER when there, so
# the peer's own) for every system. One line per system and round:
#
# - hset, hpexpire, httl: ops/s, 4 connections x 32 pipelined over 100,000 random hashes of
#   one field (HSET h:<n> f v; HPEXPIRE h:<n> 600000 FIELDS 1 f; HTTL h:<n> FIELDS 1 f);
# - reclaim_fields_ms: on a fresh server, 100,000 hashes of 2 fields, one of which expires
#   at one moment 8 s ahead (HPEXPIREAT, sent with redis-cli --pipe): how long after it
#   until every expired field is gone (INFO expired_subkeys reaches 100,000), polled every
#   10 ms, nothing reading them meanwhile (the sweep's work, Redis's active expiry);
# - reclaim_keys_ms: the same for 100,000 string keys (SET k:<n> v PXAT …; expired_keys).
#
#   scripts/bench-redis-field-expiry.sh OMNIBUS REDIS_SERVER [rounds]   # default 3 rounds
#
# redis-server runs with AOF on and `appendfsync always` (equal durability) and `everysec`
# (its default with AOF on). Env: PORT (default 16441).
set -euo pipefail
omnibus="$1"; redis="$2"; rounds="${3:-3}"; port="${PORT:-16441}"
tools="$(dirname "$redis")"
benchmark="$tools/redis-benchmark"; [ -x "$benchmark" ] || benchmark=redis-benchmark
cli="$tools/redis-cli"; [ -x "$cli" ] || cli=redis-cli
rate() { sed -n 2p | grep -oE '"[0-9]+\.[0-9]+"' | head -1 | tr -d '"'; }
bench() { "$benchmark" -p "$port" --csv -c 4 -P 32 -n 300000 -r 100000 "$@" | rate; }
wait_port() {
  for _ in $(seq 100); do "$cli" -p "$port" ping >/dev/null 2>&1 && return; sleep 0.1; done
  echo "nothing answers on port $port" >&2; exit 1
}
start() { # system, data dir
  case "$1" in
    omnibus)
      "$omnibus" serve --data-dir "$2" --http-listen 127.0.0.1:0 --kafka-listen off \
        --nats-listen off --amqp-listen off --redis-listen "127.0.0.1:$port" >"$2.log" 2>&1 & ;;
    redis-*)
      mkdir -p "$2"
      "$redis" --port "$port" --dir "$2" --save "" --appendonly yes \
        --appendfsync "${1#redis-}" >"$2.log" 2>&1 & ;;
  esac
  pid=$!; wait_port
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; rm -rf "$1" "$1.log"; }
reclaim() { # fields|keys: ms from the common deadline until 100,000 are reclaimed
  local at now count stat
  at=$(( $(date +%s%3N) + 8000 ))
  for n in $(seq 100000); do
    if [ "$1" = fields ]; then
      echo "HSET e:$n keep v gone v"
      echo "HPEXPIREAT e:$n $at FIELDS 1 gone"
    else
      echo "SET k:$n v PXAT $at"
    fi
  done | "$cli" -p "$port" --pipe >/dev/null
  if [ "$(date +%s%3N)" -ge "$at" ]; then echo "filled-too-late"; return; fi
  stat=expired_keys; [ "$1" = fields ] && stat=expired_subkeys
  while :; do
    now=$(date +%s%3N)
    count=$("$cli" -p "$port" info stats | tr -d '\r' | sed -n "s/^$stat://p")
    if [ "${count:-0}" -ge 100000 ]; then echo $(( now - at )); return; fi
    if [ "$now" -gt $(( at + 120000 )) ]; then echo "timeout"; return; fi
    sleep 0.01
  done
}
for round in $(seq 1 "$rounds"); do
  for system in omnibus redis-always redis-everysec; do
    dir="$(mktemp -d)"; start "$system" "$dir"
    out="hset=$(bench HSET 'h:__rand_int__' f v)"
    out+=" hpexpire=$(bench HPEXPIRE 'h:__rand_int__' 600000 FIELDS 1 f)"
    out+=" httl=$(bench HTTL 'h:__rand_int__' FIELDS 1 f)"
    stop "$dir"
    for what in fields keys; do
      dir="$(mktemp -d)"; start "$system" "$dir"
      out+=" reclaim_${what}_ms=$(reclaim "$what")"
      stop "$dir"
    done
    echo "round $round $system $out"
  done
done
