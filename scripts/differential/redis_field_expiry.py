"""Seeded hash-field-expiry sequences sent to a redis-server >= 7.4 and to Omnibus's Redis
door, side by side.

Not part of CI: Debian's redis-server is 7.0, without field expiry, so the peer is one built
by hand (a 7.4 release from its source, `make MALLOC=libc`). Run it when the keyspace's
hashes or field deadlines change. Each seed runs a random mix of HSET, HSETNX, HINCRBY,
HDEL, HPEXPIREAT (in the future, or already past, with NX/XX/GT/LT, fields named once or
twice), HPERSIST, HPEXPIRETIME, HGET, HEXISTS, HGETALL, HLEN, RENAME, COPY, SET and DEL over
a few keys and fields, and compares every reply (HGETALL as a set of pairs: a small hash
with field deadlines is in a different order there). Deadlines are absolute and an hour
ahead, so nothing expires by the clock during a run.

    python scripts/differential/redis_field_expiry.py PEER_PORT OMNIBUS_REDIS_PORT [FIRST] [COUNT]

2026-12-07: seeds 1-1000 at 40 steps, no difference (redis-server 7.4.1).
"""

from __future__ import annotations

import random
import sys
import time

import redis

KEYS = ["h1", "h2", "h3", "s"]
FIELDS = ["a", "b", "c", "d"]


def reply(connection, words):
    try:
        return ("ok", connection.execute_command(*words))
    except redis.ResponseError as error:
        return ("err", str(error))


def normalized(words, answer):
    kind, value = answer
    if kind == "ok" and words[0] == "HGETALL":
        items = value.items() if isinstance(value, dict) else zip(value[0::2], value[1::2])
        return sorted(items)
    return answer


def step(rnd, base):
    key = rnd.choice(KEYS)
    fields = [rnd.choice(FIELDS) for _ in range(rnd.randint(1, 3))]
    condition = rnd.choice([[], [], ["NX"], ["XX"], ["GT"], ["LT"]])
    counted = ["FIELDS", str(len(fields))] + fields
    return rnd.choice([
        ["HSET", key] + sum([[f, str(rnd.randint(0, 9))] for f in fields], []),
        ["HPEXPIREAT", key, str(base + rnd.randint(0, 5) * 1000)] + condition + counted,
        ["HPEXPIREAT", key, str(base + rnd.randint(0, 5) * 1000)] + condition + counted,
        ["HPEXPIREAT", key, "1"] + condition + counted,
        ["HPERSIST", key] + counted,
        ["HPEXPIRETIME", key] + counted,
        ["HDEL", key] + fields,
        ["HINCRBY", key, fields[0], "1"],
        ["HSETNX", key, fields[0], "x"],
        ["HGETALL", key],
        ["HLEN", key],
        ["HGET", key, fields[0]],
        ["HEXISTS", key, fields[0]],
        ["RENAME", key, rnd.choice(KEYS)],
        ["COPY", key, rnd.choice(KEYS), "REPLACE"],
        ["SET", key, "a string"],
        ["DEL", key],
    ])


def main() -> int:
    peer = redis.Redis(port=int(sys.argv[1]))
    omnibus = redis.Redis(port=int(sys.argv[2]))
    first = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 200
    base = int(time.time() * 1000) + 3_600_000
    differing = 0
    for seed in range(first, first + count):
        rnd = random.Random(seed)
        for connection in (peer, omnibus):
            connection.delete(*KEYS)
        history = []
        for at in range(40):
            words = step(rnd, base)
            expected = normalized(words, reply(peer, words))
            got = normalized(words, reply(omnibus, words))
            history.append((words, expected))
            if expected != got:
                differing += 1
                print(f"seed {seed} step {at} {words}\n  redis-server: {expected}\n  omnibus:      {got}")
                for earlier, answer in history[-8:-1]:
                    print(f"    {earlier} -> {answer}")
                break
    print(f"{count} seeds, {differing} differing")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
