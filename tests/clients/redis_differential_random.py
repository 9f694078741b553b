"""Random command sequences for `test_redis_differential.py`: the same seeded sequence goes
to redis-server and to the Redis door, and every answer must match. Four families: strings
with TTLs, transactions and multi-key commands over three keys; one stream with two
consumer groups, XDEL, trimming (also by XADD), reads from any ID, and claims and pending
scans that start among entries trimmed away while pending; lists: three list keys and a
string key (WRONGTYPE both ways, SET over a list), every list command, expiry, and
transactions; and hashes: two hash keys, a string key and a list key (WRONGTYPE between
the three kinds, SET over a hash), every hash command the door serves, expiry, and
transactions.

Deadlines grow with the step, so no two commands set the same one within a millisecond
(EXPIRE … GT would then depend on the clock). Groups start at 0, at $ or at an ID the stream
has had, and SETID only moves to $ (docs/redis.md, "Not there yet": a group past the last
entry, or moved back over XDEL'd pending entries, differs). XGROUP CREATECONSUMER is left
out: Redis 7.0 (Debian's) makes a consumer on XCLAIM/XAUTOCLAIM only when it claims
something, 7.2 and later always, as the door does.

The blocking list commands have a timeout of 0.01 s: they answer at once when a list has
elements, else nil once the time is up (no other connection pushes meanwhile), and inside
MULTI they do not block. They are rare, as redis-server notices such a timeout only some
100 ms later. In the lists family every EXPIRE sets a deadline later than any before it, so
GT and LT do not depend on the clock, and the time left is read with PTTL (set aside when
positive: whole seconds of TTL could round apart after redis-server's longer waits).

The hashes family keeps each hash small (six field names, values of a few bytes), so
redis-server keeps it as a listpack: fields in insertion order, and HSCAN from cursor 0
answers the whole hash with cursor 0 whatever its COUNT. Its deadlines grow with the step as
in the lists family; the time left is read with TTL, not PTTL, as a PTTL inside MULTI is not
set aside (EXEC's answer holds it) and no command here waits. WATCH is left out (a WATCH
left open at the end of a seed would outlive the DISCARD between seeds); `hash-watch` in
`redis_differential_cases.py` covers it.
"""

from __future__ import annotations

import random

KEYS = ["k1", "k2", "k3"]
VALUES = ["1", "10", "-3", "abc", "", "9223372036854775806", "x y"]
GROUPS = ["g", "h"]
CONSUMERS = ["c1", "c2", "c3"]
LISTS = ["l1", "l2", "l3"]
LIST_STRING = "s"
ELEMENTS = ["a", "b", "c", "", "x y"]
HASHES = ["h1", "h2"]
HASH_STRING = "s"
HASH_LIST = "l"
FIELDS = ["a", "b", "c", "n", "", "x y"]
HASH_VALUES = ["1", "10", "-3", "abc", "", "9223372036854775806", "x y", "01"]
INCREMENTS = [
    "1", "-2", "5", "100", "0", "9223372036854775807", "-9223372036854775808", "x", "1.5"
]
PATTERNS = ["*", "a*", "?", "[ab]", "x*", "*y", "n", "[^a]*", "zz*"]


