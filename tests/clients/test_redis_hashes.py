"""redis-py against the Redis door's hashes, as an application uses them: an object stored
with `hset(mapping=…)` and read back whole (RESP2 and RESP3), fields in the order they were
first set; counters per field incremented from several threads; a job record updated field by
field that expires; transactions (pipelines) of hash commands; WATCH on a hash; `hscan_iter`
over 500 fields; binary field names and values; hashes among the other keys (TYPE, WRONGTYPE,
SET over a hash, SCAN TYPE hash, TTLs); the asyncio client; and hashes read back identical,
fields in the same order, after kill -9.

Small hashes are kept in insertion order (an updated field keeps its place, a deleted one
leaves the others in order), as redis-server keeps a hash of under 128 fields whose fields
and values are under 65 bytes: the order checks below stay within that."""

from __future__ import annotations

import asyncio
import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import redis.asyncio

from harness import unique, wait_until

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


@pytest.fixture
def client(redis_url):
    connection = redis.Redis.from_url(redis_url, decode_responses=True)
    yield connection
    connection.close()


@pytest.mark.parametrize("protocol", [2, 3])
def test_an_object_stored_as_a_hash(redis_url, protocol):
    client = redis.Redis.from_url(redis_url, protocol=protocol, decode_responses=True)
    try:
        user = unique("user")
        profile = {"name": "Ada", "email": "ada@example.com", "visits": "0", "plan": "free"}
        assert client.hset(user, mapping=profile) == 4
        stored = client.hgetall(user)
        assert stored == profile
        assert list(stored) == list(profile)
        assert client.type(user) == "hash"
        assert client.hget(user, "name") == "Ada"
        assert client.hget(user, "age") is None
        assert client.hget(unique("nobody"), "name") is None
        assert client.hmget(user, ["email", "age", "plan"]) == ["ada@example.com", None, "free"]
        # An update keeps the field's place; a new field goes last.
        assert client.hset(user, "plan", "pro") == 0
        assert client.hset(user, mapping={"email": "ada@lovelace.org", "country": "UK"}) == 1
        assert client.hset(user, items=["lang", "en", "plan", "team"]) == 1
        assert client.hset(user, "visits", 7) == 0
        assert client.hkeys(user) == ["name", "email", "visits", "plan", "country", "lang"]
        assert client.hvals(user) == ["Ada", "ada@lovelace.org", "7", "team", "UK", "en"]
        assert client.hlen(user) == 6
        assert client.hexists(user, "country") is True
        assert client.hexists(user, "age") is False
        assert client.hstrlen(user, "email") == len("ada@lovelace.org")
        assert client.hstrlen(user, "age") == 0
        assert client.hsetnx(user, "name", "Grace") == 0
        assert client.hsetnx(user, "age", "36") == 1
        assert client.hdel(user, "visits", "nickname") == 1
        assert list(client.hgetall(user).items()) == [
            ("name", "Ada"),
            ("email", "ada@lovelace.org"),
            ("plan", "team"),
            ("country", "UK"),
            ("lang", "en"),
            ("age", "36"),
        ]
        # A small hash answers HSCAN whole, with cursor 0.
        assert client.hscan(user, match="[al]*") == (0, {"lang": "en", "age": "36"})
        # A field deleted and set again goes last.
        assert client.hdel(user, "name") == 1
        assert client.hset(user, "name", "Ada King") == 1
        assert client.hkeys(user) == ["email", "plan", "country", "lang", "age", "name"]
        # The last field deleted, the key is gone.
        assert client.hdel(user, *client.hkeys(user)) == 6
        assert client.exists(user) == 0
        assert client.type(user) == "none"
        assert client.hgetall(user) == {}
        assert client.hlen(user) == 0
        assert client.hkeys(user) == []
    finally:
        client.close()


