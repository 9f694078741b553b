"""redis-py against the Redis door's sorted sets, as an application uses them: a delayed-job
schedule (ZADD at a timestamp, ZRANGEBYSCORE up to now, ZREM what was taken); kombu's unacked
index exactly as its Redis transport keeps it (`zadd(key, {tag: time()})`, ZRANGE BYSCORE REV
LIMIT WITHSCORES, `zrem`); a leaderboard (ZINCRBY, ZREVRANGE WITHSCORES, ZREVRANK); ZADD's
options and what it refuses; scores that are fractions or infinite, and ties; ranges by index,
score and lex, old commands and new; removing ranges and popping; ZRANDMEMBER and `zscan_iter`
over 300 members; ZRANGESTORE, ZUNIONSTORE and ZINTERSTORE with WEIGHTS and AGGREGATE; sorted
sets among the other keys; a transaction; the asyncio client; the replies as sent in RESP2 and
RESP3; and sorted sets read back identical after kill -9.

Order is defined: by score, then by member bytes (REV reverses both); every check asserts it.
Where a reply string is compared, scores are exactly representable (integers, .5, .25): Redis
7.0 writes doubles with %.17g (1.1 is "1.1000000000000001"), a door may write the shortest
form. redis-py shapes WITHSCORES replies by protocol: `pairs()` folds them into tuples."""

from __future__ import annotations

import asyncio
import random
import time

import pytest
import redis
import redis.asyncio

from harness import unique, wait_until
from test_redis_lists import raw_replies  # each reply's bytes as sent, RESP2 or RESP3

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
INF = float("inf")


@pytest.fixture
def client(redis_url):
    connection = redis.Redis.from_url(redis_url, decode_responses=True)
    yield connection
    connection.close()


def pairs(reply) -> list[tuple]:
    """(member, score) tuples out of any shape redis-py gives a WITHSCORES reply."""
    reply = list(reply)
    if reply and not isinstance(reply[0], (list, tuple)):
        reply = list(zip(reply[::2], reply[1::2]))
    return [(member, float(score)) for member, score in reply]


def test_a_delayed_job_schedule(client):
    schedule = unique("schedule")
    now = 1_700_000_000
    # Ten jobs a minute apart: five overdue, one due right now, four to come.
    jobs = {f"job-{n}": now + (n - 5) * 60 for n in range(10)}
    assert client.zadd(schedule, jobs) == 10
    due = client.zrangebyscore(schedule, 0, now)
    assert due == [f"job-{n}" for n in range(6)]
    first = client.zrangebyscore(schedule, "-inf", now, start=0, num=2, withscores=True)
    assert pairs(first) == [("job-0", now - 300), ("job-1", now - 240)]
    assert client.zcount(schedule, "-inf", now) == 6
    assert client.zcount(schedule, f"({now}", "+inf") == 4
    # Taken: ZREM answers 1 to the one worker that got each job.
    assert client.zrem(schedule, *due) == 6
    assert client.zrem(schedule, "job-0") == 0
    # Rescheduled: ZADD of a member already there moves it.
    assert client.zadd(schedule, {"job-9": now - 1}) == 0
    assert client.zscore(schedule, "job-9") == now - 1
    assert client.zrange(schedule, 0, -1) == ["job-9", "job-6", "job-7", "job-8"]
    assert client.zrangebyscore(schedule, 0, now) == ["job-9"]
    # The last one gone, so is the key.
    assert client.zrem(schedule, "job-9", "job-6", "job-7", "job-8", "job-99") == 4
    assert client.exists(schedule) == 0
    assert client.zscore(schedule, "job-9") is None
    assert client.zrange(schedule, 0, -1) == []


