"""redis-py against commands the Redis door is to serve next: RENAME and RENAMENX over every
kind of key (a TTL moves with the key, a key of another kind at the destination is replaced,
RENAMENX never replaces, renaming onto itself changes nothing, inside MULTI/EXEC); COPY with
and without REPLACE (the TTL copied, the copy independent of its source, `DB 0`); the sorted
set pops ZMPOP, BZMPOP, BZPOPMIN and BZPOPMAX (the first non-empty key, MIN/MAX and COUNT, a
timeout answered with nil, a blocked client woken by a ZADD, or by a RENAME or COPY, from
another connection, blocked clients served in the order they blocked, a blocking pop inside
MULTI answering at once, their refusals, the replies as sent in RESP2 and RESP3); the Lua
libraries `cjson`, `cmsgpack` and `bit` as scripts such as BullMQ's use them
(`cmsgpack.unpack(ARGV[n])` of an option map packed by the client, `cjson.encode`/`decode`
of job data); and renamed and copied keys read back after kill -9.

Every expected answer and error text was read from Debian's redis-server 7.0, which passes
this file unchanged. Error texts are compared whole, as the server sent them: redis-py moves
the `ERR` code out of the message, `server_error` puts it back.

redis-py 8 speaks RESP3 unless told otherwise, and shapes some replies by protocol (BZPOPMIN
a tuple in RESP2, a list in RESP3; a score a string or a float): `popped` and `zmpopped` fold
both into one shape. The bytes as sent are checked by `test_zset_pop_replies_as_sent`."""

from __future__ import annotations

import json
import time

import pytest
import redis

from harness import unique
from test_redis_lists import ANSWER_TIMEOUT_S, HEAD_START_S, Blocked, raw_replies
from test_redis_zsets import pairs  # (member, score) tuples out of a WITHSCORES reply

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
KINDS = ["string", "list", "hash", "set", "zset"]


@pytest.fixture
def client(redis_url):
    connection = redis.Redis.from_url(redis_url, decode_responses=True)
    yield connection
    connection.close()


def server_error(error: redis.ResponseError) -> str:
    """The error line as the server sent it (redis-py strips the codes it knows)."""
    status = getattr(error, "status_code", None)
    return f"{status} {error}" if status else str(error)


def refusal(call) -> str:
    """The error `call()` is answered with, as the server sent it; fails on any other answer."""
    with pytest.raises(redis.ResponseError) as caught:
        call()
    return server_error(caught.value)


# -- keys of every kind ------------------------------------------------------------------------

STORED = {
    "string": "text",
    "list": ["a", "b", "c"],
    "hash": {"f1": "v1", "f2": "v2"},
    "set": {"x", "y", "z"},
    "zset": [("low", 1.0), ("mid", 2.5), ("high", 10.0)],
}


def store(client: redis.Redis, kind: str, key: str) -> None:
    """Writes the value STORED[kind] at `key`."""
    if kind == "string":
        assert client.set(key, STORED[kind]) is True
    elif kind == "list":
        assert client.rpush(key, *STORED[kind]) == 3
    elif kind == "hash":
        assert client.hset(key, mapping=STORED[kind]) == 2
    elif kind == "set":
        assert client.sadd(key, *sorted(STORED[kind])) == 3
    else:
        assert client.zadd(key, dict(STORED[kind])) == 3


def fetch(client: redis.Redis, kind: str, key: str):
    """The value of kind `kind` at `key`, in the shape of STORED."""
    if kind == "string":
        return client.get(key)
    if kind == "list":
        return client.lrange(key, 0, -1)
    if kind == "hash":
        return client.hgetall(key)
    if kind == "set":
        return client.smembers(key)
    return pairs(client.zrange(key, 0, -1, withscores=True))


def change(client: redis.Redis, kind: str, key: str):
    """Changes the value at `key`; returns what `fetch` then reads."""
    if kind == "string":
        assert client.append(key, "!") == 5
        return "text!"
    if kind == "list":
        assert client.rpush(key, "d") == 4
        return ["a", "b", "c", "d"]
    if kind == "hash":
        assert client.hset(key, "f3", "v3") == 1
        return {"f1": "v1", "f2": "v2", "f3": "v3"}
    if kind == "set":
        assert client.srem(key, "y") == 1
        return {"x", "z"}
    assert client.zincrby(key, 20, "low") == 21.0
    return [("mid", 2.5), ("high", 10.0), ("low", 21.0)]


# -- 1. RENAME and RENAMENX --------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_rename_moves_every_kind_of_key(client, kind):
    source, destination = unique(f"{kind}-from"), unique(f"{kind}-to")
    store(client, kind, source)
    assert client.rename(source, destination) is True
    assert client.exists(source) == 0
    assert client.type(source) == "none"
    assert client.type(destination) == kind
    assert fetch(client, kind, destination) == STORED[kind]
    assert client.ttl(destination) == -1
    # RENAMENX to a free name moves it again.
    back = unique(f"{kind}-back")
    assert client.renamenx(destination, back) is True
    assert client.exists(destination) == 0
    assert fetch(client, kind, back) == STORED[kind]
    # Still a working key of its kind under its new name.
    changed = change(client, kind, back)
    assert fetch(client, kind, back) == changed
    assert client.delete(back) == 1


def test_rename_carries_the_ttl_along(client):
    session, renamed, kept = unique("session"), unique("renamed"), unique("kept")
    assert client.set(session, "token", ex=100) is True
    assert client.rename(session, renamed) is True
    assert client.get(renamed) == "token"
    assert 98_000 < client.pttl(renamed) <= 100_000
    assert client.ttl(session) == -2
    # Onto a key without a TTL: the destination now expires as the source did.
    assert client.set(kept, "old") is True
    assert client.rename(renamed, kept) is True
    assert client.get(kept) == "token"
    assert 98_000 < client.pttl(kept) <= 100_000
    # A source without a TTL replacing a key that had one: the destination no longer expires.
    plain = unique("plain")
    assert client.rpush(plain, "p") == 1
    assert client.rename(plain, kept) is True
    assert client.ttl(kept) == -1
    assert client.lrange(kept, 0, -1) == ["p"]
    # A list with a TTL keeps it as well; RENAMENX too.
    timed, moved = unique("timed"), unique("moved")
    assert client.zadd(timed, {"m": 1}) == 1
    assert client.pexpire(timed, 50_000) is True
    assert client.renamenx(timed, moved) is True
    assert 48_000 < client.pttl(moved) <= 50_000
    assert client.delete(kept, moved) == 2


