"""redis-py against the Redis door's sets, as an application uses them: a binding table kept as
kombu keeps `_kombu.binding.<exchange>` (SADD in a pipeline, SMEMBERS, SREM until the set and
its key are gone), membership tests (SISMEMBER, SMISMEMBER) and SMOVE, SPOP and SRANDMEMBER
with and without a count, the set algebra (SINTER, SINTERCARD, SUNION, SDIFF and their STORE
forms), `sscan_iter` over 500 members with a MATCH pattern, sets among the other keys (TYPE,
WRONGTYPE both ways, SCAN TYPE set, TTLs), transactions, binary members, SADD from several
threads, the asyncio client, the replies as sent in RESP2 and RESP3, and sets read back
identical after kill -9.

A set has no order: every check below compares members as Python sets (or sorted lists), never
in the order an answer lists them."""

from __future__ import annotations

import asyncio
import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import redis.asyncio

from harness import unique, wait_until
from test_redis_lists import raw_replies  # each reply's bytes as sent, RESP2 or RESP3

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
# What kombu joins a binding's routing key, pattern and queue with.
KOMBU_SEP = "\x06\x16"


@pytest.fixture
def client(redis_url):
    connection = redis.Redis.from_url(redis_url, decode_responses=True)
    yield connection
    connection.close()


@pytest.mark.parametrize("protocol", [2, 3])
def test_a_binding_table_as_kombu_keeps_it(redis_url, protocol):
    # kombu's client answers bytes; its `get_table` splits each member on its separator.
    client = redis.Redis.from_url(redis_url, protocol=protocol)
    try:
        exchange = unique("celery")
        table, permanent = f"_kombu.binding.{exchange}", f"_kombu.binding_permanent.{exchange}"
        rows = [("celery", "", "celery"), ("video.#", "", "video"), ("image.*", "", "image")]
        members = [KOMBU_SEP.join(row) for row in rows]
        # `_queue_bind`: both SADDs in one pipeline (a MULTI/EXEC), per binding.
        for member in members:
            with client.pipeline() as pipe:
                pipe.sadd(table, member)
                pipe.sadd(permanent, member)
                assert pipe.execute() == [1, 1]
        # Declaring a binding again adds nothing.
        assert client.sadd(table, members[0]) == 0
        stored = client.smembers(table)
        assert isinstance(stored, set)
        assert stored == {member.encode() for member in members}
        assert sorted(tuple(m.decode().split(KOMBU_SEP)) for m in stored) == sorted(rows)
        assert client.type(table) == b"set"
        assert client.scard(table) == 3
        assert client.sismember(table, members[1]) == 1
        assert client.sismember(table, "video.#") == 0
        assert client.smismember(table, [members[2], "nope", members[0]]) == [1, 0, 1]
        # `_delete`: SREM from both sets; a second SREM finds nothing.
        for member in members[:2]:
            assert client.srem(table, member) == 1
            assert client.srem(permanent, member) == 1
        assert client.srem(table, members[0]) == 0
        assert client.smembers(table) == {members[2].encode()}
        # The last member gone, so is the key: `get_table` sees an empty answer.
        assert client.srem(table, members[2], "never there") == 1
        assert client.exists(table) == 0
        assert client.type(table) == b"none"
        assert client.smembers(table) == set()
        assert client.scard(table) == 0
        assert client.delete(permanent) == 1
    finally:
        client.close()