@pytest.mark.parametrize("protocol", [2, 3])
def test_kombu_unacked_index(redis_url, protocol):
    """What kombu's Redis transport does: each delivery `zadd(index, {tag: time()})` beside an
    HSET, in one pipeline; `restore_visible` asks for the ten newest deliveries older than the
    visibility timeout with ZRANGE BYSCORE REV LIMIT WITHSCORES, and restores each with ZREM +
    HDEL in a transaction; an ack is the same ZREM + HDEL."""
    client = redis.Redis.from_url(redis_url, protocol=protocol)
    index, unacked = unique("unacked_index"), unique("unacked")
    visibility_timeout = 3600
    started = time.time()
    old = {f"old-{n}": started - visibility_timeout - 100 - n * 1.37 for n in range(12)}
    fresh = {f"new-{n}": started - n * 0.01 for n in range(3)}
    try:
        for tag, at in {**old, **fresh}.items():
            with client.pipeline() as pipe:
                pipe.zadd(index, {tag: at}).hset(unacked, tag, f'["{tag}", "ex", "rk"]')
                assert pipe.execute() == [1, 1]
        ceil = started - visibility_timeout
        for expected in ([f"old-{n}" for n in range(10)], ["old-10", "old-11"], []):
            visible = client.zrange(
                index, ceil, 0, desc=True, byscore=True, offset=0, num=10, withscores=True
            )
            # Newest first, and each score exactly the float sent.
            assert pairs(visible) == [(tag.encode(), old[tag]) for tag in expected]
            for tag, _ in pairs(visible):
                with client.pipeline() as pipe:
                    pipe.hget(unacked, tag)
                    pipe.zrem(index, tag).hdel(unacked, tag)
                    assert pipe.execute()[1:] == [1, 1]
        assert client.zmscore(index, list(fresh)) == list(fresh.values())
        # Acked: the index goes with its last tag.
        for tag in fresh:
            with client.pipeline() as pipe:
                assert pipe.zrem(index, tag).hdel(unacked, tag).execute() == [1, 1]
        assert client.exists(index, unacked) == 0
        assert client.zrange(index, ceil, 0, desc=True, byscore=True, offset=0, num=10) == []
    finally:
        client.close()


def test_a_leaderboard(client):
    board = unique("board")
    for player, points in [("ann", 10), ("bob", 5), ("cat", 10), ("dan", 7), ("bob", 5)]:
        client.zincrby(board, points, player)
    # ZINCRBY answers the new score; a new member starts from 0.
    assert client.zincrby(board, 2.5, "eve") == 2.5
    assert client.zincrby(board, 3, "eve") == 5.5
    assert client.zincrby(board, -0.5, "eve") == 5.0
    # Highest first; a tie by member, reversed too (cat before bob before ann).
    expected = [("cat", 10.0), ("bob", 10.0), ("ann", 10.0), ("dan", 7.0), ("eve", 5.0)]
    assert pairs(client.zrevrange(board, 0, -1, withscores=True)) == expected
    assert pairs(client.zrange(board, 0, 2, desc=True, withscores=True)) == expected[:3]
    assert client.zrange(board, 0, -1) == ["eve", "dan", "ann", "bob", "cat"]
    assert client.zrevrange(board, -2, -1) == ["dan", "eve"]
    assert [client.zrevrank(board, p) for p in ("cat", "ann")] == [0, 2]
    assert [client.zrank(board, p) for p in ("ann", "eve", "nobody")] == [2, 0, None]
    assert client.zrevrank(unique("missing"), "ann") is None
    assert client.zscore(board, "dan") == 7.0
    assert client.zmscore(board, ["ann", "zed", "eve"]) == [10.0, None, 5.0]
    # A player overtakes the others.
    assert client.zincrby(board, 4, "dan") == 11.0
    assert client.zrevrank(board, "dan") == 0
    with pytest.raises(redis.ResponseError, match="^value is not a valid float$"):
        client.zincrby(board, "lots", "dan")
    # A round scored in one transaction.
    with client.pipeline(transaction=True) as pipe:
        pipe.zincrby(board, 5, "eve").zrem(board, "cat", "zed").zadd(board, {"fay": 0.5})
        pipe.zrevrange(board, 0, 1, withscores=True).zrevrank(board, "fay").zcard(board)
        replies = pipe.execute()
    assert replies[:3] == [10.0, 1, 1]
    assert pairs(replies[3]) == [("dan", 11.0), ("eve", 10.0)]
    assert replies[4:] == [4, 5]


