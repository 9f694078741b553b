#!/usr/bin/env bash
# GEOSEARCH and SORT throughput: an Omnibus build beside redis-server (`appendfsync always`),
# the same client (Debian's redis-benchmark, 4 connections x 32 pipelined, 100,000 calls),
# each system alone with a fresh data folder, 3 rounds interleaved. The data: 20,000 points
# within ~0.5 degrees of Rome (GEOADD through redis-py from the test virtualenv) and a list
# of 100 random numbers.
#
#   scripts/bench-redis-geo-sort.sh OMNIBUS_BINARY
set -euo pipefail
bin="$1"; port="${PORT:-16460}"
load() {
  /work/main/.venv/bin/python - "$port" <<'PY'
import sys, random, redis
r = redis.Redis(port=int(sys.argv[1]))
rng = random.Random(7)
pipe = r.pipeline(transaction=False)
for n in range(20000):
    pipe.geoadd("places", [12.4964 + rng.uniform(-0.5, 0.5), 41.9028 + rng.uniform(-0.5, 0.5), f"p{n}"])
    if n % 1000 == 999:
        pipe.execute()
pipe.execute()
r.rpush("nums", *[rng.randrange(1_000_000) for _ in range(100)])
PY
}
run() {
  for cmd in "GEOSEARCH places FROMLONLAT 12.5 41.9 BYRADIUS 2 km ASC COUNT 10" "SORT nums LIMIT 0 10"; do
    rps=$(redis-benchmark -p "$port" -n 100000 -c 4 -P 32 --csv $cmd | sed -n 2p | grep -oE '"[0-9]+\.[0-9]+"' | head -1 | tr -d '"')
    echo "$1 ${cmd%% *} $rps"
  done
}
for round in 1 2 3; do
  dir=$(mktemp -d)
  "$bin" serve --data-dir "$dir" --http-listen 127.0.0.1:0 --kafka-listen off --nats-listen off --amqp-listen off --redis-listen 127.0.0.1:$port >/dev/null 2>&1 &
  pid=$!; sleep 2; load; run "round $round omnibus"; kill $pid; wait $pid 2>/dev/null || true; rm -rf "$dir"
  dir=$(mktemp -d)
  redis-server --port $port --dir "$dir" --appendonly yes --appendfsync always --save '' --daemonize yes >/dev/null
  sleep 1; load; run "round $round redis"; redis-cli -p $port shutdown nosave >/dev/null 2>&1 || true; rm -rf "$dir"
done