def test_rename_onto_an_existing_key_of_another_kind_replaces_it(client):
    for kind, other in zip(KINDS, KINDS[1:] + KINDS[:1]):
        source, destination = unique(f"{kind}-src"), unique(f"{other}-dst")
        store(client, kind, source)
        store(client, other, destination)
        assert client.rename(source, destination) is True
        assert client.type(destination) == kind, f"{kind} renamed onto a {other}"
        assert fetch(client, kind, destination) == STORED[kind]
        assert client.exists(source) == 0
        assert client.delete(destination) == 1
    # Onto a key of the same kind: replaced whole, not merged.
    first, second = unique("first"), unique("second")
    assert client.sadd(first, "a") == 1
    assert client.sadd(second, "b", "c") == 2
    assert client.rename(first, second) is True
    assert client.smembers(second) == {"a"}
    assert client.delete(second) == 1


def test_rename_refusals_and_renaming_onto_itself(client):
    missing, there = unique("missing"), unique("there")
    assert refusal(lambda: client.rename(missing, there)) == "ERR no such key"
    assert refusal(lambda: client.renamenx(missing, there)) == "ERR no such key"
    assert refusal(lambda: client.rename(missing, missing)) == "ERR no such key"
    assert refusal(lambda: client.renamenx(missing, missing)) == "ERR no such key"
    assert client.exists(missing, there) == 0
    # Onto itself: RENAME answers OK and changes nothing, the TTL included; RENAMENX answers 0.
    assert client.hset(there, mapping={"f": "v"}) == 1
    assert client.expire(there, 100) is True
    assert client.rename(there, there) is True
    assert client.hgetall(there) == {"f": "v"}
    assert 98_000 < client.pttl(there) <= 100_000
    assert client.renamenx(there, there) is False
    assert client.hgetall(there) == {"f": "v"}
    assert refusal(lambda: client.execute_command("RENAME", there)) == (
        "ERR wrong number of arguments for 'rename' command"
    )
    assert refusal(lambda: client.execute_command("RENAMENX", there, "a", "b")) == (
        "ERR wrong number of arguments for 'renamenx' command"
    )
    assert client.delete(there) == 1


def test_renamenx_onto_an_existing_key_changes_nothing(client):
    source, destination = unique("source"), unique("destination")
    assert client.set(source, "new", ex=100) is True
    assert client.rpush(destination, "old1", "old2") == 2
    assert client.renamenx(source, destination) is False
    assert client.get(source) == "new"
    assert 98_000 < client.pttl(source) <= 100_000
    assert client.lrange(destination, 0, -1) == ["old1", "old2"]
    assert client.ttl(destination) == -1
    # Once the destination is gone, the same RENAMENX moves the key.
    assert client.delete(destination) == 1
    assert client.renamenx(source, destination) is True
    assert client.exists(source) == 0
    assert client.get(destination) == "new"
    assert client.delete(destination) == 1


def test_rename_and_copy_inside_multi_exec(client):
    job, active, done, missing = unique("job"), unique("active"), unique("done"), unique("gone")
    assert client.hset(job, mapping={"state": "waiting"}) == 1
    with client.pipeline(transaction=True) as pipe:
        pipe.rename(job, active).hset(active, "state", "active").renamenx(active, done)
        pipe.copy(done, job).hgetall(job).exists(active)
        assert pipe.execute() == [True, 0, True, True, {"state": "active"}, 0]
    assert client.hgetall(done) == {"state": "active"}
    # An error inside EXEC is answered in its place; the other commands run.
    with client.pipeline(transaction=True) as pipe:
        pipe.rename(missing, active).set(active, "set").renamenx(done, active)
        pipe.copy(done, done).copy(done, active).copy(done, active, replace=True)
        pipe.type(active)
        replies = pipe.execute(raise_on_error=False)
    errors = [server_error(reply) for reply in replies if isinstance(reply, redis.ResponseError)]
    assert errors == ["ERR no such key", "ERR source and destination objects are the same"]
    assert isinstance(replies[0], redis.ResponseError)
    assert isinstance(replies[3], redis.ResponseError)
    assert [replies[n] for n in (1, 2, 4, 5, 6)] == [True, False, False, True, "hash"]
    assert client.hgetall(active) == {"state": "active"}
    assert client.delete(job, active, done) == 3


# -- 2. COPY -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_copy_every_kind_of_key(client, kind):
    source, duplicate, plain = unique(f"{kind}-src"), unique(f"{kind}-copy"), unique("plain")
    store(client, kind, source)
    assert client.expire(source, 100) is True
    assert client.copy(source, duplicate) is True
    assert client.type(duplicate) == kind
    assert fetch(client, kind, duplicate) == STORED[kind]
    assert fetch(client, kind, source) == STORED[kind]
    # The TTL is copied with it.
    assert 98_000 < client.pttl(duplicate) <= 100_000
    # The copy is independent: changing it leaves the source alone, and the other way round.
    changed = change(client, kind, duplicate)
    assert fetch(client, kind, duplicate) == changed
    assert fetch(client, kind, source) == STORED[kind]
    assert client.delete(source) == 1
    assert fetch(client, kind, duplicate) == changed
    # A source without a TTL: neither has one.
    store(client, kind, source)
    assert client.copy(source, plain) is True
    assert client.ttl(plain) == -1 and client.ttl(source) == -1
    assert fetch(client, kind, plain) == STORED[kind]
    assert client.delete(source, duplicate, plain) == 3