def test_membership_and_smove(client):
    tags, other, missing = unique("tags"), unique("other"), unique("missing")
    # A member given twice in one SADD counts once.
    assert client.sadd(tags, "red", "green", "red", "blue") == 3
    assert client.sadd(tags, "green", "yellow") == 1
    assert client.scard(tags) == 4
    assert client.smembers(tags) == {"red", "green", "blue", "yellow"}
    assert client.sismember(tags, "RED") == 0
    assert client.smismember(tags, ["red", "purple", "blue", "red"]) == [1, 0, 1, 1]
    # A missing key is an empty set.
    assert client.sismember(missing, "red") == 0
    assert client.smismember(missing, ["red", "blue"]) == [0, 0]
    assert client.smembers(missing) == set()
    assert client.srem(missing, "red") == 0
    # Members that look like numbers are strings like any other: "1", "01", "1.0" are three.
    numbers = unique("numbers")
    assert client.sadd(numbers, 1, "01", "1.0", "1", "-0") == 4
    assert client.smembers(numbers) == {"1", "01", "1.0", "-0"}
    assert client.smismember(numbers, ["001", "0", "-0"]) == [0, 0, 1]
    # SREM counts what it removed.
    assert client.srem(tags, "purple", "red", "red") == 1
    # SMOVE: from one set to another; nothing to move is False.
    assert client.smove(tags, other, "green") is True
    assert client.smove(tags, other, "purple") is False
    assert client.smove(missing, other, "green") is False
    assert client.smembers(tags) == {"blue", "yellow"}
    assert client.smembers(other) == {"green"}
    # Already in the destination: it leaves the source, the destination is unchanged.
    assert client.sadd(tags, "green") == 1
    assert client.smove(tags, other, "green") is True
    assert client.smembers(tags) == {"blue", "yellow"}
    assert client.smembers(other) == {"green"}
    # Onto itself: True when it is a member, and nothing changes.
    assert client.smove(other, other, "green") is True
    assert client.smove(other, other, "blue") is False
    assert client.smembers(other) == {"green"}
    # Moving the last member away deletes the source.
    assert client.smove(other, tags, "green") is True
    assert client.exists(other) == 0
    assert client.smembers(tags) == {"blue", "yellow", "green"}
    assert client.delete(tags, numbers) == 2


def test_spop_and_srandmember(client):
    pool = unique("pool")
    members = {f"m{n:02d}" for n in range(20)}
    assert client.sadd(pool, *members) == 20
    # SRANDMEMBER reads, never removes.
    assert client.srandmember(pool) in members
    sample = client.srandmember(pool, 5)
    assert len(sample) == 5 and len(set(sample)) == 5 and set(sample) <= members
    # A count above the size: the whole set, each member once.
    assert sorted(client.srandmember(pool, 50)) == sorted(members)
    # A negative count: exactly that many, members may repeat.
    draws = client.srandmember(pool, -30)
    assert len(draws) == 30 and set(draws) <= members
    only = unique("only")
    client.sadd(only, "it")
    assert client.srandmember(only, -3) == ["it", "it", "it"]
    assert client.srandmember(pool, 0) == []
    assert client.scard(pool) == 20
    # SPOP removes what it answers.
    first = client.spop(pool)
    assert first in members
    left = members - {first}
    batch = client.spop(pool, 4)
    assert len(batch) == 4 and len(set(batch)) == 4 and set(batch) <= left
    left -= set(batch)
    assert client.smembers(pool) == left
    assert client.scard(pool) == 15
    assert list(client.spop(pool, 0)) == []
    assert client.scard(pool) == 15
    # A count above the size pops everything and deletes the key.
    assert sorted(client.spop(pool, 100)) == sorted(left)
    assert client.exists(pool) == 0
    assert client.spop(only) == "it"
    assert client.exists(only) == 0
    # Nothing left: SPOP answers nil (or nothing, with a count), SRANDMEMBER too.
    assert client.spop(pool) is None
    assert list(client.spop(pool, 3)) == []
    assert client.srandmember(pool) is None
    assert client.srandmember(pool, 3) == []
    with pytest.raises(redis.ResponseError, match="^value is out of range, must be positive$"):
        client.execute_command("SPOP", pool, "-1")