def test_counters_per_field_from_several_threads(redis_url, client):
    stats = unique("stats")
    fields = ["views", "clicks", "errors"]
    workers, rounds = 6, 90
    start = threading.Barrier(workers)

    def work(worker: int) -> list[int]:
        connection = redis.Redis.from_url(redis_url, decode_responses=True)
        try:
            start.wait(timeout=10)
            return [
                connection.hincrby(stats, fields[n % len(fields)], worker + 1)
                for n in range(rounds)
            ]
        finally:
            connection.close()

    with ThreadPoolExecutor(workers) as pool:
        answers = list(pool.map(work, range(workers)))
    # Every increment counted once: each field holds the sum of what was added to it.
    per_field = rounds // len(fields)
    expected = {field: per_field * sum(range(1, workers + 1)) for field in fields}
    assert client.hgetall(stats) == {field: str(total) for field, total in expected.items()}
    # Each thread saw its field's counter only grow.
    for worker_answers in answers:
        for offset in range(len(fields)):
            seen = worker_answers[offset :: len(fields)]
            assert seen == sorted(seen) and len(set(seen)) == len(seen)
    assert max(a for worker_answers in answers for a in worker_answers) == max(expected.values())
    assert client.hincrby(stats, "views", -expected["views"]) == 0
    assert client.hincrby(stats, "fresh") == 1
    # What HINCRBY refuses, in Redis's words, changing nothing.
    client.hset(stats, mapping={"label": "front page", "top": 9223372036854775807})
    with pytest.raises(redis.ResponseError, match="^hash value is not an integer$"):
        client.hincrby(stats, "label", 1)
    with pytest.raises(redis.ResponseError, match="^increment or decrement would overflow$"):
        client.hincrby(stats, "top", 1)
    with pytest.raises(redis.ResponseError, match="^value is not an integer or out of range$"):
        client.execute_command("HINCRBY", stats, "clicks", "1.5")
    assert client.hget(stats, "top") == "9223372036854775807"
    assert client.hget(stats, "clicks") == str(expected["clicks"])


def test_a_job_record_updated_then_expired(client):
    job = f"job:{unique('export')}"
    assert client.hset(job, mapping={"status": "queued", "attempts": 0, "queue": "exports"}) == 3
    # A worker takes it.
    with client.pipeline() as pipe:
        pipe.hset(job, mapping={"status": "running", "worker": "w-1"})
        pipe.hincrby(job, "attempts", 1)
        pipe.hget(job, "status")
        assert pipe.execute() == [1, 1, "running"]
    # It fails; the retry clears the error.
    assert client.hset(job, mapping={"status": "failed", "error": "timeout"}) == 1
    assert client.hget(job, "error") == "timeout"
    assert client.hset(job, "status", "running") == 0
    assert client.hincrby(job, "attempts", 1) == 2
    assert client.hdel(job, "error") == 1
    assert client.hdel(job, "error") == 0
    assert client.hexists(job, "error") is False
    assert client.hset(job, mapping={"status": "done", "result": "s3://exports/1.csv"}) == 1
    assert client.hgetall(job) == {
        "status": "done",
        "attempts": "2",
        "queue": "exports",
        "worker": "w-1",
        "result": "s3://exports/1.csv",
    }
    # Kept for a while once done: writes to its fields keep the key's TTL.
    assert client.ttl(job) == -1
    assert client.expire(job, 100) is True
    assert client.hset(job, "seen_by", "auditor") == 1
    assert client.hincrby(job, "attempts", 0) == 2
    assert client.hdel(job, "worker") == 1
    assert 99 <= client.ttl(job) <= 100
    assert client.persist(job) is True
    assert client.ttl(job) == -1
    # Then gone, every field at once.
    assert client.pexpire(job, 300) is True
    assert 0 < client.pttl(job) <= 300
    wait_until(lambda: client.exists(job) == 0, 10, "the job record to expire")
    assert client.hgetall(job) == {}
    assert client.hget(job, "status") is None
    assert client.ttl(job) == -2
    # A new record of the same name starts without a TTL.
    assert client.hset(job, "status", "queued") == 1
    assert client.ttl(job) == -1
    assert client.delete(job) == 1