def test_copy_onto_an_existing_key_needs_replace(client):
    source, destination = unique("source"), unique("destination")
    assert client.zadd(source, {"a": 1, "b": 2}) == 2
    assert client.set(destination, "keep me", ex=100) is True
    # Without REPLACE: 0, and nothing changes.
    assert client.copy(source, destination) is False
    assert client.get(destination) == "keep me"
    assert 98_000 < client.pttl(destination) <= 100_000
    # With REPLACE: 1, the destination takes the source's kind, value and (no) TTL.
    assert client.copy(source, destination, replace=True) is True
    assert client.type(destination) == "zset"
    assert pairs(client.zrange(destination, 0, -1, withscores=True)) == [("a", 1.0), ("b", 2.0)]
    assert client.ttl(destination) == -1
    # REPLACE onto a key of the same kind: replaced whole, not merged.
    other = unique("other")
    assert client.zadd(other, {"z": 26}) == 1
    assert client.execute_command("COPY", other, destination, "REPLACE") == 1
    assert pairs(client.zrange(destination, 0, -1, withscores=True)) == [("z", 26.0)]
    # REPLACE onto a free name is an ordinary copy.
    fresh = unique("fresh")
    assert client.copy(source, fresh, replace=True) is True
    assert client.zcard(fresh) == 2
    assert client.delete(source, destination, other, fresh) == 4


def test_copy_of_a_missing_source_and_onto_itself(client):
    missing, there = unique("missing"), unique("there")
    assert client.copy(missing, there) is False
    assert client.copy(missing, there, replace=True) is False
    assert client.exists(there) == 0
    # A missing source leaves an existing destination alone, REPLACE or not.
    assert client.set(there, "v") is True
    assert client.copy(missing, there, replace=True) is False
    assert client.get(there) == "v"
    same = "ERR source and destination objects are the same"
    assert refusal(lambda: client.copy(there, there)) == same
    assert refusal(lambda: client.copy(there, there, replace=True)) == same
    assert refusal(lambda: client.copy(missing, missing)) == same
    assert client.get(there) == "v"
    assert client.delete(there) == 1


def test_copy_db_option(client):
    source, destination = unique("source"), unique("destination")
    assert client.rpush(source, "a") == 1
    # DB 0, the database the connection is in: an ordinary copy.
    assert client.copy(source, destination, destination_db=0) is True
    assert client.execute_command("COPY", source, destination, "DB", "0") == 0
    assert client.execute_command("COPY", source, destination, "REPLACE", "DB", "0") == 1
    assert client.execute_command("COPY", source, destination, "DB", "0", "REPLACE") == 1
    assert client.lrange(destination, 0, -1) == ["a"]
    for words, message in [
        (["DB", "x"], "ERR value is not an integer or out of range"),
        (["DB", "99"], "ERR DB index is out of range"),
        (["DB"], "ERR syntax error"),
        (["NOW"], "ERR syntax error"),
    ]:
        assert refusal(lambda: client.execute_command("COPY", source, destination, *words)) == (
            message
        ), words
    assert refusal(lambda: client.execute_command("COPY", source)) == (
        "ERR wrong number of arguments for 'copy' command"
    )
    assert client.delete(source, destination) == 2


# -- 3. ZMPOP, BZMPOP, BZPOPMIN, BZPOPMAX ------------------------------------------------------


def popped(reply):
    """A BZPOPMIN/BZPOPMAX reply as (key, member, score), whatever the protocol; None stays."""
    if reply is None:
        return None
    key, member, score = reply
    return key, member, float(score)


def zmpopped(reply):
    """A ZMPOP/BZMPOP reply as (key, [(member, score), ...]), whatever the protocol."""
    if reply is None:
        return None
    key, items = reply
    return key, [(member, float(score)) for member, score in items]


def test_zmpop_pops_from_the_first_non_empty_key(client):
    empty, first, second = unique("empty"), unique("first"), unique("second")
    assert client.zadd(first, {"a": 1, "b": 2, "c": 3, "d": 4.5}) == 4
    assert client.zadd(second, {"z": 0}) == 1
    keys = [empty, first, second]
    # One element by default: the lowest (MIN) or highest (MAX), from the first key that has any.
    assert zmpopped(client.zmpop(3, keys, min=True)) == (first, [("a", 1.0)])
    assert zmpopped(client.zmpop(3, keys, max=True)) == (first, [("d", 4.5)])
    # COUNT: that many, in pop order (MAX: highest first).
    assert client.zadd(first, {"e": 5, "f": 6}) == 2
    assert zmpopped(client.zmpop(3, keys, max=True, count=2)) == (first, [("f", 6.0), ("e", 5.0)])
    assert zmpopped(client.zmpop(3, keys, min=True, count=1)) == (first, [("b", 2.0)])
    # A COUNT above the size: all there is, and the emptied key is gone.
    assert zmpopped(client.zmpop(3, keys, min=True, count=10)) == (first, [("c", 3.0)])
    assert client.exists(first) == 0
    # Ties are popped by member order (MAX: reversed).
    assert client.zadd(first, {"tb": 7, "ta": 7, "tc": 7}) == 3
    assert zmpopped(client.zmpop(1, [first], min=True)) == (first, [("ta", 7.0)])
    assert zmpopped(client.zmpop(1, [first], max=True)) == (first, [("tc", 7.0)])
    assert zmpopped(client.zmpop(2, [first, second], min=True, count=5)) == (first, [("tb", 7.0)])
    # Then the next key.
    assert zmpopped(client.zmpop(3, keys, max=True, count=5)) == (second, [("z", 0.0)])
    assert client.exists(empty, first, second) == 0
    # Nothing anywhere: nil.
    assert client.zmpop(3, keys, min=True) is None
    assert client.zmpop(1, [empty], max=True, count=3) is None
    # The words are case-insensitive.
    assert client.zadd(first, {"lower": 1}) == 1
    assert zmpopped(client.execute_command("ZMPOP", "1", first, "min", "count", "3")) == (
        first, [("lower", 1.0)]
    )  # fmt: skip