def test_intersections_unions_and_differences(client):
    a, b, c, missing = unique("a"), unique("b"), unique("c"), unique("missing")
    dest, text = unique("dest"), unique("text")
    client.sadd(a, "1", "2", "3", "4", "5")
    client.sadd(b, "4", "5", "6")
    client.sadd(c, "5", "7")
    assert client.sinter(a, b, c) == {"5"}
    assert client.sinter(a, b) == {"4", "5"}
    assert client.sinter(a, missing) == set()
    assert client.sunion(a, b, c) == {"1", "2", "3", "4", "5", "6", "7"}
    assert client.sdiff(a, b, c) == {"1", "2", "3"}
    assert client.sdiff(a, missing) == {"1", "2", "3", "4", "5"}
    assert client.sdiff(missing, a) == set()
    # SINTERCARD: the size of the intersection; LIMIT stops counting there (0: no limit).
    assert client.sintercard(3, [a, b, c]) == 1
    assert client.sintercard(2, [a, b]) == 2
    assert client.sintercard(2, [a, b], limit=1) == 1
    assert client.sintercard(2, [a, b], limit=0) == 2
    assert client.sintercard(2, [a, missing]) == 0
    with pytest.raises(redis.ResponseError, match="^numkeys should be greater than 0$"):
        client.execute_command("SINTERCARD", "0", a)
    with pytest.raises(redis.ResponseError, match="^LIMIT can't be negative$"):
        client.execute_command("SINTERCARD", "1", a, "LIMIT", "-1")
    # The STORE forms answer the size and replace the destination whole.
    assert client.sinterstore(dest, [a, b]) == 2
    assert client.smembers(dest) == {"4", "5"}
    assert client.sunionstore(dest, [b, c]) == 4
    assert client.smembers(dest) == {"4", "5", "6", "7"}
    assert client.sdiffstore(dest, [a, b]) == 3
    assert client.smembers(dest) == {"1", "2", "3"}
    # ... its TTL too, and whatever kind of key it was.
    assert client.expire(dest, 100) is True
    assert client.sunionstore(dest, [c]) == 2
    assert client.ttl(dest) == -1
    client.set(text, "v")
    assert client.sinterstore(text, [a, c]) == 1
    assert client.type(text) == "set"
    assert client.smembers(text) == {"5"}
    # A destination among its own sources.
    assert client.sunionstore(a, [a, c]) == 6
    assert client.smembers(a) == {"1", "2", "3", "4", "5", "7"}
    # An empty result deletes the destination.
    assert client.sinterstore(dest, [a, missing]) == 0
    assert client.exists(dest) == 0
    assert client.sdiffstore(text, [c, a]) == 0
    assert client.exists(text) == 0
    assert client.delete(a, b, c) == 3


def test_sscan_iter_over_500_members_with_a_match_pattern(client):
    key = unique("users")
    members = {f"user:{n:03d}" for n in range(500)}
    assert client.sadd(key, *members) == 500
    for count in (None, 7, 1000):
        seen = list(client.sscan_iter(key, count=count))
        assert len(seen) == 500, f"COUNT {count}: {len(seen)} members"
        assert set(seen) == members
    matched = list(client.sscan_iter(key, match="user:1*", count=20))
    assert sorted(matched) == [f"user:{n}" for n in range(100, 200)]
    assert sorted(client.sscan_iter(key, match="user:?99")) == [f"user:{n}99" for n in range(5)]
    assert list(client.sscan_iter(key, match="nothing:*")) == []
    # By hand: cursors until 0, every member once.
    cursor, pages, collected = 0, 0, []
    while True:
        cursor, page = client.sscan(key, cursor, count=50)
        collected.extend(page)
        pages += 1
        assert pages <= 500, "SSCAN never came back to cursor 0"
        if cursor == 0:
            break
    assert sorted(collected) == sorted(members)
    assert client.delete(key) == 1
    assert list(client.sscan_iter(key)) == []