def test_pipelines_of_hash_commands(client):
    cart = unique("cart")
    with client.pipeline(transaction=True) as pipe:
        pipe.hset(cart, mapping={"apple": 1, "pear": 2})
        pipe.hincrby(cart, "apple", 2)
        pipe.hincrby(cart, "plum", 5)
        pipe.hdel(cart, "pear")
        pipe.hsetnx(cart, "apple", 100)
        pipe.hgetall(cart)
        pipe.hlen(cart)
        assert pipe.execute() == [2, 3, 5, 1, 0, {"apple": "3", "plum": "5"}, 2]
    # A command that fails inside EXEC fails alone; the others are done.
    with client.pipeline(transaction=True) as pipe:
        pipe.hset(cart, "note", "gift")
        pipe.hincrby(cart, "note", 1)
        pipe.hincrby(cart, "apple", 1)
        pipe.hmget(cart, ["apple", "note", "pear"])
        replies = pipe.execute(raise_on_error=False)
    assert replies[0] == 1
    assert isinstance(replies[1], redis.ResponseError)
    assert "hash value is not an integer" in str(replies[1])
    assert replies[2:] == [4, ["4", "gift", None]]
    # One refused while queueing (HSET without a value) discards the whole transaction.
    with client.pipeline(transaction=True) as pipe:
        pipe.hset(cart, "never", "1")
        pipe.execute_command("HSET", cart, "lonely")
        with pytest.raises(redis.ResponseError):
            pipe.execute()
    assert client.hexists(cart, "never") is False
    # A plain pipeline: many commands in flight, answered in order, fields kept in order.
    wide = unique("wide")
    with client.pipeline(transaction=False) as pipe:
        for n in range(100):
            pipe.hset(wide, f"f{n}", n)
        pipe.hlen(wide)
        pipe.hkeys(wide)
        replies = pipe.execute()
    assert replies[:100] == [1] * 100
    assert replies[100] == 100
    assert replies[101] == [f"f{n}" for n in range(100)]
    assert client.delete(cart, wide) == 2


def test_watch_on_a_hash(redis_url, client):
    account = unique("account")
    client.hset(account, mapping={"balance": 100, "holds": 0})
    other = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        # Another connection changes a field between WATCH and EXEC: EXEC does nothing.
        with client.pipeline() as pipe:
            pipe.watch(account)
            balance = int(pipe.hget(account, "balance"))
            assert other.hincrby(account, "balance", -30) == 70
            pipe.multi()
            pipe.hset(account, "balance", balance - 50)
            with pytest.raises(redis.WatchError):
                pipe.execute()
        assert client.hget(account, "balance") == "70"
        # Writing a field's own value again is a change too.
        with client.pipeline() as pipe:
            pipe.watch(account)
            assert other.hset(account, "holds", "0") == 0
            pipe.multi()
            pipe.hincrby(account, "holds", 1)
            with pytest.raises(redis.WatchError):
                pipe.execute()
        # Commands that change nothing do not abort it: reads, HSETNX of a field that is
        # there, HDEL of one that is not, an HINCRBY refused; nor does a change elsewhere.
        with client.pipeline() as pipe:
            pipe.watch(account)
            assert other.hgetall(account) == {"balance": "70", "holds": "0"}
            assert other.hsetnx(account, "balance", "1") == 0
            assert other.hdel(account, "overdraft") == 0
            with pytest.raises(redis.ResponseError):
                other.hincrby(account, "balance", "x")
            assert other.hset(unique("elsewhere"), "f", "v") == 1
            pipe.multi()
            pipe.hincrby(account, "holds", 1)
            assert pipe.execute() == [1]
        # The retry loop redis-py offers: the first attempt loses the race, the second wins.
        attempts = []

        def withdraw(pipe):
            balance = int(pipe.hget(account, "balance"))
            if not attempts:
                other.hset(account, "balance", balance + 1000)
            attempts.append(balance)
            pipe.multi()
            pipe.hincrby(account, "balance", -50)
            pipe.hincrby(account, "holds", 1)

        assert client.transaction(withdraw, account) == [1020, 2]
        assert attempts == [70, 1070]
        # Deleting the watched hash aborts too.
        with client.pipeline() as pipe:
            pipe.watch(account)
            assert other.hdel(account, "balance", "holds") == 2
            pipe.multi()
            pipe.hset(account, "balance", 1)
            with pytest.raises(redis.WatchError):
                pipe.execute()
        assert client.exists(account) == 0
    finally:
        other.close()