def test_blocking_pops_answer_at_once_when_there_is_data(client):
    empty, scores, other = unique("empty"), unique("scores"), unique("other")
    assert client.zadd(scores, {"a": 1, "b": 2, "c": 3, "d": 4}) == 4
    assert client.zadd(other, {"o": 0.5}) == 1
    started = time.monotonic()
    # The first key in the given order that has elements, its name in the reply.
    assert popped(client.bzpopmin([empty, scores, other], timeout=5)) == (scores, "a", 1.0)
    assert popped(client.bzpopmax([empty, scores, other], timeout=5)) == (scores, "d", 4.0)
    assert popped(client.bzpopmin([empty, other, scores], timeout=5)) == (other, "o", 0.5)
    assert zmpopped(client.bzmpop(5, 2, [empty, scores], min=True, count=5)) == (
        scores, [("b", 2.0), ("c", 3.0)]
    )  # fmt: skip
    assert client.exists(scores, other) == 0
    # Timeout 0 (wait forever) answers at once too when there is something.
    assert client.zadd(scores, {"x": -1, "y": 1}) == 2
    assert popped(client.bzpopmax(scores, timeout=0)) == (scores, "y", 1.0)
    assert zmpopped(client.bzmpop(0, 1, [scores], max=True)) == (scores, [("x", -1.0)])
    assert time.monotonic() - started < 2.0, "a blocking pop with data waited"
    assert client.exists(scores) == 0


def test_blocking_pops_time_out_with_nil(client):
    first, second = unique("first"), unique("second")
    for call, timeout in [
        (lambda t: client.bzpopmin([first, second], timeout=t), 0.3),
        (lambda t: client.bzpopmax(first, timeout=t), 0.3),
        (lambda t: client.bzmpop(t, 2, [first, second], min=True), 0.3),
        (lambda t: client.bzmpop(t, 1, [second], max=True, count=4), 1),
    ]:
        started = time.monotonic()
        assert call(timeout) is None
        elapsed = time.monotonic() - started
        assert timeout <= elapsed < timeout + 2.0, f"timeout {timeout} took {elapsed:.2f} s"
    assert client.exists(first, second) == 0


def test_a_blocked_bzpopmin_is_woken_by_zadd_from_another_connection(redis_url, client):
    tasks, other = unique("tasks"), unique("other")
    waiter = Blocked(redis_url, lambda c: c.bzpopmin([other, tasks], timeout=30))
    time.sleep(HEAD_START_S)
    assert waiter.waiting(), "BZPOPMIN on empty keys answered at once"
    assert client.zadd(tasks, {"t2": 2, "t1": 1}) == 2
    assert popped(waiter.wait()) == (tasks, "t1", 1.0)
    assert pairs(client.zrange(tasks, 0, -1, withscores=True)) == [("t2", 2.0)]
    assert client.delete(tasks) == 1
    # BZPOPMAX and BZMPOP likewise; the reply names the key that was written.
    waiter = Blocked(redis_url, lambda c: c.bzpopmax([tasks, other], timeout=30))
    time.sleep(HEAD_START_S)
    assert client.zadd(other, {"low": 1, "high": 9}) == 2
    assert popped(waiter.wait()) == (other, "high", 9.0)
    waiter = Blocked(redis_url, lambda c: c.bzmpop(30, 2, [tasks, other], min=True, count=3))
    time.sleep(HEAD_START_S)
    # `other` still holds `low`: BZMPOP did not wait.
    assert zmpopped(waiter.wait()) == (other, [("low", 1.0)])
    waiter = Blocked(redis_url, lambda c: c.bzmpop(30, 2, [tasks, other], max=True, count=2))
    time.sleep(HEAD_START_S)
    assert waiter.waiting()
    assert client.zadd(tasks, {"a": 1, "b": 2, "c": 3}) == 3
    assert zmpopped(waiter.wait()) == (tasks, [("c", 3.0), ("b", 2.0)])
    assert client.zrange(tasks, 0, -1) == ["a"]
    assert client.delete(tasks) == 1


def test_blocked_zset_clients_are_served_in_the_order_they_blocked(redis_url, client):
    queue = unique("fair")
    first = Blocked(redis_url, lambda c: c.bzpopmin(queue, timeout=30))
    time.sleep(HEAD_START_S)
    second = Blocked(redis_url, lambda c: c.bzpopmin(queue, timeout=30))
    time.sleep(HEAD_START_S)
    assert first.waiting() and second.waiting()
    assert client.zadd(queue, {"a": 1}) == 1
    assert popped(first.wait()) == (queue, "a", 1.0)
    time.sleep(HEAD_START_S)
    assert second.waiting(), "one ZADD woke two clients"
    assert client.zadd(queue, {"b": 2}) == 1
    assert popped(second.wait()) == (queue, "b", 2.0)
    # One ZADD of two members serves both, the first blocked first, and leaves none.
    first = Blocked(redis_url, lambda c: c.bzpopmin(queue, timeout=30))
    time.sleep(HEAD_START_S)
    second = Blocked(redis_url, lambda c: c.bzmpop(30, 1, [queue], min=True, count=5))
    time.sleep(HEAD_START_S)
    assert client.zadd(queue, {"d": 4, "c": 3}) == 2
    assert popped(first.wait()) == (queue, "c", 3.0)
    assert zmpopped(second.wait()) == (queue, [("d", 4.0)])
    assert client.exists(queue) == 0
    # A ZADD of three members, three clients: each gets one, MIN and MAX as each asked.
    waiters = []
    for call in (
        lambda c: c.bzpopmax(queue, timeout=30),
        lambda c: c.bzpopmin(queue, timeout=30),
        lambda c: c.bzpopmax(queue, timeout=30),
    ):
        waiters.append(Blocked(redis_url, call))
        time.sleep(HEAD_START_S)
    assert client.zadd(queue, {"x": 1, "y": 2, "z": 3}) == 3
    results = [popped(waiter.wait()) for waiter in waiters]
    assert results == [(queue, "z", 3.0), (queue, "x", 1.0), (queue, "y", 2.0)]
    assert client.exists(queue) == 0