def test_sets_among_the_other_keys(client):
    name, text, items, fields = unique("set"), unique("text"), unique("items"), unique("fields")
    assert client.sadd(name, "a", "b") == 2
    client.set(text, "v")
    client.rpush(items, "x")
    client.hset(fields, "f", "v")
    assert client.type(name) == "set"
    # Set commands on other kinds of keys, and the other way round.
    for call in (
        lambda: client.sadd(text, "x"),
        lambda: client.srem(items, "x"),
        lambda: client.smembers(fields),
        lambda: client.sismember(text, "v"),
        lambda: client.scard(items),
        lambda: client.spop(fields),
        lambda: client.sinter(name, text),
        lambda: client.sunionstore(unique("dest"), [name, items]),
        lambda: client.smove(name, text, "a"),
        lambda: client.get(name),
        lambda: client.lpush(name, "x"),
        lambda: client.hget(name, "a"),
        lambda: client.incr(name),
    ):
        with pytest.raises(redis.ResponseError, match=f"^{WRONGTYPE}$"):
            call()
    assert client.smembers(name) == {"a", "b"}
    assert client.get(text) == "v"
    # Among the keys.
    assert client.exists(name, text, items, fields, unique("missing")) == 4
    assert name in set(client.scan_iter(match=name, _type="set"))
    assert name not in set(client.scan_iter(match=name, _type="string"))
    assert text not in set(client.scan_iter(match=text, _type="set"))
    # A TTL: kept by changes to the members, dropped by PERSIST.
    assert client.expire(name, 100) is True
    assert client.sadd(name, "c") == 1
    assert client.srem(name, "a") == 1
    assert 99 <= client.ttl(name) <= 100
    assert client.persist(name) is True
    assert client.ttl(name) == -1
    # Then gone, every member at once.
    assert client.pexpire(name, 300) is True
    wait_until(lambda: client.exists(name) == 0, 10, "the set to expire")
    assert client.smembers(name) == set()
    assert client.ttl(name) == -2
    # SET replaces a set whole.
    assert client.sadd(name, "again") == 1
    assert client.set(name, "now a string") is True
    assert client.type(name) == "string"
    assert client.delete(name, text, items, fields) == 4


def test_transactions_of_set_commands(client):
    seen, done, text = unique("seen"), unique("done"), unique("text")
    with client.pipeline(transaction=True) as pipe:
        pipe.sadd(seen, "job-1", "job-2", "job-3")
        pipe.srem(seen, "job-2")
        pipe.smove(seen, done, "job-1")
        pipe.sismember(done, "job-1")
        pipe.scard(seen)
        pipe.smembers(seen)
        replies = pipe.execute()
    assert replies == [3, 1, True, 1, 1, {"job-3"}]
    # A command that fails inside EXEC fails alone; the others are done.
    client.set(text, "v")
    with client.pipeline(transaction=True) as pipe:
        pipe.sadd(seen, "job-4")
        pipe.sadd(text, "job-4")
        pipe.sunionstore(done, [done, seen])
        replies = pipe.execute(raise_on_error=False)
    assert replies[0] == 1
    assert isinstance(replies[1], redis.ResponseError) and WRONGTYPE in str(replies[1])
    assert replies[2] == 3
    assert client.smembers(done) == {"job-1", "job-3", "job-4"}
    # A plain pipeline: many commands in flight, answered in order.
    wide = unique("wide")
    with client.pipeline(transaction=False) as pipe:
        for n in range(100):
            pipe.sadd(wide, f"m{n % 60}")
        assert pipe.scard(wide).execute() == [1] * 60 + [0] * 40 + [60]
    assert client.delete(seen, done, text, wide) == 4


def test_binary_members(redis_url):
    client = redis.Redis.from_url(redis_url)
    try:
        key = unique("binary")
        members = {
            b"\x00",
            b"\xff\xfe\x80",
            "café".encode(),
            b"line\r\nbreak",
            b"",
            b"*?[",
            b"12345678901234567890123",
            bytes(range(256)) * 40,
        }
        assert client.sadd(key, *members) == len(members)
        assert client.smembers(key) == members
        for member in members:
            assert client.sismember(key, member) == 1
            assert set(client.sscan_iter(key, match=b"caf*")) == {"café".encode()}
        assert set(client.sscan_iter(key, match=b"\\*\\?\\[")) == {b"*?["}
        assert client.srem(key, b"\x00", b"", b"\x01") == 2
        assert client.smembers(key) == members - {b"\x00", b""}
        assert client.delete(key) == 1
    finally:
        client.close()