def test_hscan_iter_over_500_fields(client):
    wide = unique("wide")
    fields = {f"field:{n:03d}": f"value {n}" for n in range(500)}
    assert client.hset(wide, mapping=fields) == 500
    assert client.hlen(wide) == 500
    for count in (None, 7, 50, 1000):
        seen = list(client.hscan_iter(wide, count=count))
        assert len(seen) == 500, f"COUNT {count}: {len(seen)} fields"
        assert dict(seen) == fields
    matched = [field for field, _ in client.hscan_iter(wide, match="field:1*", count=20)]
    assert sorted(matched) == [f"field:{n}" for n in range(100, 200)]
    assert list(client.hscan_iter(wide, match="nothing:*")) == []
    # By hand: cursors until 0, every field once.
    cursor, pages, collected = 0, 0, []
    while True:
        cursor, page = client.hscan(wide, cursor, count=100)
        collected.extend(page)
        pages += 1
        assert pages <= 500, "HSCAN never came back to cursor 0"
        if cursor == 0:
            break
    assert sorted(collected) == sorted(fields)
    # NOVALUES (Redis 7.4): the fields alone; refused by the other scans in Redis's words.
    names = list(client.hscan_iter(wide, count=60, no_values=True))
    assert sorted(names) == sorted(fields)
    assert client.hscan(wide, 0, match="field:00*", count=1000, no_values=True) == (
        0,
        [f"field:00{n}" for n in range(10)],
    )
    members = unique("members")
    client.sadd(members, "m")
    for refused in (("SCAN", 0, "NOVALUES"), ("SSCAN", members, 0, "NOVALUES")):
        with pytest.raises(redis.ResponseError, match="^NOVALUES option can only be used in HSCAN$"):
            client.execute_command(*refused)
    assert client.delete(wide, members) == 2
    assert list(client.hscan_iter(wide)) == []


def test_binary_field_names_and_values(redis_url):
    client = redis.Redis.from_url(redis_url)
    try:
        key = unique("binary")
        pairs = {
            b"\x00": b"nul name",
            b"\xff\xfe\x80": b"\x00\x01\x02\xff",
            "café".encode(): "crème brûlée".encode(),
            b"line\r\nbreak": b"value\r\nwith\r\nbreaks",
            b"": b"empty name",
            b"empty value": b"",
            b"*?[": b"glob characters",
            b"big": bytes(range(256)) * 40,
        }
        assert client.hset(key, mapping=pairs) == len(pairs)
        assert client.hgetall(key) == pairs
        assert sorted(client.hkeys(key)) == sorted(pairs)
        for field, value in pairs.items():
            assert client.hget(key, field) == value
            assert client.hstrlen(key, field) == len(value)
            assert client.hexists(key, field) is True
        assert client.hmget(key, [b"\x00", b"\x01", b""]) == [b"nul name", None, b"empty name"]
        assert dict(client.hscan_iter(key, match=b"caf*")) == {
            "café".encode(): "crème brûlée".encode()
        }
        assert dict(client.hscan_iter(key, match=b"\\*\\?\\[")) == {b"*?[": b"glob characters"}
        assert client.hincrby(key, b"\x01\x02", 5) == 5
        assert client.hdel(key, b"\x00", b"", b"\x01\x02", b"\x00") == 3
        assert client.hlen(key) == len(pairs) - 2
        assert client.hget(key, b"\x00") is None
        assert client.delete(key) == 1
    finally:
        client.close()