def test_rename_and_copy_onto_a_key_a_client_waits_on_wake_it(redis_url, client):
    staging, ready = unique("staging"), unique("ready")
    waiter = Blocked(redis_url, lambda c: c.bzpopmin(ready, timeout=30))
    time.sleep(HEAD_START_S)
    assert client.zadd(staging, {"m": 1, "n": 2}) == 2
    assert client.rename(staging, ready) is True
    assert popped(waiter.wait()) == (ready, "m", 1.0)
    assert client.zrange(ready, 0, -1) == ["n"]
    waiter = Blocked(redis_url, lambda c: c.bzpopmax(staging, timeout=30))
    time.sleep(HEAD_START_S)
    assert waiter.waiting()
    assert client.copy(ready, staging) is True
    assert popped(waiter.wait()) == (staging, "n", 2.0)
    assert client.zrange(ready, 0, -1) == ["n"]
    assert client.exists(staging) == 0
    assert client.delete(ready) == 1


def test_zset_pop_refusals(client):
    text, scores, missing = unique("text"), unique("scores"), unique("missing")
    assert client.set(text, "not a sorted set") is True
    assert client.zadd(scores, {"a": 1}) == 1
    for words in [
        ["ZMPOP", "1", text, "MIN"],
        ["ZMPOP", "2", missing, text, "MAX"],
        ["BZMPOP", "0.01", "1", text, "MIN"],
        ["BZPOPMIN", text, "0.01"],
        ["BZPOPMAX", missing, text, "0"],
    ]:
        assert refusal(lambda: client.execute_command(*words)) == WRONGTYPE, words
    # The first non-empty key answers before a key of the wrong kind is looked at.
    assert popped(client.execute_command("BZPOPMIN", scores, text, "0")) == (scores, "a", 1.0)
    assert client.zadd(scores, {"a": 1}) == 1
    for words, message in [
        (["BZPOPMIN", scores, "-1"], "ERR timeout is negative"),
        (["BZPOPMAX", scores, "-0.5"], "ERR timeout is negative"),
        (["BZMPOP", "-1", "1", scores, "MIN"], "ERR timeout is negative"),
        (["BZPOPMIN", scores, "soon"], "ERR timeout is not a float or out of range"),
        (["BZMPOP", "soon", "1", scores, "MIN"], "ERR timeout is not a float or out of range"),
        (["ZMPOP", "1", scores, "MIN", "COUNT", "0"], "ERR count should be greater than 0"),
        (["ZMPOP", "1", scores, "MAX", "COUNT", "-1"], "ERR count should be greater than 0"),
        (["ZMPOP", "1", scores, "MIN", "COUNT", "x"], "ERR count should be greater than 0"),
        (["BZMPOP", "0.01", "1", scores, "MIN", "COUNT", "0"],
         "ERR count should be greater than 0"),
        (["ZMPOP", "0", scores, "MIN"], "ERR numkeys should be greater than 0"),
        (["ZMPOP", "-1", scores, "MIN"], "ERR numkeys should be greater than 0"),
        (["ZMPOP", "x", scores, "MIN"], "ERR numkeys should be greater than 0"),
        (["BZMPOP", "0.01", "0", scores, "MIN"], "ERR numkeys should be greater than 0"),
        (["ZMPOP", "1", scores, "MIDDLE"], "ERR syntax error"),
        (["ZMPOP", "2", scores, "MIN"], "ERR syntax error"),
        (["ZMPOP", "1", scores, "MIN", "COUNT"], "ERR syntax error"),
        (["ZMPOP", "1", scores, "MIN", "COUNT", "1", "COUNT", "2"], "ERR syntax error"),
        (["ZMPOP", "1", scores], "ERR wrong number of arguments for 'zmpop' command"),
        (["BZPOPMIN", scores], "ERR wrong number of arguments for 'bzpopmin' command"),
    ]:  # fmt: skip
        assert refusal(lambda: client.execute_command(*words)) == message, words
    # Nothing refused took anything.
    assert client.zrange(scores, 0, -1) == ["a"]
    assert client.delete(text, scores) == 2


def test_blocking_zset_pops_inside_multi_answer_at_once(client):
    empty, scores = unique("empty"), unique("scores")
    started = time.monotonic()
    with client.pipeline(transaction=True) as pipe:
        pipe.bzpopmin(empty, timeout=0).bzpopmax([empty], timeout=0)
        pipe.bzmpop(0, 1, [empty], min=True)
        pipe.zadd(scores, {"a": 1, "b": 2, "c": 3})
        pipe.bzpopmin([empty, scores], timeout=0).bzpopmax(scores, timeout=0)
        pipe.bzmpop(0, 2, [empty, scores], max=True, count=5)
        pipe.zmpop(1, [scores], min=True)
        replies = pipe.execute()
    assert time.monotonic() - started < 2.0, "a blocking pop inside MULTI waited"
    assert replies[:4] == [None, None, None, 3]
    assert popped(replies[4]) == (scores, "a", 1.0)
    assert popped(replies[5]) == (scores, "c", 3.0)
    assert zmpopped(replies[6]) == (scores, [("b", 2.0)])
    assert replies[7] is None
    assert client.exists(scores) == 0