def string_command(r: random.Random, step: int) -> list[str]:
    key, value = r.choice(KEYS), r.choice(VALUES)
    later = lambda *seconds: str(r.choice(seconds) + step)  # noqa: E731
    pair = lambda: [word for k in r.sample(KEYS, 2) for word in (k, r.choice(VALUES))]  # noqa: E731
    choices = [
        lambda: ["SET", key, value],
        lambda: ["SET", key, value, r.choice(["NX", "XX"])],
        lambda: ["SET", key, value, "EX", later(100, 200)],
        lambda: ["SET", key, value, "KEEPTTL"],
        lambda: ["SET", key, value, "GET"],
        lambda: ["GET", key],
        lambda: ["GETDEL", key],
        lambda: ["GETEX", key, "PERSIST"],
        lambda: ["GETEX", key, "EX", later(50, 500)],
        lambda: ["INCR", key],
        lambda: ["INCRBY", key, r.choice(["5", "-7", "9223372036854775807"])],
        lambda: ["DECR", key],
        lambda: ["APPEND", key, value],
        lambda: ["STRLEN", key],
        lambda: ["DEL", *r.sample(KEYS, r.randrange(1, 3))],
        lambda: ["EXISTS", *[r.choice(KEYS) for _ in range(r.randrange(1, 4))]],
        lambda: ["EXPIRE", key, r.choice([later(100), later(300), "0", "-1"]),
                 *r.choice([[], ["NX"], ["XX"], ["GT"], ["LT"]])],
        lambda: ["TTL", key],
        lambda: ["PERSIST", key],
        lambda: ["MSET", *pair()],
        lambda: ["MSETNX", *pair()],
        lambda: ["MGET", *KEYS],
        lambda: ["SETNX", key, value],
        lambda: ["SETEX", key, r.choice([later(150), "0"]), value],
        lambda: ["GETSET", key, value],
        lambda: ["GETRANGE", key, str(r.randrange(-5, 5)), str(r.randrange(-5, 5))],
        lambda: ["TYPE", key],
        lambda: ["DBSIZE"],
        lambda: ["EXPIRETIME", key],
        lambda: ["TOUCH", key],
        lambda: ["UNLINK", key],
        lambda: ["MULTI"],
        lambda: ["EXEC"],
        lambda: ["DISCARD"],
    ]
    return r.choice(choices)()


def stream_command(r: random.Random, added: list[str]) -> list[str]:
    """One command on stream `s`; `added` holds the IDs XADDed so far (1-1, 2-1, …)."""
    known = added or ["1-1"]
    some_id = lambda: r.choice(known + ["99-9", "0-1"])  # noqa: E731
    group, consumer = r.choice(GROUPS), r.choice(CONSUMERS)
    count = lambda: str(r.randrange(1, 4))  # noqa: E731

    def add():
        added.append(f"{len(added) + 1}-1")
        trim = r.choice([[], [], ["MAXLEN", str(r.randrange(1, 6))], ["MINID", some_id()]])
        return ["XADD", "s", *trim, added[-1], "f", str(len(added))]

    choices = [add] * 6 + [
        lambda: ["XDEL", "s", some_id(), some_id()],
        lambda: ["XTRIM", "s", "MAXLEN", str(r.randrange(0, 6))],
        lambda: ["XTRIM", "s", "MINID", some_id()],
        lambda: ["XRANGE", "s", some_id(), "+", "COUNT", count()],
        lambda: ["XRANGE", "s", "(" + some_id(), "+"],
        lambda: ["XREVRANGE", "s", "+", some_id()],
        lambda: ["XREAD", "COUNT", count(), "STREAMS", "s", some_id()],
        lambda: ["XLEN", "s"],
        lambda: ["XGROUP", "CREATE", "s", group, r.choice(["0", "$", *known])],
        lambda: ["XREADGROUP", "GROUP", group, consumer, "COUNT", count(), "STREAMS", "s", ">"],
        lambda: ["XREADGROUP", "GROUP", group, consumer, "COUNT", count(), "NOACK",
                 "STREAMS", "s", ">"],
        lambda: ["XREADGROUP", "GROUP", group, consumer, "STREAMS", "s", r.choice(["0", some_id()])],
        lambda: ["XACK", "s", group, some_id(), some_id()],
        lambda: ["XPENDING", "s", group],
        lambda: ["XPENDING", "s", group, "-", "+", "10"],
        lambda: ["XPENDING", "s", group, some_id(), "+", count(), consumer],
        lambda: ["XCLAIM", "s", group, consumer, "0", some_id(), some_id(), "JUSTID"],
        lambda: ["XCLAIM", "s", group, consumer, "0", some_id()],
        lambda: ["XAUTOCLAIM", "s", group, consumer, "0", r.choice(["0-0", some_id()]),
                 "COUNT", count(), "JUSTID"],
        lambda: ["XAUTOCLAIM", "s", group, consumer, "0", "0-0", "COUNT", count()],
        lambda: ["XGROUP", "DELCONSUMER", "s", group, consumer],
        lambda: ["XGROUP", "SETID", "s", group, "$"],
        lambda: ["XGROUP", "DESTROY", "s", group],
        lambda: ["XINFO", "GROUPS", "s"],
    ]
    return r.choice(choices)()