def test_zadd_options_and_what_it_refuses(client):
    key = unique("options")
    assert client.zadd(key, {"a": 1, "b": 2}) == 2
    assert client.zadd(key, {"a": 10, "c": 3}, nx=True) == 1  # NX: new members only
    assert client.zadd(key, {"a": 5, "d": 4}, xx=True) == 0  # XX: existing ones only
    assert client.zmscore(key, ["a", "c", "d"]) == [5.0, 3.0, None]
    # CH counts the changed as well as the added.
    assert client.zadd(key, {"a": 6, "b": 2, "e": 1}) == 1
    assert client.zadd(key, {"a": 7, "b": 2, "f": 1}, ch=True) == 2
    # GT / LT: only a greater / smaller score replaces; new members are added all the same.
    assert client.zadd(key, {"a": 1, "b": 9, "g": 0}, gt=True, ch=True) == 2
    assert client.zadd(key, {"a": 8, "b": 20, "h": 0}, lt=True, ch=True) == 1
    assert client.zadd(key, {"a": 3, "i": 1}, xx=True, lt=True, ch=True) == 1
    assert pairs(client.zrange(key, 0, -1, withscores=True)) == [
        ("g", 0.0), ("h", 0.0), ("e", 1.0), ("f", 1.0), ("a", 3.0), ("c", 3.0), ("b", 9.0)
    ]
    # INCR answers the new score, or nil when a condition says no.
    assert client.zadd(key, {"a": 1.5}, incr=True) == 4.5
    assert client.zadd(key, {"a": 1}, nx=True, incr=True) is None
    assert client.zadd(key, {"new": 1}, xx=True, incr=True) is None
    assert client.zadd(key, {"a": -1}, gt=True, incr=True) is None
    assert client.zadd(key, {"a": -1}, lt=True, incr=True) == 3.5
    assert client.zadd(key, {"new": 7}, nx=True, incr=True) == 7.0
    assert client.zscore(key, "a") == 3.5
    # Refused in Redis's words (sent raw: redis-py refuses some itself), changing nothing.
    for words, message in [
        (["NX", "XX", 1, "a"], "XX and NX options at the same time are not compatible"),
        (["GT", "NX", 1, "a"], "GT, LT, and/or NX options at the same time are not compatible"),
        (["GT", "LT", 1, "a"], "GT, LT, and/or NX options at the same time are not compatible"),
        (["INCR", 1, "a", 2, "b"], "INCR option supports a single increment-element pair"),
        (["one", "a"], "value is not a valid float"),
        ([1, "a", "two", "b"], "value is not a valid float"),
    ]:
        with pytest.raises(redis.ResponseError, match=f"^{message}$"):
            client.execute_command("ZADD", key, *words)
    assert client.zscore(key, "a") == 3.5
    assert client.zcard(key) == 8
    assert client.delete(key) == 1


@pytest.mark.parametrize("protocol", [2, 3])
def test_fractions_infinities_and_score_bounds(redis_url, protocol):
    client = redis.Redis.from_url(redis_url, protocol=protocol, decode_responses=True)
    try:
        key = unique("scores")
        scores = {"low": -INF, "neg": -2.5, "zero": 0, "quarter": 0.25, "half": 0.5, "one": 1}
        assert client.zadd(key, {**scores, "onehalf": 1.5, "two": 2, "high": INF}) == 9
        assert client.execute_command("ZADD", key, "+inf", "top", "-inf", "bottom") == 2
        assert pairs(client.zrange(key, 0, -1, withscores=True)) == [
            ("bottom", -INF), ("low", -INF), ("neg", -2.5), ("zero", 0.0), ("quarter", 0.25),
            ("half", 0.5), ("one", 1.0), ("onehalf", 1.5), ("two", 2.0), ("high", INF),
            ("top", INF),
        ]  # fmt: skip
        assert client.zmscore(key, ["high", "low"]) == [INF, -INF]
        # Bounds are inclusive, `(` excludes, and ±inf are bounds like any other.
        bounds = [("-inf", "inf"), ("(-inf", "(inf"), (0, 1), ("(0", "(1"), ("-inf", "(0"), (2, 1)]
        assert [client.zcount(key, low, high) for low, high in bounds] == [11, 7, 4, 2, 3, 0]
        assert client.zrangebyscore(key, "(1", "+inf") == ["onehalf", "two", "high", "top"]
        assert client.zrangebyscore(key, "+inf", "+inf") == ["high", "top"]
        assert client.zrevrangebyscore(key, "inf", "-inf", start=2, num=2) == ["two", "onehalf"]
        assert client.zincrby(key, 1, "high") == INF
        for low, high in [("a", 1), (0, "b"), ("(x", 1), ("((1", 2), ("1x", 2)]:
            for command in (client.zrangebyscore, client.zcount):
                with pytest.raises(redis.ResponseError, match="^min or max is not a float$"):
                    command(key, low, high)
        assert client.delete(key) == 1
    finally:
        client.close()