@pytest.mark.parametrize("protocol", [2, 3])
def test_zset_pop_replies_as_sent(redis_url, protocol):
    """ZMPOP and BZMPOP answer [key, [[member, score], ...]], the pairs nested in RESP2 too;
    BZPOPMIN/BZPOPMAX a flat [key, member, score]. A score is a bulk string in RESP2, a double
    in RESP3. Nothing to pop, or a timeout: a nil array in RESP2 (`*-1`), a null in RESP3;
    inside MULTI a blocking pop with nothing to pop answers that nil at once."""
    key, missing = unique("shapes"), unique("missing")
    resp3 = protocol == 3

    def bulk(text):
        return b"$%d\r\n%s\r\n" % (len(text), text.encode())

    def score(text):
        return b",%s\r\n" % text.encode() if resp3 else bulk(text)

    def mpop(*items):
        nested = b"".join(b"*2\r\n" + bulk(m) + score(s) for m, s in items)
        return b"*2\r\n" + bulk(key) + b"*%d\r\n" % len(items) + nested

    def bpop(member, text):
        return b"*3\r\n" + bulk(key) + bulk(member) + score(text)

    nil = b"_\r\n" if resp3 else b"*-1\r\n"
    expected = [
        (["ZADD", key, "1.5", "a", "2", "b", "3", "c", "inf", "d", "-0.25", "e"], b":5\r\n"),
        (["ZMPOP", "2", missing, key, "MIN"], mpop(("e", "-0.25"))),
        (["ZMPOP", "1", key, "MAX", "COUNT", "2"], mpop(("d", "inf"), ("c", "3"))),
        (["ZMPOP", "1", missing, "MIN"], nil),
        (["BZPOPMIN", missing, key, "0"], bpop("a", "1.5")),
        (["BZPOPMAX", key, "0.01"], bpop("b", "2")),
        (["BZPOPMIN", key, "0.01"], nil),
        (["BZPOPMAX", missing, "0.01"], nil),
        (["BZMPOP", "0.01", "1", missing, "MAX"], nil),
        (["ZADD", key, "4", "f", "5", "g"], b":2\r\n"),
        (["BZMPOP", "0", "2", missing, key, "MIN", "COUNT", "1"], mpop(("f", "4"))),
        (["MULTI"], b"+OK\r\n"),
        (["BZPOPMIN", missing, "0"], b"+QUEUED\r\n"),
        (["BZPOPMAX", missing, "0"], b"+QUEUED\r\n"),
        (["BZMPOP", "0", "1", missing, "MIN"], b"+QUEUED\r\n"),
        (["BZPOPMAX", key, "0"], b"+QUEUED\r\n"),
        (["EXEC"], b"*4\r\n" + nil + nil + nil + bpop("g", "5")),
        (["EXISTS", key], b":0\r\n"),
    ]
    replies = raw_replies(redis_url, protocol, [command for command, _ in expected])
    assert [(command, reply) for (command, _), reply in zip(expected, replies)] == expected


# -- 4. Lua cjson, cmsgpack and bit ------------------------------------------------------------


def test_cjson_encode_of_objects_and_arrays(client):
    # String keys: an object (its key order is not defined, so it is compared as a dict).
    encoded = client.eval(
        "return cjson.encode({name = ARGV[1], attempts = 3, delay = 0, lifo = false,"
        " progress = 2.5, ts = 1700000000123, neg = -7, tags = {'a', 'b'},"
        " opts = {backoff = {type = 'fixed', delay = 1000}}})",
        0,
        "send-email",
    )
    assert json.loads(encoded) == {
        "name": "send-email",
        "attempts": 3,
        "delay": 0,
        "lifo": False,
        "progress": 2.5,
        "ts": 1700000000123,
        "neg": -7,
        "tags": ["a", "b"],
        "opts": {"backoff": {"type": "fixed", "delay": 1000}},
    }
    # A sequence 1..n: an array, in order.
    assert client.eval("return cjson.encode({1, 2, 'three', true, 0.5})", 0) == (
        '[1,2,"three",true,0.5]'
    )
    assert client.eval("return cjson.encode({{1, 2}, {}, {x = 'y'}})", 0) == '[[1,2],{},{"x":"y"}]'
    # Scalars, and strings that need escaping.
    assert client.eval("return cjson.encode(42)", 0) == "42"
    assert client.eval("return cjson.encode(-0.125)", 0) == "-0.125"
    assert client.eval("return cjson.encode(true)", 0) == "true"
    assert client.eval("return cjson.encode(cjson.null)", 0) == "null"
    assert client.eval("return cjson.encode({a = cjson.null})", 0) == '{"a":null}'
    tricky = 'quote " backslash \\ newline \n tab \t unicode é'
    assert json.loads(client.eval("return cjson.encode(ARGV[1])", 0, tricky)) == tricky
    # An empty table encodes as an object.
    assert client.eval("return cjson.encode({})", 0) == "{}"


def test_cjson_decode_of_objects_and_arrays(client):
    data = {
        "name": "job",
        "n": 42,
        "ok": True,
        "off": False,
        "ratio": 2.5,
        "ts": 1700000000123,
        "list": [10, 20, 30],
        "nested": {"deep": {"deeper": "yes"}},
        "nothing": None,
    }
    body = """
        local t = cjson.decode(ARGV[1])
        return {t.name, t.n, tostring(t.ok), tostring(t.off), tostring(t.ratio), t.ts,
                #t.list, t.list[1], t.list[3], t.nested.deep.deeper, type(t.n),
                tostring(t.nothing == cjson.null), type(t.list), type(t.nested)}
    """
    assert client.eval(body, 0, json.dumps(data)) == [
        "job", 42, "true", "false", "2.5", 1700000000123, 3, 10, 30, "yes", "number", "true",
        "table", "table",
    ]  # fmt: skip
    # An array: a Lua sequence from index 1.
    body = "local t = cjson.decode(ARGV[1]); return {#t, t[1], t[2], t[3][1], t[4].k}"
    assert client.eval(body, 0, '[5, "six", [7], {"k": "v"}]') == [4, 5, "six", 7, "v"]
    # Scalars.
    assert client.eval("return cjson.decode(ARGV[1]) + 1", 0, "41") == 42
    assert client.eval("return tostring(cjson.decode(ARGV[1]))", 0, "-0.75") == "-0.75"
    assert client.eval("return cjson.decode(ARGV[1])", 0, '"text"') == "text"
    assert client.eval("return tostring(cjson.decode(ARGV[1]))", 0, "true") == "true"
    # Decoding and encoding again gives the same data back, in Python's eyes.
    again = client.eval("return cjson.encode(cjson.decode(ARGV[1]))", 0, json.dumps(data))
    assert json.loads(again) == data