def test_sadd_from_several_threads_counts_each_member_once(redis_url, client):
    key = unique("visitors")
    workers, own, shared = 8, 150, 50
    start = threading.Barrier(workers)

    def work(worker: int) -> int:
        connection = redis.Redis.from_url(redis_url, decode_responses=True)
        try:
            start.wait(timeout=10)
            added = 0
            for n in range(own):
                added += connection.sadd(key, f"w{worker}:{n}", f"shared:{(n + worker) % shared}")
            return added
        finally:
            connection.close()

    with ThreadPoolExecutor(workers) as pool:
        added = list(pool.map(work, range(workers)))
    # Each shared member was new to exactly one SADD: the answers add up to the size.
    assert client.scard(key) == workers * own + shared
    assert sum(added) == workers * own + shared
    assert client.sismember(key, f"w{workers - 1}:{own - 1}") == 1
    assert client.delete(key) == 1


def test_asyncio_client(redis_url):
    async def main():
        connection = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
        key = unique("async-set")
        others = [redis.asyncio.Redis.from_url(redis_url) for _ in range(4)]

        async def add(index, other):
            return sum([await other.sadd(key, f"m{n}") for n in range(index, 40, 2)])

        try:
            added = await asyncio.wait_for(
                asyncio.gather(*(add(i % 2, o) for i, o in enumerate(others))), 30
            )
            assert sum(added) == 40
            assert await connection.scard(key) == 40
            async with connection.pipeline(transaction=True) as pipe:
                replies = await pipe.srem(key, "m0", "m1").sismember(key, "m2").scard(key).execute()
            assert replies == [2, 1, 38]
            members = {member async for member in connection.sscan_iter(key, match="m1*")}
            assert members == {f"m{n}" for n in range(10, 20)}
            assert await connection.smismember(key, ["m0", "m39"]) == [0, 1]
            assert len(await connection.spop(key, 38)) == 38
            assert await connection.exists(key) == 0
        finally:
            for other in others:
                await other.aclose()
            await connection.aclose()

    asyncio.run(main())


@pytest.mark.parametrize("protocol", [2, 3])
def test_replies_as_sent(redis_url, protocol):
    """RESP3 answers a set (`~`) where Redis 7 does: SMEMBERS, SINTER, SUNION, SDIFF and SPOP
    with a count, empty ones too; SRANDMEMBER with a count stays an array (`*`), as do
    SMISMEMBER and SSCAN. A nil is `$-1` in RESP2, `_` in RESP3."""
    key, missing = unique("shapes"), unique("missing")
    one = b"$1\r\na\r\n"
    set_ = b"~" if protocol == 3 else b"*"
    nil = b"_\r\n" if protocol == 3 else b"$-1\r\n"
    expected = [
        (["SADD", key, "a"], b":1\r\n"),
        (["SMEMBERS", key], set_ + b"1\r\n" + one),
        (["SMEMBERS", missing], set_ + b"0\r\n"),
        (["SINTER", key, key], set_ + b"1\r\n" + one),
        (["SUNION", key, missing], set_ + b"1\r\n" + one),
        (["SDIFF", missing, key], set_ + b"0\r\n"),
        (["SISMEMBER", key, "a"], b":1\r\n"),
        (["SMISMEMBER", key, "a", "z"], b"*2\r\n:1\r\n:0\r\n"),
        (["SCARD", key], b":1\r\n"),
        (["SRANDMEMBER", key], one),
        (["SRANDMEMBER", key, "2"], b"*1\r\n" + one),
        (["SRANDMEMBER", key, "-2"], b"*2\r\n" + one + one),
        (["SRANDMEMBER", missing], nil),
        (["SRANDMEMBER", missing, "2"], b"*0\r\n"),
        (["SPOP", missing], nil),
        (["SPOP", missing, "2"], set_ + b"0\r\n"),
        (["SPOP", key, "0"], set_ + b"0\r\n"),
        (["SSCAN", key, "0"], b"*2\r\n$1\r\n0\r\n*1\r\n" + one),
        (["SINTERCARD", "1", key], b":1\r\n"),
        (["SPOP", key, "5"], set_ + b"1\r\n" + one),
        (["EXISTS", key], b":0\r\n"),
    ]
    replies = raw_replies(redis_url, protocol, [command for command, _ in expected])
    assert [(command, reply) for (command, _), reply in zip(expected, replies)] == expected