def test_ties_are_ordered_by_member_bytes(redis_url):
    client = redis.Redis.from_url(redis_url)
    try:
        key = unique("ties")
        members = [b"b", b"a", b"B", b"ab", b"", b"\x00", b"\xff", "é".encode(), b"a\x00", b"10"]
        assert client.zadd(key, {member: 1 for member in members}) == len(members)
        assert client.zrange(key, 0, -1) == sorted(members)
        assert client.zrevrange(key, 0, -1) == sorted(members, reverse=True)
        assert client.zrangebylex(key, "[a", "(b") == [b"a", b"a\x00", b"ab"]
        assert client.zrangebylex(key, b"(\xc3", b"+") == ["é".encode(), b"\xff"]
        assert client.zrank(key, b"\xff") == len(members) - 1
        # A lower score still comes first.
        assert client.zadd(key, {b"\xff": 0}) == 0
        assert client.zrange(key, 0, 0) == [b"\xff"]
        assert client.delete(key) == 1
    finally:
        client.close()


def test_ranges_by_index_score_and_lex(client):
    key, lex = unique("ranks"), unique("lex")
    client.zadd(key, {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5})
    # By index: negative from the end, out of range clipped, reversed.
    assert client.zrange(key, 0, -1) == ["a", "b", "c", "d", "e"]
    assert client.zrange(key, -2, -1) == ["d", "e"]
    assert pairs(client.zrange(key, 1, 3, withscores=True)) == [("b", 2), ("c", 3), ("d", 4)]
    assert client.zrange(key, -100, 0) == ["a"]
    assert client.zrange(key, 3, 1) == client.zrange(key, 10, 20) == []
    assert client.zrange(key, 0, 1, desc=True) == ["e", "d"]
    assert client.zrevrange(key, -1, -1) == ["a"]
    # By score, with LIMIT offset count (a count below 0: all the rest).
    assert client.zrange(key, 2, 4, byscore=True) == ["b", "c", "d"]
    assert client.zrange(key, "(2", "+inf", byscore=True, offset=1, num=2) == ["d", "e"]
    assert client.zrange(key, "-inf", "+inf", byscore=True, offset=2, num=-1) == ["c", "d", "e"]
    assert client.zrange(key, "-inf", "+inf", byscore=True, offset=9, num=2) == []
    assert client.zrange(key, 4, 2, desc=True, byscore=True) == ["d", "c", "b"]
    top = client.zrange(key, "inf", 0, desc=True, byscore=True, offset=0, num=2, withscores=True)
    assert pairs(top) == [("e", 5), ("d", 4)]
    assert client.zrangebyscore(key, 2, 4, start=1, num=1) == ["c"]
    assert client.zrevrangebyscore(key, 4, 2) == ["d", "c", "b"]
    page = client.zrevrangebyscore(key, "+inf", "-inf", start=1, num=2, withscores=True)
    assert pairs(page) == [("d", 4), ("c", 3)]
    # By lex, over members of one score.
    client.zadd(lex, {name: 0 for name in ("apple", "banana", "cherry", "date", "elder")})
    assert client.zrangebylex(lex, "-", "+") == ["apple", "banana", "cherry", "date", "elder"]
    assert client.zrangebylex(lex, "[b", "(d") == ["banana", "cherry"]
    assert client.zrangebylex(lex, "(banana", "+", start=0, num=2) == ["cherry", "date"]
    assert client.zrevrangebylex(lex, "+", "[c") == ["elder", "date", "cherry"]
    assert client.zrevrangebylex(lex, "(d", "-", start=1, num=1) == ["banana"]
    bounds = [("-", "+"), ("[banana", "[date"), ("(banana", "(date"), ("[e", "[d")]
    assert [client.zlexcount(lex, low, high) for low, high in bounds] == [5, 3, 1, 0]
    assert client.zrange(lex, "[c", "+", bylex=True) == ["cherry", "date", "elder"]
    assert client.zrange(lex, "+", "[c", desc=True, bylex=True, offset=1, num=1) == ["date"]
    for call in (
        lambda: client.zrangebylex(lex, "a", "+"),
        lambda: client.zlexcount(lex, "[a", "b"),
        lambda: client.zrange(lex, 0, -1, bylex=True),
    ):
        with pytest.raises(redis.ResponseError, match="^min or max not valid string range item$"):
            call()
    assert client.delete(key, lex) == 2