def test_cjson_in_a_script_that_updates_job_data(client):
    """What a job queue's script does: read a job's JSON from a hash, change a field, write it
    back; the client reads it with its own JSON parser."""
    job = unique("job")
    assert client.hset(job, "data", json.dumps({"to": "a@example.com", "tries": 1})) == 1
    body = """
        local data = cjson.decode(redis.call('HGET', KEYS[1], 'data'))
        data.tries = data.tries + tonumber(ARGV[1])
        data.done = true
        data.steps = {'queued', 'sent'}
        redis.call('HSET', KEYS[1], 'data', cjson.encode(data))
        return data.tries
    """
    assert client.eval(body, 1, job, 2) == 3
    assert json.loads(client.hget(job, "data")) == {
        "to": "a@example.com",
        "tries": 3,
        "done": True,
        "steps": ["queued", "sent"],
    }
    assert client.delete(job) == 1


def test_cmsgpack_round_trip_inside_a_script(redis_url):
    client = redis.Redis.from_url(redis_url)  # bytes: packed data is not text
    try:
        body = """
            local packed = cmsgpack.pack({name = 'job', n = 42, neg = -3, big = 70000,
                ratio = 2.5, ok = true, off = false, list = {1, 2, 'three'},
                nested = {deep = 'yes'}})
            local t = cmsgpack.unpack(packed)
            return {type(packed), t.name, t.n, t.neg, t.big, tostring(t.ratio), tostring(t.ok),
                    tostring(t.off), #t.list, t.list[3], t.nested.deep}
        """
        assert client.eval(body, 0) == [
            b"string", b"job", 42, -3, 70000, b"2.5", b"true", b"false", 3, b"three", b"yes",
        ]  # fmt: skip
        # Values with one msgpack form: the bytes are exact.
        assert client.eval("return cmsgpack.pack({a = 1})", 0) == b"\x81\xa1a\x01"
        assert client.eval("return cmsgpack.pack({1, 2, 3})", 0) == b"\x93\x01\x02\x03"
        assert client.eval("return cmsgpack.pack(true, false, 'hi')", 0) == b"\xc3\xc2\xa2hi"
        assert client.eval("return cmsgpack.pack(-1, 127, 128, 65536)", 0) == (
            b"\xff\x7f\xcc\x80\xce\x00\x01\x00\x00"
        )
        # Several values packed together unpack as several values.
        body = "return {cmsgpack.unpack(cmsgpack.pack(1, 'two', 3))}"
        assert client.eval(body, 0) == [1, b"two", 3]
        # Bytes that are not text survive the trip.
        payload = bytes(range(256))
        body = "return cmsgpack.unpack(cmsgpack.pack(ARGV[1]))"
        assert client.eval(body, 0, payload) == payload
    finally:
        client.close()


def fixstr(text: str) -> bytes:
    data = text.encode()
    assert len(data) < 32
    return bytes([0xA0 | len(data)]) + data


def test_cmsgpack_unpack_of_bytes_packed_by_the_client(client):
    """As BullMQ's scripts read their options: `cmsgpack.unpack(ARGV[n])` of a map the client
    packed. The bytes are written here by hand."""
    # {"attempts": 3, "lifo": true, "delay": 0, "tags": ["a", "b"], "parent": nil}
    options = (
        b"\x85"  # fixmap, 5 entries
        + fixstr("attempts") + b"\x03"  # positive fixint
        + fixstr("lifo") + b"\xc3"  # true
        + fixstr("delay") + b"\x00"
        + fixstr("tags") + b"\x92" + fixstr("a") + fixstr("b")  # fixarray, 2
        + fixstr("parent") + b"\xc0"  # nil
    )  # fmt: skip
    body = """
        local o = cmsgpack.unpack(ARGV[1])
        return {o.attempts, tostring(o.lifo), o.delay, #o.tags, o.tags[2], tostring(o.parent),
                type(o.attempts)}
    """
    assert client.eval(body, 0, options) == [3, "true", 0, 2, "b", "nil", "number"]
    # Wider forms: uint16, negative fixint, float64, str8, false, a nested map.
    options = (
        b"\x85"
        + fixstr("delay") + b"\xcd\x13\x88"  # uint16 5000
        + fixstr("priority") + b"\xf6"  # negative fixint -10
        + fixstr("ratio") + b"\xcb\x40\x04\x00\x00\x00\x00\x00\x00"  # float64 2.5
        + fixstr("jobId") + b"\xd9\x03abc"  # str8
        + fixstr("backoff") + b"\x82" + fixstr("type") + fixstr("exponential")
        + fixstr("stop") + b"\xc2"  # false
    )  # fmt: skip
    body = """
        local o = cmsgpack.unpack(ARGV[1])
        return {o.delay, o.priority, tostring(o.ratio), o.jobId, o.backoff.type,
                tostring(o.backoff.stop)}
    """
    assert client.eval(body, 0, options) == [5000, -10, "2.5", "abc", "exponential", "false"]
    # A fixarray at the top, and scalars.
    body = "local t = cmsgpack.unpack(ARGV[1]); return {#t, t[1], t[2], tostring(t[3])}"
    assert client.eval(body, 0, b"\x93\x01" + fixstr("two") + b"\xc2") == [3, 1, "two", "false"]
    assert client.eval("return cmsgpack.unpack(ARGV[1])", 0, b"\x07") == 7
    assert client.eval("return tostring(cmsgpack.unpack(ARGV[1]))", 0, b"\xc0") == "nil"
    # Unpacked and encoded as JSON: the same data in Python's eyes.
    options = b"\x82" + fixstr("attempts") + b"\x03" + fixstr("lifo") + b"\xc3"
    encoded = client.eval("return cjson.encode(cmsgpack.unpack(ARGV[1]))", 0, options)
    assert json.loads(encoded) == {"attempts": 3, "lifo": True}


