#!/usr/bin/env python3
"""Pipelined XACKs through redis-py, against any Redis-protocol server: how long a consumer's
pipeline of 100 single-ID XACKs takes, sent plain (`pipeline(transaction=False)`) and as a
MULTI/EXEC (`pipeline()`, redis-py's default), and one XACK naming all 100 IDs for reference.
Each round adds 100 entries, reads them with XREADGROUP and times only the acks.

    python3 scripts/bench-xack-pipeline.py PORT [ROUNDS]

Prints the median of ROUNDS (default 50) per shape, in milliseconds per 100 acks.
"""
import statistics
import sys
import time

import redis

ENTRIES = 100


def main():
    port = int(sys.argv[1])
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    client = redis.Redis(port=port)
    client.delete("xack-bench")
    client.xgroup_create("xack-bench", "g", "$", mkstream=True)
    shapes = {"plain pipeline": [], "MULTI/EXEC": [], "one XACK of 100 IDs": []}
    for _ in range(rounds):
        for shape, times in shapes.items():
            fill = client.pipeline(transaction=False)
            for n in range(ENTRIES):
                fill.xadd("xack-bench", {"n": n})
            ids = fill.execute()
            client.xreadgroup("g", "c", {"xack-bench": ">"}, count=ENTRIES)
            started = time.perf_counter()
            if shape == "one XACK of 100 IDs":
                acked = client.xack("xack-bench", "g", *ids)
            else:
                pipe = client.pipeline(transaction=shape == "MULTI/EXEC")
                for entry in ids:
                    pipe.xack("xack-bench", "g", entry)
                acked = sum(pipe.execute())
            times.append(time.perf_counter() - started)
            assert acked == ENTRIES, acked
        client.xtrim("xack-bench", maxlen=0)
    for shape, times in shapes.items():
        print(f"{shape}: {statistics.median(times) * 1000:.2f} ms per {ENTRIES} acks")
    client.delete("xack-bench")


if __name__ == "__main__":
    main()