def test_removing_ranges_and_popping(client):
    key, lex = unique("remove"), unique("lex")
    client.zadd(key, {f"m{n}": n for n in range(10)})
    assert client.zremrangebyscore(key, "(7", "+inf") == 2
    assert client.zremrangebyscore(key, 100, 200) == 0
    assert client.zremrangebyrank(key, 0, 1) == 2
    assert client.zremrangebyrank(key, -2, -1) == 2
    assert client.zrange(key, 0, -1) == ["m2", "m3", "m4", "m5"]
    assert pairs(client.zpopmin(key, 1)) == [("m2", 2.0)]
    assert pairs(client.zpopmax(key, 2)) == [("m5", 5.0), ("m4", 4.0)]
    assert pairs(client.zpopmin(key, 5)) == [("m3", 3.0)]
    assert client.exists(key) == 0
    assert pairs(client.zpopmin(key)) == []
    assert pairs(client.zpopmax(key, 3)) == []
    client.zadd(lex, {"a": 0, "b": 0, "c": 0, "d": 0})
    assert client.zremrangebylex(lex, "[b", "(d") == 2
    assert client.zrange(lex, 0, -1) == ["a", "d"]
    assert client.zremrangebylex(lex, "-", "+") == 2
    assert client.exists(lex) == 0


def test_zrandmember_and_zscan_iter_over_300_members(client):
    key, one, missing = unique("big"), unique("one"), unique("missing")
    members = {f"member:{n:03d}": n / 4 for n in range(300)}
    assert client.zadd(key, members) == 300
    assert client.zrandmember(key) in members
    sample = client.zrandmember(key, 5)
    assert len(set(sample)) == 5 and set(sample) <= set(members)
    assert sorted(client.zrandmember(key, 500)) == sorted(members)
    draws = client.zrandmember(key, -400)
    assert len(draws) == 400 and set(draws) <= set(members)
    for member, score in pairs(client.zrandmember(key, 3, withscores=True)):
        assert members[member] == score
    client.zadd(one, {"only": 1.5})
    assert pairs(client.zrandmember(one, -2, withscores=True)) == [("only", 1.5)] * 2
    assert client.zrandmember(missing) is None
    assert client.zrandmember(missing, 2) == []
    for count in (None, 10, 1000):
        seen = list(client.zscan_iter(key, count=count))
        assert len(seen) == 300, f"COUNT {count}: {len(seen)} members"
        assert dict(seen) == members
    matched = dict(client.zscan_iter(key, match="member:1*", count=20))
    assert matched == {f"member:{n}": n / 4 for n in range(100, 200)}
    assert list(client.zscan_iter(key, match="nothing:*")) == []
    assert client.delete(key, one) == 2


