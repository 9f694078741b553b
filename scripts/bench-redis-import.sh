#!/usr/bin/env bash
# scripts/redis-import.sh at scale, beside the same import into a redis-server: a source
# redis-server (Debian's, no persistence) holding 100,000 string keys of 100 bytes, 1,000
# hashes of 3 fields and 10 streams of 1,000 entries is copied (MIGRATE … COPY, 100 keys a
# batch) into a fresh Omnibus, then into a fresh redis-server with AOF `appendfsync always`
# (equal durability), ROUNDS times, interleaved. One line per import: ms and the keys there.
#
#   scripts/bench-redis-import.sh OMNIBUS_BINARY [ROUNDS]
#
# Ports 7601 (source) and 7602 (target) on loopback; everything is stopped at the end.
set -euo pipefail
omnibus="$1"; rounds="${2:-3}"
here="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'redis-cli -p 7601 shutdown nosave >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
redis-server --bind 127.0.0.1 --port 7601 --save "" --appendonly no --dir "$work" >/dev/null 2>&1 &
for _ in $(seq 50); do redis-cli -p 7601 ping >/dev/null 2>&1 && break; sleep 0.1; done
python3 - "$work/fill.resp" <<'PY'
import sys
def command(*words):
    out = b"*%d\r\n" % len(words)
    for word in words:
        word = str(word).encode()
        out += b"$%d\r\n%s\r\n" % (len(word), word)
    return out
value = "x" * 100
with open(sys.argv[1], "wb") as fill:
    for n in range(100_000):
        fill.write(command("SET", f"k:{n}", value))
    for n in range(1_000):
        fill.write(command("HSET", f"h:{n}", "a", 1, "b", 2, "c", 3))
    for s in range(10):
        for n in range(1_000):
            fill.write(command("XADD", f"s:{s}", f"{n + 1}-0", "v", value))
PY
redis-cli -p 7601 --pipe < "$work/fill.resp" >/dev/null
echo "source keys: $(redis-cli -p 7601 dbsize)"
for round in $(seq "$rounds"); do
  for target in omnibus redis-server; do
    rm -rf "$work/target" && mkdir -p "$work/target"
    if [ "$target" = omnibus ]; then
      "$omnibus" serve --data-dir "$work/target" --redis-listen 127.0.0.1:7602 --http-listen 127.0.0.1:0 \
        --kafka-listen off --nats-listen off --amqp-listen off >/dev/null 2>&1 &
    else
      redis-server --bind 127.0.0.1 --port 7602 --save "" --appendonly yes --appendfsync always \
        --dir "$work/target" >/dev/null 2>&1 &
    fi
    pid=$!
    for _ in $(seq 50); do redis-cli -p 7602 ping >/dev/null 2>&1 && break; sleep 0.1; done
    start=$(date +%s%3N)
    bash "$here/scripts/redis-import.sh" 127.0.0.1 7601 127.0.0.1 7602 >/dev/null
    end=$(date +%s%3N)
    echo "round $round $target: $((end - start)) ms, keys there: $(redis-cli -p 7602 dbsize)"
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done