def test_hashes_among_the_other_keys(client):
    name, text, items = unique("hash"), unique("text"), unique("items")
    assert client.hset(name, mapping={"a": "1", "b": "2"}) == 2
    client.set(text, "v")
    client.rpush(items, "x")
    assert client.type(name) == "hash"
    # Hash commands on other kinds of keys, and the other way round.
    for call in (
        lambda: client.hset(text, "f", "v"),
        lambda: client.hget(items, "f"),
        lambda: client.hgetall(text),
        lambda: client.hincrby(items, "n", 1),
        lambda: client.get(name),
        lambda: client.append(name, "x"),
        lambda: client.incr(name),
        lambda: client.lpush(name, "x"),
        lambda: client.lrange(name, 0, -1),
    ):
        with pytest.raises(redis.ResponseError, match=f"^{WRONGTYPE}$"):
            call()
    assert client.mget(name, text) == [None, "v"]
    assert client.setnx(name, "x") is False
    assert client.msetnx({name: "x", unique("fresh"): "y"}) is False
    assert client.set(name, "x", nx=True) is None
    assert client.hgetall(name) == {"a": "1", "b": "2"}
    # Among the keys.
    assert client.exists(name, text, items, unique("missing")) == 3
    assert name in client.keys(name[:-3] + "*")
    assert name in set(client.scan_iter(match=name, _type="hash"))
    assert name not in set(client.scan_iter(match=name, _type="string"))
    assert text not in set(client.scan_iter(match=text, _type="hash"))
    assert client.expire(name, 100) is True
    assert 99 <= client.ttl(name) <= 100
    assert client.persist(name) is True
    assert client.ttl(name) == -1
    # SET replaces a hash whole.
    assert client.set(name, "now a string") is True
    assert client.type(name) == "string"
    assert client.get(name) == "now a string"
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        client.hget(name, "a")
    assert client.delete(name, text, items) == 3
    assert client.hset(name, "again", "1") == 1
    assert client.delete(name) == 1
    assert client.delete(name) == 0


def test_asyncio_client(redis_url):
    async def main():
        connection = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
        key = unique("async-hash")
        others = [redis.asyncio.Redis.from_url(redis_url) for _ in range(4)]

        async def bump(other):
            for _ in range(25):
                await other.hincrby(key, "n", 1)

        try:
            assert await connection.hset(key, mapping={"a": "1", "b": "2"}) == 2
            await asyncio.wait_for(asyncio.gather(*(bump(o) for o in others)), 30)
            assert await connection.hget(key, "n") == "100"
            async with connection.pipeline(transaction=True) as pipe:
                replies = await pipe.hset(key, "c", "3").hdel(key, "a").hgetall(key).execute()
            assert replies == [1, 1, {"b": "2", "n": "100", "c": "3"}]
            assert [field async for field, _ in connection.hscan_iter(key)] == ["b", "n", "c"]
            assert await connection.hmget(key, ["c", "zz"]) == ["3", None]
            assert await connection.hkeys(key) == ["b", "n", "c"]
            assert await connection.hvals(key) == ["2", "100", "3"]
            assert await connection.hlen(key) == 3
            assert await connection.hexists(key, "a") is False
            assert await connection.delete(key) == 1
            assert await connection.hgetall(key) == {}
        finally:
            for other in others:
                await other.aclose()
            await connection.aclose()

    asyncio.run(main())