def test_zrangestore_zunionstore_and_zinterstore(client):
    a, b, dest, missing = unique("a"), unique("b"), unique("dest"), unique("missing")
    client.zadd(a, {"x": 1, "y": 2, "z": 3})
    client.zadd(b, {"y": 10, "z": 20, "w": 30})

    def check(size, expected):
        assert size == len(expected)
        assert pairs(client.zrange(dest, 0, -1, withscores=True)) == expected

    check(client.zrangestore(dest, a, 0, 1), [("x", 1), ("y", 2)])
    check(client.zrangestore(dest, b, 15, "+inf", byscore=True), [("z", 20), ("w", 30)])
    newest = client.zrangestore(dest, b, "inf", 0, desc=True, byscore=True, offset=0, num=1)
    check(newest, [("w", 30)])
    check(client.zunionstore(dest, [a, b]), [("x", 1), ("y", 12), ("z", 23), ("w", 30)])
    check(client.zunionstore(dest, {a: 2, b: 1}), [("x", 2), ("y", 14), ("z", 26), ("w", 30)])
    check(client.zunionstore(dest, [a, b], "MIN"), [("x", 1), ("y", 2), ("z", 3), ("w", 30)])
    halved = client.zunionstore(dest, {a: 1, b: 0.5}, aggregate="MAX")
    check(halved, [("x", 1), ("y", 5), ("z", 10), ("w", 15)])
    check(client.zunionstore(dest, [a, missing]), [("x", 1), ("y", 2), ("z", 3)])
    check(client.zinterstore(dest, [a, b]), [("y", 12), ("z", 23)])
    check(client.zinterstore(dest, {a: 3, b: 0.5}, "MAX"), [("y", 6), ("z", 10)])
    check(client.zinterstore(dest, [b, a], "MIN"), [("y", 2), ("z", 3)])
    # The destination is replaced whole (its TTL, its kind); an empty result deletes it.
    assert client.expire(dest, 100) is True
    assert client.zunionstore(dest, [a]) == 3
    assert client.ttl(dest) == -1
    assert client.zinterstore(dest, [a, missing]) == 0
    assert client.exists(dest) == 0
    client.set(dest, "text")
    assert client.zrangestore(dest, a, 0, 0) == 1
    assert client.type(dest) == "zset"
    assert client.zrangestore(dest, a, 5, 10) == 0
    assert client.exists(dest) == 0
    assert client.delete(a, b) == 2


def test_sorted_sets_among_the_other_keys(client):
    name, text, items, tags = unique("zset"), unique("text"), unique("items"), unique("tags")
    assert client.zadd(name, {"a": 1, "b": 2}) == 2
    client.set(text, "v")
    client.rpush(items, "x")
    client.sadd(tags, "t")
    assert client.type(name) == "zset"
    # Sorted-set commands on other kinds of keys, and the other way round.
    for command in [
        ["ZADD", text, "1", "a"], ["ZSCORE", items, "a"], ["ZRANGE", tags, "0", "-1"],
        ["ZINCRBY", text, "1", "a"], ["ZREM", items, "a"], ["ZCARD", tags],
        ["ZUNIONSTORE", unique("dest"), "2", name, text], ["ZRANGEBYSCORE", text, "0", "1"],
        ["GET", name], ["SADD", name, "a"], ["HGET", name, "a"], ["LPUSH", name, "a"],
    ]:  # fmt: skip
        with pytest.raises(redis.ResponseError, match=f"^{WRONGTYPE}$"):
            client.execute_command(*command)
    assert pairs(client.zrange(name, 0, -1, withscores=True)) == [("a", 1), ("b", 2)]
    assert client.exists(name, text, items, tags, unique("missing")) == 4
    assert name in set(client.scan_iter(match=name, _type="zset"))
    assert tags not in set(client.scan_iter(match=tags, _type="zset"))
    # A TTL kept by changes to the members, then the whole key gone.
    assert client.expire(name, 100) is True
    assert client.zadd(name, {"c": 3}) == 1
    assert client.zincrby(name, 1, "a") == 2.0
    assert 99 <= client.ttl(name) <= 100
    assert client.pexpire(name, 300) is True
    wait_until(lambda: client.exists(name) == 0, 10, "the sorted set to expire")
    assert client.zcard(name) == 0
    # SET replaces one whole.
    client.zadd(name, {"a": 1})
    assert client.set(name, "now a string") is True
    assert client.type(name) == "string"
    assert client.delete(name, text, items, tags) == 4


