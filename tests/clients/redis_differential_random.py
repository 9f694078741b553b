"""Random command sequences for `test_redis_differential.py`: the same seeded sequence goes
to redis-server and to the Redis door, and every answer must match. Seven families: strings
with TTLs, bit commands (BITFIELD among them) and SETRANGE, transactions and multi-key commands over three keys; one stream with two
consumer groups, XDEL, trimming (also by XADD), reads from any ID, claims and pending
scans that start among entries trimmed away while pending, and transactions (each command
in EXEC sees the ones before it); lists: three list keys and a string key (WRONGTYPE both
ways, SET over a list), every list command, expiry, and transactions; hashes: two hash keys, a string key and a list key (WRONGTYPE between
the three kinds, SET over a hash), every hash command the door serves, expiry, and
transactions; sets: three set keys, a string key and a list key, every set command with a
single answer (the algebra and its STORE forms, which replace a key of any kind, SMOVE,
SINTERCARD, SSCAN; SPOP and SRANDMEMBER only with count 0), expiry, and transactions;
sorted sets: two sorted-set keys, one whose scores are all 0 for the lexicographic
commands, a destination key, a set key (ZUNIONSTORE and ZINTERSTORE read a set's members
as of score 1) and a string key, every sorted-set command with a single answer (ZADD's
options and their refused combinations, ranges by index, score and member, LIMIT, the
removals by range, pops, ZRANGESTORE, ZUNIONSTORE/ZINTERSTORE with WEIGHTS and AGGREGATE,
ZSCAN; ZRANDMEMBER only with count 0), expiry, and transactions; and geo: two geo keys whose
points gather around one place per seed (Sicily, the antimeridian, the latitude limit, the
equator and prime meridian) with a few elsewhere and a few refused, every geo command with
its options (searches by radius and box, from a member or a position, sorted, counted,
stored), ZRANGE/ZREM/ZCARD over them, and a string key for WRONGTYPE.

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

The sets family keeps each set under 10 members (eight member names, integers among them),
so SSCAN from cursor 0 with redis-server's default COUNT of 10, or a COUNT of 10 or 100,
answers the whole set with cursor 0; the test sorts a set's members before comparing. The
sorted-sets family keeps eight member names, so each sorted set stays a listpack and ZSCAN
answers all of it, in score order, whatever its COUNT. Scores and increments are small
integers, halves and infinities, and WEIGHTS 1, 2 or 3, so every score stays short in
Redis 7.0's %.17g (no 0.1, no exponent) and never becomes -0; +inf and -inf added together
make 0 in ZUNIONSTORE/ZINTERSTORE's SUM (Redis's rule) and an error in ZINCRBY and ZADD
INCR. Lexicographic
ranges go only to the key whose scores are all 0 (ZADD there only with score 0, no ZINCRBY,
and ZRANGESTORE into it only from itself). As in the hashes family, deadlines grow with the
step, the time left is read with TTL, and WATCH is left out (`set-watch` and
`zset-transactions` cover it).
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
SETS = ["s1", "s2", "s3"]
SET_STRING = "str"
SET_LIST = "l"
# Eight members at most (under SSCAN's default COUNT of 10), integers and others mixed.
MEMBERS = ["a", "b", "c", "1", "2", "10", "", "x y"]
SET_PATTERNS = ["*", "a*", "?", "[ab]", "1*", "x*", "[^a]*", "zz*"]
ZSETS = ["z1", "z2"]
# Every member of `zl` has score 0, so that lexicographic ranges have a defined answer.
ZSET_LEX = "zl"
# A destination only, and a set (ZUNIONSTORE/ZINTERSTORE read a set's members as score 1).
ZSET_DEST = "zd"
ZSET_SET = "s"
ZSET_STRING = "str"
ZMEMBERS = ["a", "b", "c", "d", "", "x y", "10", "9"]
# Scores and increments whose sums stay short in %.17g (halves, small integers, infinities).
SCORES = ["-2", "-1", "0", "0.5", "1", "1.5", "2", "3", "+inf", "-inf", "inf"]
ZINCREMENTS = ["1", "-1", "0.5", "2.5", "0", "inf", "-inf", "x"]
SCORE_BOUNDS = ["-inf", "+inf", "0", "(0", "1", "(1", "1.5", "(1.5", "2", "(3", "-1", "x"]
LEX_BOUNDS = ["-", "+", "[a", "(a", "[b", "(c", "[x y", "[", "(", "[10", "a"]


def bitfield_operations(r: random.Random) -> list[str]:
    """One to three BITFIELD operations, with an OVERFLOW now and then."""
    words: list[str] = []
    for _ in range(r.randrange(1, 4)):
        if r.random() < 0.3:
            words += ["OVERFLOW", r.choice(["WRAP", "SAT", "FAIL"])]
        kind = r.choice(["u8", "i8", "u3", "i5", "u63", "i64", "u1"])
        offset = r.choice([str(r.randrange(0, 40)), f"#{r.randrange(0, 4)}"])
        operation = r.choice(["GET", "SET", "INCRBY"])
        words += [operation, kind, offset]
        if operation != "GET":
            words.append(r.choice(["1", "-1", "100", "-300", "9223372036854775807",
                                   "-9223372036854775808", "0"]))
    return words


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
        lambda: ["SUBSTR", key, str(r.randrange(-5, 5)), str(r.randrange(-5, 5))],
        lambda: ["LCS", key, r.choice(KEYS), *r.choice([
            [], ["LEN"], ["IDX"], ["IDX", "WITHMATCHLEN"], ["LEN", "IDX"],
            ["IDX", "MINMATCHLEN", str(r.randrange(-1, 3)), "WITHMATCHLEN"]])],
        lambda: ["SETRANGE", key, str(r.randrange(-1, 12)), r.choice([value, ""])],
        lambda: ["SETBIT", key, str(r.randrange(-1, 80)), r.choice(["0", "1", "2"])],
        lambda: ["GETBIT", key, str(r.randrange(0, 80))],
        lambda: ["BITCOUNT", key, *r.choice([[], [str(r.randrange(-6, 6)), str(r.randrange(-6, 6)),
                                                  *r.choice([[], ["BIT"], ["BYTE"]])]])],
        lambda: ["BITPOS", key, r.choice(["0", "1"]),
                 *[str(r.randrange(-20, 20)) for _ in range(r.randrange(0, 3))]],
        lambda: ["BITOP", r.choice(["AND", "OR", "XOR"]), *r.sample(KEYS, 2), r.choice(KEYS)],
        lambda: ["BITOP", "NOT", key, r.choice(KEYS)],
        lambda: ["BITFIELD", key, *bitfield_operations(r)],
        lambda: ["BITFIELD_RO", key, "GET", r.choice(["u8", "i5", "u1", "i64"]),
                 str(r.randrange(0, 40))],
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
        lambda: ["XGROUP", "CREATE", "s", group, "$", "MKSTREAM"],
        lambda: ["XGROUP", "CREATECONSUMER", "s", group, consumer],
        lambda: ["XINFO", "GROUPS", "s"],
        lambda: ["XSETID", "s", added[-1] if added else "1-1"],
        lambda: ["XADD", "s", "NOMKSTREAM", *add()[2:]],
        # The stream key as a key: gone (and made again by the next XADD), or given a
        # deadline far enough away that it never passes during the sequence.
        lambda: ["DEL", "s"] if r.random() < 0.3 else ["TTL", "s"],
        lambda: ["EXPIRE", "s", "1000"],
        lambda: ["PERSIST", "s"],
        # Each command in EXEC sees the ones before it and none after.
        lambda: ["MULTI"],
        lambda: ["EXEC"],
        lambda: ["DISCARD"],
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

    def sort():
        words = ["SORT", key()]
        by = None
        if r.random() < 0.3:
            by = r.choice(["nosort", "s", "l*", "*"])
            words += ["BY", by]
        limited = r.random() < 0.4
        # Equal BY values keep no defined order under a LIMIT (redis-server's partial
        # sort), so ALPHA by a pattern goes without one.
        if r.random() < 0.5 and not (limited and by in ("l*", "*")):
            words.append("ALPHA")
        if r.random() < 0.4:
            words.append(r.choice(["ASC", "DESC"]))
        if limited:
            words += ["LIMIT", str(r.randrange(-1, 4)), str(r.randrange(-1, 4))]
        for _ in range(r.choice([0, 0, 1, 2])):
            words += ["GET", r.choice(["#", "s", "l*", "*", "*->f"])]
        if r.random() < 0.3:
            words += ["STORE", key()]
        return words

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
        sort,
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


def set_command(r: random.Random, step: int) -> list[str]:
    """One command over the sets `s1`, `s2`, `s3`, the string key `str` and the list key
    `l`."""
    key = lambda: r.choice(SETS * 5 + [SET_STRING, SET_LIST])  # noqa: E731
    keys = lambda: [key() for _ in range(r.randrange(1, 4))]  # noqa: E731
    member = lambda: r.choice(MEMBERS)  # noqa: E731
    members = lambda: [member() for _ in range(r.randrange(1, 5))]  # noqa: E731
    # String and list commands go mostly to `str` and `l`, now and then to a set.
    plain = lambda: r.choice([SET_STRING] * 3 + [SET_LIST] * 2 + SETS)  # noqa: E731

    def sscan():
        options = []
        if r.random() < 0.5:
            options.append(["MATCH", r.choice(SET_PATTERNS)])
        if r.random() < 0.4:
            # At least the number of members: a hash-table set answers whole at cursor 0.
            options.append(["COUNT", r.choice(["10", "100"])])
        r.shuffle(options)
        return ["SSCAN", key(), "0", *[word for option in options for word in option]]

    def sintercard():
        names = keys()
        limit = r.choice([[], [], ["LIMIT", str(r.randrange(0, 4))]])
        return ["SINTERCARD", r.choice([str(len(names))] * 5 + ["0"]), *names, *limit]

    def wrong_arity():
        # Too few words are refused at once (inside MULTI: EXECABORT).
        return r.choice([["SADD", key()], ["SREM", key()], ["SISMEMBER", key()],
                         ["SMOVE", key(), key()], ["SINTER"], ["SUNIONSTORE", key()]])

    choices = [
        lambda: ["SADD", key(), *members()],
        lambda: ["SADD", key(), *members()],
        lambda: ["SADD", key(), *members()],
        lambda: ["SADD", key(), *members()],
        lambda: ["SADD", key(), *members()],
        lambda: ["SREM", key(), *members()],
        lambda: ["SREM", key(), *members()],
        lambda: ["SMEMBERS", key()],
        lambda: ["SMEMBERS", key()],
        lambda: ["SISMEMBER", key(), member()],
        lambda: ["SMISMEMBER", key(), *members()],
        lambda: ["SCARD", key()],
        lambda: ["SMOVE", key(), key(), member()],
        lambda: ["SMOVE", key(), key(), member()],
        lambda: [r.choice(["SINTER", "SUNION", "SDIFF"]), *keys()],
        lambda: [r.choice(["SINTER", "SUNION", "SDIFF"]), *keys()],
        lambda: [r.choice(["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]), key(), *keys()],
        lambda: [r.choice(["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]), key(), *keys()],
        sintercard,
        sscan,
        lambda: [r.choice(["SPOP", "SRANDMEMBER"]), key(), "0"],
        wrong_arity,
        lambda: ["SET", r.choice([SET_STRING] * 6 + SETS), member()],
        lambda: ["RPUSH", r.choice([SET_LIST] * 6 + SETS + [SET_STRING]), member()],
        lambda: ["LPOP", r.choice([SET_LIST] * 3 + SETS)],
        lambda: r.choice([["GET", plain()], ["APPEND", plain(), member()],
                          ["LRANGE", plain(), "0", "-1"], ["LLEN", plain()]]),
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
        lambda: ["SCAN", "0", "MATCH", key(), "TYPE", r.choice(["set", "string", "list"])],
        lambda: ["MULTI"],
        lambda: ["EXEC"],
        lambda: ["DISCARD"],
    ]
    return r.choice(choices)()


def zset_command(r: random.Random, step: int) -> list[str]:
    """One command over the sorted sets `z1`, `z2`, `zl` (all scores 0) and `zd` (a
    destination), the set `s` and the string key `str`."""
    every = ZSETS * 4 + [ZSET_LEX] * 2 + [ZSET_DEST, ZSET_STRING, ZSET_SET]
    key = lambda: r.choice(every)  # noqa: E731
    # Keys whose scores may be anything, and the lexicographic ones.
    scored = lambda: r.choice(ZSETS * 4 + [ZSET_DEST, ZSET_STRING])  # noqa: E731
    # Not `str`: once deleted, a ZADD may make it a sorted set of mixed scores, where a
    # lexicographic range has no defined answer. `zmissing` is never written.
    lexed = lambda: r.choice([ZSET_LEX] * 6 + ["zmissing"])  # noqa: E731
    member = lambda: r.choice(ZMEMBERS)  # noqa: E731
    members = lambda: [member() for _ in range(r.randrange(1, 4))]  # noqa: E731
    score = lambda: r.choice(SCORES)  # noqa: E731
    index = lambda: str(r.randrange(-5, 6))  # noqa: E731
    bound = lambda: r.choice(SCORE_BOUNDS)  # noqa: E731
    lex = lambda: r.choice(LEX_BOUNDS)  # noqa: E731
    withscores = lambda: r.choice([[], ["WITHSCORES"]])  # noqa: E731

    def limit():
        return r.choice([[], [], ["LIMIT", str(r.randrange(-1, 4)), str(r.randrange(-1, 4))]])

    def zadd():
        lex_key = r.random() < 0.25
        name = ZSET_LEX if lex_key else scored()
        options = []
        if r.random() < 0.4:
            options.append(r.choice(["NX", "XX"]))
        if r.random() < 0.3:
            options.append(r.choice(["GT", "LT"]))
        if r.random() < 0.3:
            options.append("CH")
        r.shuffle(options)
        pick = (lambda: "0") if lex_key else score
        if r.random() < 0.2:
            options.append("INCR")
            pairs = [pick(), member()]
        else:
            pairs = [w for _ in range(r.randrange(1, 5)) for w in (pick(), member())]
        return ["ZADD", name, *options, *pairs]

    def zrange():
        form = r.choice(["index", "index", "score", "lex"])
        if form == "index":
            return ["ZRANGE", key(), index(), index(), *r.choice([[], ["REV"]]), *withscores()]
        if form == "score":
            rev = r.choice([[], ["REV"]])
            return ["ZRANGE", key(), bound(), bound(), "BYSCORE", *rev, *limit(), *withscores()]
        return ["ZRANGE", lexed(), lex(), lex(), "BYLEX", *r.choice([[], ["REV"]]), *limit()]

    def zrangestore():
        form = r.choice(["index", "score", "lex"])
        if form == "lex":
            # Only `zl` into `zl` or `zd`, so lexicographic ranges keep meeting scores of 0.
            return ["ZRANGESTORE", r.choice([ZSET_LEX, ZSET_DEST]), ZSET_LEX, lex(), lex(),
                    "BYLEX", *limit()]
        dest = r.choice(ZSETS + [ZSET_DEST])
        if form == "index":
            return ["ZRANGESTORE", dest, key(), index(), index()]
        return ["ZRANGESTORE", dest, key(), bound(), bound(), "BYSCORE", *limit()]

    def combine():
        sources = [r.choice(ZSETS * 2 + [ZSET_LEX, ZSET_SET, ZSET_DEST, ZSET_STRING])
                   for _ in range(r.randrange(1, 4))]
        options = []
        if r.random() < 0.4:
            options.append(["WEIGHTS", *[r.choice(["1", "2", "3"]) for _ in sources]])
        if r.random() < 0.4:
            options.append(["AGGREGATE", r.choice(["SUM", "MIN", "MAX"])])
        r.shuffle(options)
        return [r.choice(["ZUNIONSTORE", "ZINTERSTORE"]), r.choice(ZSETS + [ZSET_DEST]),
                str(len(sources)), *sources, *[w for option in options for w in option]]

    def zscan():
        options = []
        if r.random() < 0.5:
            options.append(["MATCH", r.choice(PATTERNS)])
        if r.random() < 0.4:
            options.append(["COUNT", r.choice(["1", "2", "10"])])
        r.shuffle(options)
        return ["ZSCAN", key(), "0", *[word for option in options for word in option]]

    def wrong_arity():
        # Too few words are refused at once (inside MULTI: EXECABORT).
        return r.choice([["ZADD", key(), score()], ["ZREM", key()], ["ZSCORE", key()],
                         ["ZRANGE", key(), "0"], ["ZINCRBY", key(), "1"]])

    choices = [
        zadd,
        zadd,
        zadd,
        zadd,
        zadd,
        zadd,
        lambda: ["ZINCRBY", scored(), r.choice(ZINCREMENTS), member()],
        lambda: ["ZINCRBY", scored(), r.choice(ZINCREMENTS), member()],
        lambda: ["ZREM", key(), *members()],
        lambda: ["ZREM", key(), *members()],
        lambda: ["ZSCORE", key(), member()],
        lambda: ["ZMSCORE", key(), *members()],
        lambda: ["ZCARD", key()],
        lambda: ["ZCOUNT", key(), bound(), bound()],
        lambda: [r.choice(["ZRANGEBYSCORE", "ZREVRANGEBYSCORE"]), key(), bound(), bound(),
                 *withscores(), *limit()],
        lambda: ["ZLEXCOUNT", lexed(), lex(), lex()],
        lambda: [r.choice(["ZRANGEBYLEX", "ZREVRANGEBYLEX"]), lexed(), lex(), lex(), *limit()],
        zrange,
        zrange,
        lambda: ["ZREVRANGE", key(), index(), index(), *withscores()],
        lambda: [r.choice(["ZRANK", "ZREVRANK"]), key(), member()],
        lambda: ["ZREMRANGEBYSCORE", key(), bound(), bound()],
        lambda: ["ZREMRANGEBYRANK", key(), index(), index()],
        lambda: ["ZREMRANGEBYLEX", lexed(), lex(), lex()],
        lambda: [r.choice(["ZPOPMIN", "ZPOPMAX"]), key()],
        lambda: [r.choice(["ZPOPMIN", "ZPOPMAX"]), key(), r.choice(["0", "1", "2", "5", "-1"])],
        zrangestore,
        combine,
        zscan,
        lambda: ["ZRANDMEMBER", key(), "0", *withscores()],
        wrong_arity,
        lambda: ["SET", r.choice([ZSET_STRING] * 6 + ZSETS + [ZSET_LEX]), member()],
        lambda: ["SADD", r.choice([ZSET_SET] * 6 + ZSETS), member()],
        lambda: r.choice([["GET", key()], ["SMEMBERS", key()], ["SCARD", key()]]),
        lambda: [r.choice(["DEL", "UNLINK"]), *[key() for _ in range(r.randrange(1, 3))]],
        lambda: ["EXISTS", *[key() for _ in range(r.randrange(1, 4))]],
        lambda: ["TYPE", key()],
        lambda: ["EXPIRE", key(), str(1000 + step),
                 *r.choice([[], ["NX"], ["XX"], ["GT"], ["LT"]])],
        lambda: ["EXPIRE", key(), r.choice(["0", "-1"])],
        lambda: ["TTL", key()],
        lambda: ["PERSIST", key()],
        lambda: ["DBSIZE"],
        # One key at most, so the answer's order does not matter inside MULTI either.
        lambda: ["SCAN", "0", "MATCH", key(), "TYPE", r.choice(["zset", "set", "string"])],
        lambda: ["MULTI"],
        lambda: ["EXEC"],
        lambda: ["DISCARD"],
    ]
    return r.choice(choices)()


GEO_KEYS = ["g1", "g2"]
GEO_MEMBERS = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]
# Where points gather: Sicily, the antimeridian, near the pole limit, the equator and the
# prime meridian (a search there spans cells on both sides of each line).
GEO_CENTRES = [(13.5, 37.8), (179.9, -16.5), (-120.0, 84.9), (0.0, 0.0), (-179.95, 65.0)]
GEO_UNITS = ["m", "km", "ft", "mi", "KM"]


def geo_command(r: random.Random, step: int, home: tuple[float, float]) -> list[str]:
    """One command over the geo keys `g1`, `g2`, the destination `gd` and the string key
    `s`; most points gather around `home`, so searches find several."""
    key = lambda: r.choice(GEO_KEYS * 6 + ["gd", "s", "gmissing"])  # noqa: E731
    member = lambda: r.choice(GEO_MEMBERS + ["zz"])  # noqa: E731
    unit = lambda: r.choice(GEO_UNITS)  # noqa: E731

    def point() -> list[str]:
        if r.random() < 0.03:
            return [r.choice(["181", "-180.5", "x"]), r.choice(["86", "-85.06", "10"])]
        lon, lat = home if r.random() < 0.85 else r.choice(GEO_CENTRES)
        spread = r.choice([0.001, 0.05, 0.5, 0.5, 3.0])
        lon = max(-180.0, min(180.0, lon + r.uniform(-spread, spread)))
        lat = max(-85.05, min(85.05, lat + r.uniform(-spread, spread)))
        return [f"{lon:.6f}", f"{lat:.6f}"]

    def distance() -> list[str]:
        radius = r.choice(["0", "1", "50", "200", "200", "1000", "5000", "20000"])
        return ["-1" if r.random() < 0.02 else radius, unit()]

    def options(store: bool) -> list[str]:
        groups: list[list[str]] = []
        if not store:
            for word in ["WITHDIST", "WITHHASH", "WITHCOORD"]:
                if r.random() < 0.4:
                    groups.append([word])
        if r.random() < 0.5:
            groups.append([r.choice(["ASC", "DESC"])])
        if r.random() < 0.5:
            groups.append(["COUNT", "0" if r.random() < 0.03 else r.choice(["1", "2", "3", "5"])])
            if r.random() < 0.3:
                groups.append(["ANY"])
        r.shuffle(groups)
        return [word for group in groups for word in group]

    def centre() -> list[str]:
        if r.random() < 0.5:
            return ["FROMMEMBER", member()]
        return ["FROMLONLAT", *point()]

    def shape() -> list[str]:
        if r.random() < 0.5:
            return ["BYRADIUS", *distance()]
        width, height = r.choice(["1", "100", "400", "3000"]), r.choice(["1", "100", "400", "3000"])
        return ["BYBOX", width, height, unit()]

    def adds() -> list[str]:
        words = [*point(), member()]
        while r.random() < 0.7:
            words += [*point(), member()]
        return words

    choices = [
        lambda: ["GEOADD", key(), *adds()],
        lambda: ["GEOADD", key(), *adds()],
        lambda: ["GEOADD", key(), r.choice(["NX", "XX", "CH", "NX", "XX"]), *adds()],
        lambda: ["GEOADD", key(), "XX", "CH", *adds()],
        lambda: ["GEOPOS", key(), member(), member()],
        lambda: ["GEOHASH", key(), member(), member()],
        lambda: ["GEODIST", key(), member(), member()],
        lambda: ["GEODIST", key(), member(), member(), unit()],
        lambda: ["GEOSEARCH", key(), *centre(), *shape(), *options(False)],
        lambda: ["GEOSEARCH", key(), *centre(), *shape(), *options(False)],
        lambda: ["GEOSEARCH", key(), *centre(), *shape(), *options(False)],
        lambda: ["GEOSEARCHSTORE", "gd", key(), *centre(), *shape(), *options(True),
                 *r.choice([[], ["STOREDIST"]])],
        lambda: ["GEORADIUS", key(), *point(), *distance(), *options(False)],
        lambda: ["GEORADIUS_RO", key(), *point(), *distance(), *options(False)],
        lambda: ["GEORADIUSBYMEMBER", key(), member(), *distance(), *options(False)],
        lambda: ["GEORADIUS", key(), *point(), *distance(), *options(True), "STORE", "gd"],
        lambda: ["GEORADIUSBYMEMBER", key(), member(), *distance(), *options(True),
                 r.choice(["STORE", "STOREDIST"]), "gd"],
        # Stored distances are read in order only: their digits differ in Redis 7.0's %.17g.
        lambda: ["ZRANGE", "gd", "0", "-1"],
        lambda: ["ZRANGE", r.choice(GEO_KEYS), "0", "-1", "WITHSCORES"],
        lambda: ["ZREM", key(), member()],
        lambda: ["ZCARD", "gd"],
        lambda: ["SET", "s", str(step)] if r.random() < 0.3 else ["ZCARD", "g1"],
        lambda: ["DEL", r.choice(GEO_KEYS + ["gd"])] if r.random() < 0.2 else ["ZCARD", "g2"],
    ]
    return r.choice(choices)()


def sequence(family: str, seed: int, length: int) -> list[list[str]]:
    """The commands of one seeded sequence of `family` ("strings", "streams", "lists",
    "hashes", "sets", "zsets" or "geo")."""
    r = random.Random(seed)
    if family == "geo":
        home = r.choice(GEO_CENTRES)
        return [geo_command(r, step, home) for step in range(length)]
    if family == "strings":
        return [string_command(r, step) for step in range(length)]
    if family == "lists":
        return [list_command(r, step) for step in range(length)]
    if family == "hashes":
        return [hash_command(r, step) for step in range(length)]
    if family == "sets":
        return [set_command(r, step) for step in range(length)]
    if family == "zsets":
        return [zset_command(r, step) for step in range(length)]
    added: list[str] = []
    commands = []
    for _ in range(length):
        command = stream_command(r, added)
        if command[0] in ("XCLAIM", "XAUTOCLAIM", "XREADGROUP"):
            # The consumer is made first: Omnibus makes it on any group read or claim, as
            # Redis 7.2 does; Debian's redis-server 7.0 only on one that takes something.
            commands.append(["XGROUP", "CREATECONSUMER", "s", command[2], command[3]])
        commands.append(command)
    return commands