def test_sets_survive_kill_9(broker, redis_url):
    """Everything acknowledged is there after kill -9 and a restart, and nothing removed comes
    back: sets changed by SADD, SREM, SMOVE and SPOP, a STORE destination, binary members, one
    with a TTL, one emptied, one replaced by SET; and a model of a few hundred more commands
    over three sets (compared as sets: a set has no order)."""
    client = redis.Redis.from_url(redis_url)
    tags, stored, timed, emptied, replaced = (
        unique(n) for n in ("tags", "stored", "timed", "emptied", "replaced")
    )
    assert client.sadd(tags, "red", "green", "blue", b"\x00\xff", "") == 5
    assert client.srem(tags, "green", "purple") == 1
    assert client.smove(tags, stored, "blue") is True
    assert client.sadd(stored, "x", "y") == 2
    assert client.sunionstore(stored, [stored, tags]) == 6
    assert client.sadd(timed, "token") == 1
    assert client.expire(timed, 1000) is True
    assert client.sadd(emptied, "only") == 1
    assert client.spop(emptied) == b"only"
    assert client.sadd(replaced, "m") == 1
    assert client.set(replaced, "now a string") is True

    # A few hundred more commands over three sets, each answer checked against a model.
    rng = random.Random(5)
    keys = [unique("model") for _ in range(3)]
    model: dict[str, set[bytes]] = {key: set() for key in keys}
    names = [f"m{n}".encode() for n in range(12)]
    for n in range(300):
        key, other = rng.sample(keys, 2)
        members = model[key]
        action = rng.randrange(5)
        if action <= 1:
            chosen = rng.sample(names, rng.randrange(1, 4))
            assert client.sadd(key, *chosen) == len(set(chosen) - members)
            members.update(chosen)
        elif action == 2:
            gone = rng.sample(names, rng.randrange(1, 3))
            assert client.srem(key, *gone) == len(set(gone) & members)
            members.difference_update(gone)
        elif action == 3:
            member = rng.choice(names)
            assert client.smove(key, other, member) is (member in members)
            if member in members:
                members.discard(member)
                model[other].add(member)
        else:
            popped = client.spop(key)
            assert popped in (members or {None})
            members.discard(popped)
    before = {key: client.smembers(key) for key in [tags, stored, timed, *keys]}
    assert {key: before[key] for key in keys} == model
    client.close()

    broker.restart()
    client = redis.Redis.from_url(broker.redis_url)
    try:
        after = {key: client.smembers(key) for key in before}
        assert after == before
        assert after[tags] == {b"red", b"\x00\xff", b""}
        assert after[stored] == {b"blue", b"x", b"y", b"red", b"\x00\xff", b""}
        for key, members in before.items():
            assert client.type(key) == (b"set" if members else b"none")
            assert client.scard(key) == len(members)
        assert client.exists(emptied) == 0
        assert client.type(replaced) == b"string"
        assert 0 < client.ttl(timed) <= 1000
        assert client.ttl(tags) == -1
        # Still working sets.
        assert client.sadd(tags, "red", "new") == 1
        assert client.srem(stored, "x") == 1
        assert client.smembers(stored) == {b"blue", b"y", b"red", b"\x00\xff", b""}
    finally:
        client.close()