def test_asyncio_client(redis_url):
    async def main():
        connection = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
        key = unique("async-zset")
        others = [redis.asyncio.Redis.from_url(redis_url) for _ in range(4)]

        async def score(other):
            for n in range(25):
                await other.zincrby(key, 1, f"p{n % 5}")

        try:
            await asyncio.wait_for(asyncio.gather(*(score(o) for o in others)), 30)
            assert pairs(await connection.zrange(key, 0, -1, withscores=True)) == [
                (f"p{n}", 20.0) for n in range(5)
            ]
            async with connection.pipeline(transaction=True) as pipe:
                pipe.zadd(key, {"p0": 25}).zrevrange(key, 0, 1).zrem(key, "p4").zcard(key)
                assert await pipe.execute() == [0, ["p0", "p4"], 1, 4]
            assert {m async for m, _ in connection.zscan_iter(key)} == {"p0", "p1", "p2", "p3"}
            assert await connection.delete(key) == 1
        finally:
            for other in others:
                await other.aclose()
            await connection.aclose()

    asyncio.run(main())


@pytest.mark.parametrize("protocol", [2, 3])
def test_replies_as_sent(redis_url, protocol):
    """RESP2 sends a score as a bulk string; RESP3 as a double (`,1.5`, `,3`, `,inf`), and a
    member with its score as a pair (`*2`) inside the array, except ZPOPMIN/ZPOPMAX without a
    count (one flat pair) and ZSCAN (bulk strings in both). An empty ZPOPMIN is `*0`."""
    key, one, missing = unique("shapes"), unique("one"), unique("missing")
    resp3 = protocol == 3

    def bulk(text):
        return b"$%d\r\n%s\r\n" % (len(text), text.encode())

    def score(text):
        return b",%s\r\n" % text.encode() if resp3 else bulk(text)

    def with_scores(*items):
        if resp3:
            nested = (b"*2\r\n" + bulk(m) + score(s) for m, s in items)
            return b"*%d\r\n" % len(items) + b"".join(nested)
        return b"*%d\r\n" % (2 * len(items)) + b"".join(bulk(m) + bulk(s) for m, s in items)

    nil = b"_\r\n" if resp3 else b"$-1\r\n"
    expected = [
        (["ZADD", key, "1.5", "a", "inf", "top"], b":2\r\n"),
        (["ZSCORE", key, "a"], score("1.5")),
        (["ZSCORE", key, "top"], score("inf")),
        (["ZSCORE", key, "nope"], nil),
        (["ZMSCORE", key, "a", "nope"], b"*2\r\n" + score("1.5") + nil),
        (["ZINCRBY", key, "1", "a"], score("2.5")),
        (["ZADD", key, "INCR", "0.5", "a"], score("3")),
        (["ZADD", key, "NX", "INCR", "1", "a"], nil),
        (["ZADD", key, "CH", "3", "a"], b":0\r\n"),
        (["ZRANGE", key, "0", "-1", "WITHSCORES"], with_scores(("a", "3"), ("top", "inf"))),
        (["ZRANGEBYSCORE", key, "-inf", "+inf", "WITHSCORES", "LIMIT", "0", "1"],
         with_scores(("a", "3"))),
        (["ZREVRANGE", key, "0", "0", "WITHSCORES"], with_scores(("top", "inf"))),
        (["ZRANK", key, "nope"], nil),
        (["ZCOUNT", key, "(3", "+inf"], b":1\r\n"),
        (["ZSCAN", key, "0"], b"*2\r\n" + bulk("0") + b"*4\r\n" + bulk("a") + bulk("3")
         + bulk("top") + bulk("inf")),
        (["ZADD", one, "0.25", "y", "-0.5", "x"], b":2\r\n"),
        (["ZPOPMIN", one], b"*2\r\n" + bulk("x") + score("-0.5")),
        (["ZRANDMEMBER", one], bulk("y")),
        (["ZRANDMEMBER", one, "1", "WITHSCORES"], with_scores(("y", "0.25"))),
        (["ZRANDMEMBER", missing], nil),
        (["ZRANDMEMBER", missing, "1"], b"*0\r\n"),
        (["ZPOPMIN", missing], b"*0\r\n"),
        (["ZPOPMAX", one, "2"], with_scores(("y", "0.25"))),
        (["EXISTS", one], b":0\r\n"),
    ]  # fmt: skip
    replies = raw_replies(redis_url, protocol, [command for command, _ in expected])
    assert [(command, reply) for (command, _), reply in zip(expected, replies)] == expected