def list_command(r: random.Random, step: int) -> list[str]:
    """One command over the lists `l1`, `l2`, `l3` and the string key `s`."""
    key = lambda: r.choice(LISTS * 3 + [LIST_STRING])  # noqa: E731
    keys = lambda: r.sample(LISTS + [LIST_STRING], r.randrange(1, 4))  # noqa: E731
    element = lambda: r.choice(ELEMENTS)  # noqa: E731
    elements = lambda: [element() for _ in range(r.randrange(1, 5))]  # noqa: E731
    index = lambda: str(r.randrange(-6, 6))  # noqa: E731
    side = lambda: r.choice(["LEFT", "RIGHT"])  # noqa: E731
    push = lambda: [r.choice(["LPUSH", "RPUSH"]), key(), *elements()]  # noqa: E731

    def count():
        return r.choice([[], [], ["COUNT", str(r.randrange(1, 4))], ["COUNT", "0"]])

    def lpos():
        options = []
        if r.random() < 0.5:
            options.append(["RANK", r.choice(["1", "2", "3", "-1", "-2", "0"])])
        if r.random() < 0.5:
            options.append(["COUNT", str(r.randrange(0, 3))])
        if r.random() < 0.3:
            options.append(["MAXLEN", str(r.randrange(0, 4))])
        r.shuffle(options)
        return ["LPOS", key(), element(), *[word for option in options for word in option]]

    def lmpop():
        names = keys()
        return ["LMPOP", str(len(names)), *names, side(), *count()]

    def blocking():
        # At once on a list with elements, else nil after 0.01 s; queued inside MULTI.
        names = keys()
        return r.choice([
            ["BLPOP", *names, "0.01"],
            ["BRPOP", *names, "0.01"],
            ["BLMOVE", key(), key(), side(), side(), "0.01"],
            ["BRPOPLPUSH", key(), key(), "0.01"],
            ["BLMPOP", "0.01", str(len(names)), *names, side(), *count()],
        ])

    choices = [
        push,
        push,
        push,
        lambda: [r.choice(["LPUSHX", "RPUSHX"]), key(), *elements()],
        lambda: [r.choice(["LPOP", "RPOP"]), key()],
        lambda: [r.choice(["LPOP", "RPOP"]), key(), r.choice(["0", "1", "2", "5", "-1"])],
        lambda: ["LLEN", key()],
        lambda: ["LRANGE", key(), index(), index()],
        lambda: ["LRANGE", key(), "0", "-1"],
        lambda: ["LINDEX", key(), index()],
        lambda: ["LSET", key(), str(r.randrange(-4, 4)), element()],
        lambda: ["LINSERT", key(), r.choice(["BEFORE", "AFTER"]), element(), element()],
        lambda: ["LREM", key(), str(r.randrange(-2, 3)), element()],
        lambda: ["LTRIM", key(), index(), index()],
        lpos,
        lambda: ["LMOVE", key(), key(), side(), side()],
        lambda: ["RPOPLPUSH", key(), key()],
        lmpop,
        blocking,
        lambda: ["SET", r.choice([LIST_STRING] * 6 + LISTS), element()],
        lambda: r.choice([["GET", key()], ["STRLEN", key()], ["APPEND", key(), element()]]),
        lambda: ["MGET", *keys()],
        lambda: [r.choice(["DEL", "GETDEL"]), key()],
        lambda: ["EXISTS", *keys()],
        lambda: ["TYPE", key()],
        lambda: ["EXPIRE", key(), str(1000 + step),
                 *r.choice([[], ["NX"], ["XX"], ["GT"], ["LT"]])],
        lambda: ["EXPIRE", key(), r.choice(["0", "-1"])],
        lambda: ["PTTL", key()],
        lambda: ["PERSIST", key()],
        lambda: ["DBSIZE"],
        lambda: ["MULTI"],
        lambda: ["EXEC"],
        lambda: ["DISCARD"],
    ]
    return r.choice(choices)()