def test_hashes_survive_kill_9(broker, redis_url):
    """Everything acknowledged is there after kill -9 and a restart, fields in the same order,
    and nothing deleted comes back: a hash updated and with fields deleted and set again,
    counters moved by HINCRBY, one with a TTL, one emptied, one replaced by SET; and a model
    of a few hundred more commands over three hashes (a Python dict keeps its keys in the
    order a small hash does)."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    profile, counters, timed, emptied, replaced = (
        unique(n) for n in ("profile", "counters", "timed", "emptied", "replaced")
    )
    assert client.hset(profile, mapping={"name": "Ada", "email": "a@x", "plan": "free"}) == 3
    assert client.hset(profile, mapping={"visits": "3", "plan": "pro"}) == 1
    assert client.hdel(profile, "email", "phone") == 1
    assert client.hset(profile, "email", "ada@y") == 1
    assert client.hsetnx(profile, "name", "Grace") == 0
    assert client.hincrby(counters, "hits", 41) == 41
    assert client.hincrby(counters, "misses", -2) == -2
    assert client.hincrby(counters, "hits", 1) == 42
    assert client.hset(timed, mapping={"token": "t-1", "user": "ada"}) == 2
    assert client.expire(timed, 1000) is True
    assert client.hset(emptied, mapping={"only": "1", "other": "2"}) == 2
    assert client.hdel(emptied, "only", "other") == 2
    assert client.hset(replaced, "f", "v") == 1
    assert client.set(replaced, "now a string") is True

    # A few hundred more commands over three hashes, each answer checked against a model.
    rng = random.Random(11)
    keys = [unique("model") for _ in range(3)]
    model: dict[str, dict[str, str]] = {key: {} for key in keys}
    names = [f"f{n}" for n in range(10)]
    for n in range(300):
        key = rng.choice(keys)
        fields = model[key]
        action = rng.randrange(6)
        if action <= 1:
            chosen = rng.sample(names, rng.randrange(1, 4))
            pairs = {name: f"v{n}-{i}" for i, name in enumerate(chosen)}
            added = sum(1 for name in pairs if name not in fields)
            assert client.hset(key, mapping=pairs) == added
            fields.update(pairs)
        elif action == 2:
            gone = rng.sample(names, rng.randrange(1, 3))
            assert client.hdel(key, *gone) == sum(1 for name in gone if name in fields)
            for name in gone:
                fields.pop(name, None)
        elif action == 3:
            counter, amount = f"n{rng.randrange(3)}", rng.randrange(-5, 10)
            fields[counter] = str(int(fields.get(counter, "0")) + amount)
            assert client.hincrby(key, counter, amount) == int(fields[counter])
        elif action == 4:
            name = rng.choice(names)
            assert client.hsetnx(key, name, f"nx{n}") == (0 if name in fields else 1)
            fields.setdefault(name, f"nx{n}")
        else:
            name, gone = rng.choice(names), rng.choice(names)
            with client.pipeline(transaction=True) as pipe:
                replies = pipe.hset(key, name, f"p{n}").hdel(key, gone).hgetall(key).execute()
            added = name not in fields
            fields[name] = f"p{n}"
            removed = fields.pop(gone, None) is not None
            assert replies == [int(added), int(removed), fields]
            assert list(replies[2].items()) == list(fields.items())
    before = {key: list(client.hgetall(key).items()) for key in [profile, counters, timed, *keys]}
    assert {key: before[key] for key in keys} == {key: list(model[key].items()) for key in keys}
    client.close()

    broker.restart()
    client = redis.Redis.from_url(broker.redis_url, decode_responses=True)
    try:
        after = {key: list(client.hgetall(key).items()) for key in before}
        assert after == before
        assert after[profile] == [
            ("name", "Ada"),
            ("plan", "pro"),
            ("visits", "3"),
            ("email", "ada@y"),
        ]
        assert after[counters] == [("hits", "42"), ("misses", "-2")]
        for key, pairs in before.items():
            assert client.type(key) == ("hash" if pairs else "none")
            assert client.hlen(key) == len(pairs)
            assert client.hkeys(key) == [field for field, _ in pairs]
        assert client.exists(emptied) == 0
        assert client.type(replaced) == "string"
        assert client.get(replaced) == "now a string"
        assert 0 < client.ttl(timed) <= 1000
        assert client.ttl(profile) == -1
        # Still working hashes: changes go on from where they were.
        assert client.hincrby(counters, "hits", 1) == 43
        assert client.hset(profile, "lang", "en") == 1
        assert client.hkeys(profile) == ["name", "plan", "visits", "email", "lang"]
        assert client.hdel(profile, "name") == 1
        assert client.hkeys(profile) == ["plan", "visits", "email", "lang"]
    finally:
        client.close()