def test_sorted_sets_survive_kill_9(broker, redis_url):
    """Everything acknowledged is there after kill -9 and a restart, in the same order with the
    same scores, and nothing removed comes back: a leaderboard moved by ZINCRBY, kombu-style
    time() scores, infinite scores, one with a TTL, one emptied; and a model of a few hundred
    more commands over three sorted sets."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    board, index, timed, emptied = (unique(n) for n in ("board", "index", "timed", "emptied"))
    assert client.zadd(board, {"ann": 10, "bob": 7.5, "floor": -INF, "ceiling": INF}) == 4
    assert client.zincrby(board, 2.5, "bob") == 10.0
    assert client.zrem(board, "ann", "nobody") == 1
    tags = {f"tag-{n}": time.time() - n * 0.731 for n in range(20)}
    assert client.zadd(index, tags) == 20
    assert client.zadd(timed, {"token": 1}) == 1
    assert client.expire(timed, 1000) is True
    assert client.zadd(emptied, {"only": 1}) == 1
    assert pairs(client.zpopmax(emptied, 1)) == [("only", 1.0)]

    # A few hundred more commands over three sorted sets, each answer checked against a model.
    rng = random.Random(3)
    keys = [unique("model") for _ in range(3)]
    model: dict[str, dict[str, float]] = {key: {} for key in keys}
    names = [f"m{n}" for n in range(12)]
    for _ in range(300):
        key = rng.choice(keys)
        members = model[key]
        action = rng.randrange(5)
        if action <= 1:
            chosen = {name: rng.randrange(-8, 8) / 2 for name in rng.sample(names, 3)}
            assert client.zadd(key, chosen) == len(set(chosen) - set(members))
            members.update(chosen)
        elif action == 2:
            name, amount = rng.choice(names), rng.randrange(-4, 5) / 4
            members[name] = members.get(name, 0.0) + amount
            assert client.zincrby(key, amount, name) == members[name]
        elif action == 3:
            gone = rng.sample(names, 2)
            assert client.zrem(key, *gone) == len(set(gone) & set(members))
            for name in gone:
                members.pop(name, None)
        else:
            ordered = sorted(members.items(), key=lambda item: (item[1], item[0]))
            assert pairs(client.zpopmin(key, 1)) == ordered[:1]
            if ordered:
                del members[ordered[0][0]]
    ranked = [board, index, timed, *keys]
    before = {key: pairs(client.zrange(key, 0, -1, withscores=True)) for key in ranked}
    for key in keys:
        assert before[key] == sorted(model[key].items(), key=lambda item: (item[1], item[0]))
    client.close()

    broker.restart()
    client = redis.Redis.from_url(broker.redis_url, decode_responses=True)
    try:
        after = {key: pairs(client.zrange(key, 0, -1, withscores=True)) for key in ranked}
        assert after == before
        assert after[board] == [("floor", -INF), ("bob", 10.0), ("ceiling", INF)]
        assert dict(after[index]) == tags
        for key, items in before.items():
            assert client.type(key) == ("zset" if items else "none")
            assert client.zcard(key) == len(items)
        assert client.exists(emptied) == 0
        assert 0 < client.ttl(timed) <= 1000
        assert client.ttl(board) == -1
        # Still working sorted sets.
        assert client.zincrby(board, 1, "bob") == 11.0
        assert client.zrevrank(board, "bob") == 1
    finally:
        client.close()