def test_bit_operations(client):
    body = """
        return {bit.band(12, 10), bit.bor(12, 10), bit.bxor(12, 10), bit.band(0xff, 0x0f, 0x3),
                bit.bor(1, 2, 4), bit.bxor(5, 5), bit.band(-1, 255)}
    """
    assert client.eval(body, 0) == [8, 14, 6, 3, 7, 0, 255]
    # 32-bit signed results.
    assert client.eval("return bit.bor(0x80000000, 0)", 0) == -2147483648
    assert client.eval("return {bit.bnot(0), bit.lshift(1, 4), bit.rshift(256, 4)}", 0) == [
        -1, 16, 16
    ]  # fmt: skip
    body = "return {bit.tohex(255), bit.tohex(255, 2), bit.tohex(-1), bit.tohex(65535, -4)}"
    assert client.eval(body, 0) == ["000000ff", "ff", "ffffffff", "FFFF"]


# -- 5. HRANDFIELD ------------------------------------------------------------------------------


def test_hrandfield_picks_fields_as_srandmember_picks_members(client, redis_url):
    key = unique("hrand")
    fields = {f"f{i}": f"v{i}" for i in range(5)}
    client.hset(key, mapping=fields)
    assert client.hrandfield(key) in fields
    distinct = client.hrandfield(key, 3)
    assert len(distinct) == 3 and len(set(distinct)) == 3 and set(distinct) <= set(fields)
    # More than there are: every field once.
    assert sorted(client.hrandfield(key, 10)) == sorted(fields)
    # Negative: exactly that many, repeats allowed.
    repeated = client.hrandfield(key, -12)
    assert len(repeated) == 12 and set(repeated) <= set(fields)
    # WITHVALUES: flat pairs in RESP2, each field with its own value.
    flat = client.hrandfield(key, -6, withvalues=True)
    assert len(flat) == 12
    assert all(fields[field] == value for field, value in zip(flat[::2], flat[1::2]))
    # Missing key: nil, or an empty array with a count; another kind refused.
    missing = unique("none")
    assert client.hrandfield(missing) is None
    assert client.hrandfield(missing, 3) == []
    assert client.execute_command("HRANDFIELD", key, 0) == []
    other = unique("string")
    client.set(other, "x")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        client.hrandfield(other)
    with pytest.raises(redis.ResponseError, match="syntax error"):
        client.execute_command("HRANDFIELD", key, 2, "WITHSCORES")
    with pytest.raises(redis.ResponseError, match="not an integer"):
        client.execute_command("HRANDFIELD", key, "x")
    # RESP3: WITHVALUES answers [field, value] pairs.
    single = unique("one")
    client.hset(single, "only", "value")
    replies = raw_replies(
        redis_url,
        3,
        [["HRANDFIELD", single, "1", "WITHVALUES"], ["HRANDFIELD", single, "-2"]],
    )
    assert replies == [
        b"*1\r\n*2\r\n$4\r\nonly\r\n$5\r\nvalue\r\n",
        b"*2\r\n$4\r\nonly\r\n$4\r\nonly\r\n",
    ]
    replies = raw_replies(redis_url, 2, [["HRANDFIELD", single, "1", "WITHVALUES"]])
    assert replies == [b"*2\r\n$4\r\nonly\r\n$5\r\nvalue\r\n"]
    client.delete(key, other, single)


# -- after a restart (last: it restarts the module's broker) -----------------------------------


def test_renamed_and_copied_keys_survive_kill_9(broker, redis_url):
    """What RENAME, RENAMENX and COPY acknowledged is there after kill -9 and a restart, and
    the names they moved away from stay gone."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    names = {kind: tuple(unique(f"{kind}-{n}") for n in "abc") for kind in KINDS}
    for kind, (first, second, third) in names.items():
        store(client, kind, first)
        assert client.rename(first, second) is True
        assert client.copy(second, third) is True
    # A TTL moved by RENAME, one copied by COPY; a replaced destination; a RENAMENX refused.
    timed, timed_moved, timed_copy = unique("timed"), unique("timed-moved"), unique("timed-copy")
    assert client.set(timed, "t", ex=1000) is True
    assert client.rename(timed, timed_moved) is True
    assert client.copy(timed_moved, timed_copy) is True
    replaced, refused = unique("replaced"), unique("refused")
    assert client.set(replaced, "old") is True
    assert client.rename(names["hash"][2], replaced) is True
    assert client.set(refused, "stays") is True
    assert client.renamenx(refused, replaced) is False
    copied_over = unique("copied-over")
    assert client.rpush(copied_over, "old") == 1
    assert client.copy(names["set"][1], copied_over, replace=True) is True
    client.close()

    broker.restart()
    client = redis.Redis.from_url(broker.redis_url, decode_responses=True)
    try:
        for kind, (first, second, third) in names.items():
            assert client.exists(first) == 0, kind
            assert client.type(second) == kind
            assert fetch(client, kind, second) == STORED[kind]
            if kind != "hash":
                assert fetch(client, kind, third) == STORED[kind]
        assert client.exists(names["hash"][2], timed) == 0
        assert client.hgetall(replaced) == STORED["hash"]
        assert client.get(refused) == "stays"
        assert client.smembers(copied_over) == STORED["set"]
        assert client.get(timed_moved) == client.get(timed_copy) == "t"
        assert 0 < client.ttl(timed_moved) <= 1000
        assert 0 < client.ttl(timed_copy) <= 1000
        assert client.ttl(names["zset"][1]) == -1
        # Still working keys.
        assert client.rename(timed_copy, timed) is True
        assert client.get(timed) == "t"
    finally:
        client.close()
