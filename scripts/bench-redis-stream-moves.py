#!/usr/bin/env python3
"""DUMP, RESTORE, RENAME and COPY of a stream key, through redis-py, against any
Redis-protocol server: how long each takes for a stream of ENTRIES entries (one 100-byte
field each) with a consumer group holding PENDING pending entries over 10 consumers. The
stream is made once per round by XADD (pipelined), then timed: DUMP of it; RESTORE of that
payload under a new name; RENAME of the restored key; COPY of it. Every server gets the
payload its own DUMP wrote.

    python3 scripts/bench-redis-stream-moves.py PORT [ROUNDS] [ENTRIES] [PENDING]

Prints one line per operation: the median of ROUNDS (default 3) in milliseconds, with the
rounds' figures.
"""
import statistics
import sys
import time

import redis


def make(client, key, entries, pending):
    client.delete(key)
    value = "x" * 100
    for start in range(0, entries, 1_000):
        pipe = client.pipeline(transaction=False)
        for n in range(start, min(start + 1_000, entries)):
            pipe.xadd(key, {"v": value}, id=f"{1_000_000 + n}-0")
        pipe.execute()
    client.xgroup_create(key, "g", id="0")
    for consumer in range(10):
        client.xreadgroup("g", f"c{consumer}", {key: ">"}, count=pending // 10)


def timed(action):
    started = time.perf_counter()
    result = action()
    return (time.perf_counter() - started) * 1000, result


def main():
    port = int(sys.argv[1])
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    entries = int(sys.argv[3]) if len(sys.argv) > 3 else 100_000
    pending = int(sys.argv[4]) if len(sys.argv) > 4 else 1_000
    client = redis.Redis(port=port, socket_timeout=600)
    times = {"DUMP": [], "RESTORE": [], "RENAME": [], "COPY": []}
    for _ in range(rounds):
        make(client, "moves-source", entries, pending)
        client.delete("moves-restored", "moves-renamed", "moves-copied")
        ms, payload = timed(lambda: client.dump("moves-source"))
        times["DUMP"].append(ms)
        ms, _ = timed(lambda: client.restore("moves-restored", 0, payload))
        times["RESTORE"].append(ms)
        ms, _ = timed(lambda: client.rename("moves-restored", "moves-renamed"))
        times["RENAME"].append(ms)
        ms, _ = timed(lambda: client.copy("moves-renamed", "moves-copied"))
        times["COPY"].append(ms)
        assert client.xlen("moves-copied") == entries
        assert client.xpending("moves-copied", "g")["pending"] == pending
        client.delete("moves-source", "moves-renamed", "moves-copied")
    print(f"payload: {len(payload)} bytes, {entries} entries, {pending} pending")
    for operation, values in times.items():
        figures = " ".join(f"{value:.1f}" for value in values)
        print(f"{operation}: median {statistics.median(values):.1f} ms ({figures})")


if __name__ == "__main__":
    main()