def hash_command(r: random.Random, step: int) -> list[str]:
    """One command over the hashes `h1`, `h2`, the string key `s` and the list key `l`."""
    key = lambda: r.choice(HASHES * 5 + [HASH_STRING, HASH_LIST])  # noqa: E731
    keys = lambda: r.sample(HASHES + [HASH_STRING, HASH_LIST], r.randrange(1, 4))  # noqa: E731
    field = lambda: r.choice(FIELDS)  # noqa: E731
    fields = lambda: [field() for _ in range(r.randrange(1, 4))]  # noqa: E731
    value = lambda: r.choice(HASH_VALUES)  # noqa: E731
    pairs = lambda: [w for _ in range(r.randrange(1, 4)) for w in (field(), value())]  # noqa: E731
    # String and list commands go mostly to `s` and `l`, now and then to a hash key.
    plain = lambda: r.choice([HASH_STRING] * 3 + [HASH_LIST] * 2 + HASHES)  # noqa: E731

    def hscan():
        options = []
        if r.random() < 0.5:
            options.append(["MATCH", r.choice(PATTERNS)])
        if r.random() < 0.4:
            options.append(["COUNT", r.choice(["1", "2", "10", "0"])])
        r.shuffle(options)
        return ["HSCAN", key(), "0", *[word for option in options for word in option]]

    def wrong_arity():
        # An odd pair count is refused when run (inside MULTI: queued, then an error in
        # EXEC); too few words are refused at once (inside MULTI: EXECABORT).
        return r.choice([["HSET", key(), field(), value(), field()], ["HSET", key(), field()],
                         ["HMSET", key(), field()], ["HGET", key()]])

    choices = [
        lambda: ["HSET", key(), *pairs()],
        lambda: ["HSET", key(), *pairs()],
        lambda: ["HSET", key(), *pairs()],
        lambda: ["HSETNX", key(), field(), value()],
        lambda: ["HMSET", key(), *pairs()],
        lambda: ["HGET", key(), field()],
        lambda: ["HMGET", key(), *fields()],
        lambda: ["HGETALL", key()],
        lambda: ["HGETALL", key()],
        lambda: [r.choice(["HKEYS", "HVALS", "HLEN"]), key()],
        lambda: ["HDEL", key(), *fields()],
        lambda: ["HDEL", key(), *fields()],
        lambda: ["HEXISTS", key(), field()],
        lambda: ["HINCRBY", key(), field(), r.choice(INCREMENTS)],
        lambda: ["HINCRBY", key(), field(), r.choice(INCREMENTS)],
        lambda: ["HSTRLEN", key(), field()],
        hscan,
        wrong_arity,
        lambda: ["SET", r.choice([HASH_STRING] * 6 + HASHES), value()],
        lambda: ["RPUSH", r.choice([HASH_LIST] * 6 + HASHES + [HASH_STRING]), value()],
        lambda: ["LPOP", r.choice([HASH_LIST] * 3 + HASHES)],
        lambda: r.choice([["GET", plain()], ["APPEND", plain(), value()], ["INCR", plain()],
                          ["LRANGE", plain(), "0", "-1"], ["LLEN", plain()]]),
        lambda: r.choice([["SETNX", plain(), value()], ["MSETNX", plain(), value()]]),
        lambda: ["MGET", *keys()],
        lambda: [r.choice(["DEL", "UNLINK"]), *keys()],
        lambda: ["EXISTS", *keys()],
        lambda: ["TYPE", key()],
        lambda: ["EXPIRE", key(), str(1000 + step),
                 *r.choice([[], ["NX"], ["XX"], ["GT"], ["LT"]])],
        lambda: ["EXPIRE", key(), r.choice(["0", "-1"])],
        lambda: ["TTL", key()],
        lambda: ["PERSIST", key()],
        lambda: ["DBSIZE"],
        # One key at most, so the answer's order does not matter inside MULTI either.
        lambda: ["SCAN", "0", "MATCH", key(), "TYPE", r.choice(["hash", "string", "list"])],
        lambda: ["MULTI"],
        lambda: ["EXEC"],
        lambda: ["DISCARD"],
    ]
    return r.choice(choices)()


def sequence(family: str, seed: int, length: int) -> list[list[str]]:
    """The commands of one seeded sequence of `family` ("strings", "streams", "lists" or
    "hashes")."""
    r = random.Random(seed)
    if family == "strings":
        return [string_command(r, step) for step in range(length)]
    if family == "lists":
        return [list_command(r, step) for step in range(length)]
    if family == "hashes":
        return [hash_command(r, step) for step in range(length)]
    added: list[str] = []
    return [stream_command(r, added) for _ in range(length)]
