"""MIGRATE run on Omnibus: keys moved out to Debian's redis-server as redis-server moves them
(each key's DUMP sent as RESTORE, then deleted here), through redis-py: every kind of key
with its TTL read back the same there and gone here; COPY and REPLACE; the KEYS form;
`NOKEY`; AUTH and AUTH2 against a redis-server with a password; the target's refusals
(BUSYKEY, a payload it cannot read: a hash with field deadlines is RDB 12, which
redis-server 7.0 refuses) passed on in redis-server's words, the keys it took moved anyway;
the IOERRs; a stream key with its consumer groups, pending entries and TTL; and the `del`
events of the keys moved."""

from __future__ import annotations

import time

import pytest
import redis

from harness import HOST, unique
from redis_peer import free_port, tcp_redis_server

PASSWORD = "s3cret"


@pytest.fixture(scope="module")
def target():
    """Debian's redis-server on a loopback port with a password, no persistence."""
    with tcp_redis_server(PASSWORD) as server:
        yield server


@pytest.fixture
def source(redis_url):
    connection = redis.Redis.from_url(redis_url)
    yield connection
    connection.close()


def migrate(source, port, *words):
    return source.execute_command("MIGRATE", HOST, port, *words)


def test_every_kind_moves_with_its_ttl(source, target):
    port, peer = target
    keys = {kind: unique(kind) for kind in ("string", "list", "hash", "set", "zset")}
    source.set(keys["string"], "text", px=600_000)
    source.rpush(keys["list"], "a", "b", "a")
    source.hset(keys["hash"], mapping={"f": "1", "g": "2"})
    source.sadd(keys["set"], "x", "y")
    source.zadd(keys["zset"], {"m": 1.5, "n": -2})
    assert migrate(source, port, keys["string"], 0, 5000, "AUTH", PASSWORD) == b"OK"
    answer = migrate(source, port, "", 0, 5000, "AUTH2", "default", PASSWORD, "KEYS",
                     keys["list"], keys["hash"], unique("missing"), keys["set"], keys["zset"])
    assert answer == b"OK"
    # There, the same; here, gone.
    assert peer.get(keys["string"]) == b"text"
    assert 590_000 < peer.pttl(keys["string"]) <= 600_000
    assert peer.lrange(keys["list"], 0, -1) == [b"a", b"b", b"a"]
    assert peer.hgetall(keys["hash"]) == {b"f": b"1", b"g": b"2"}
    assert peer.smembers(keys["set"]) == {b"x", b"y"}
    assert peer.zrange(keys["zset"], 0, -1, withscores=True) == [(b"n", -2.0), (b"m", 1.5)]
    assert source.exists(*keys.values()) == 0
    # Nothing left to move.
    assert migrate(source, port, keys["string"], 0, 5000, "AUTH", PASSWORD) == b"NOKEY"
    peer.delete(*keys.values())


def test_copy_replace_and_the_target_s_refusals(source, target):
    port, peer = target
    key, other = unique("kept"), unique("other")
    source.set(key, "here")
    peer.set(key, "there")
    # The target refuses a key it has: its words, passed on; the key stays here.
    with pytest.raises(redis.ResponseError) as refused:
        migrate(source, port, key, 0, 5000, "AUTH", PASSWORD)
    assert str(refused.value) == (
        "Target instance replied with error: BUSYKEY Target key name already exists."
    )
    assert source.get(key) == b"here"
    # COPY REPLACE: over it there, and still here.
    assert migrate(source, port, key, 0, 5000, "COPY", "REPLACE", "AUTH", PASSWORD) == b"OK"
    assert peer.get(key) == b"here" and source.get(key) == b"here"
    # A refusal of one key does not stop the others: the one it took is moved.
    source.set(other, "moves")
    with pytest.raises(redis.ResponseError, match="BUSYKEY"):
        migrate(source, port, "", 0, 5000, "AUTH", PASSWORD, "KEYS", key, other)
    assert peer.get(other) == b"moves" and source.exists(other) == 0
    assert source.get(key) == b"here"
    # A hash with a field deadline is written as Redis 7.4 writes it (RDB 12), which this
    # redis-server (7.0) refuses as its own RESTORE would: passed on, the key kept here.
    expiring = unique("expiring-fields")
    source.hset(expiring, mapping={"f": "1"})
    source.hexpire(expiring, 100, "f")
    with pytest.raises(redis.ResponseError) as refused:
        migrate(source, port, expiring, 0, 5000, "AUTH", PASSWORD)
    assert str(refused.value) == (
        "Target instance replied with error: ERR DUMP payload version or checksum are wrong"
    )
    assert source.httl(expiring, "f") == [100]
    # A wrong password: nothing moved.
    with pytest.raises(redis.ResponseError, match="^Target instance replied with error: WRONGPASS"):
        migrate(source, port, key, 0, 5000, "AUTH", "wrong")
    assert source.get(key) == b"here"
    source.delete(key, expiring)
    peer.delete(key, other)


def test_refusals_in_redis_server_s_words(source, target):
    port, _ = target
    key = unique("refused")
    source.set(key, "v")

    def refused(*words):
        with pytest.raises(redis.ResponseError) as raised:
            source.execute_command("MIGRATE", *words)
        return str(raised.value)

    assert refused(HOST, port, key, 0, 5000, "KEYS", key) == (
        "When using MIGRATE KEYS option, the key argument must be set to the empty string"
    )
    assert refused(HOST, port, key, 0, "soon") == "value is not an integer or out of range"
    assert refused(HOST, port, key, "zero", 5000) == "value is not an integer or out of range"
    assert refused(HOST, port, key, 0, 5000, "AUTH") == "syntax error"
    assert refused(HOST, port, key, 0, 5000, "FAST") == "syntax error"
    assert refused(HOST, port, key) == "wrong number of arguments for 'migrate' command"
    # Nothing listening: redis-server finds out when it writes; a name that does not
    # resolve is "connecting".
    closed = free_port()
    assert refused(HOST, closed, key, 0, 1000) == (
        "IOERR error or timeout writing to target instance"
    )
    assert refused("nowhere.invalid", 6379, key, 0, 1000) == (
        "IOERR error or timeout connecting to the client"
    )
    assert source.get(key) == b"v"
    source.delete(key)


def test_a_stream_moves_with_its_groups_and_its_ttl(source, target):
    port, peer = target
    stream, kept = unique("stream"), unique("stream")
    for n in range(1, 121):
        source.xadd(stream, {"n": n}, id=f"{n}-1")
    source.xgroup_create(stream, "g", id="0")
    source.xreadgroup("g", "alice", {stream: ">"}, count=3)
    source.xack(stream, "g", "1-1")
    source.xgroup_createconsumer(stream, "g", "bob")
    source.pexpire(stream, 600_000)
    source.xadd(kept, {"a": "1"}, id="5-5")
    pending_here = source.xpending_range(stream, "g", "-", "+", 10)
    assert migrate(source, port, "", 0, 5000, "AUTH", PASSWORD, "KEYS", stream) == b"OK"
    assert source.exists(stream) == 0
    assert peer.xlen(stream) == 120
    assert peer.xrange(stream, count=1)[0] == (b"1-1", {b"n": b"1"})
    assert 0 < peer.pttl(stream) <= 600_000
    group = peer.xinfo_groups(stream)[0]
    assert (group["name"], group["pending"], group["last-delivered-id"]) == (b"g", 2, b"3-1")
    assert sorted(c["name"] for c in peer.xinfo_consumers(stream, "g")) == [b"alice", b"bob"]
    pending_there = peer.xpending_range(stream, "g", "-", "+", 10)
    assert [(p["message_id"], p["consumer"], p["times_delivered"]) for p in pending_there] == [
        (p["message_id"], p["consumer"], p["times_delivered"]) for p in pending_here
    ]
    assert peer.xreadgroup("g", "bob", {stream: ">"}, count=1)[0][1][0][0] == b"4-1"
    # COPY leaves it here; REPLACE overwrites the copy there.
    assert migrate(source, port, kept, 0, 5000, "COPY", "AUTH", PASSWORD) == b"OK"
    source.xadd(kept, {"a": "2"}, id="6-0")
    assert migrate(source, port, kept, 0, 5000, "REPLACE", "AUTH", PASSWORD) == b"OK"
    assert peer.xlen(kept) == 2 and source.exists(kept) == 0
    peer.delete(stream, kept)


def test_moved_keys_send_del_events(source, target, redis_url):
    port, peer = target
    key = unique("evented")
    source.set(key, "v")
    source.config_set("notify-keyspace-events", "Kg")
    listener = redis.Redis.from_url(redis_url)
    subscription = listener.pubsub()
    subscription.subscribe(f"__keyspace@0__:{key}")
    try:
        subscription.get_message(timeout=2)
        assert migrate(source, port, key, 0, 5000, "AUTH", PASSWORD) == b"OK"
        message = None
        deadline = time.monotonic() + 5
        while message is None and time.monotonic() < deadline:
            message = subscription.get_message(timeout=0.5)
        assert message is not None and message["data"] == b"del"
    finally:
        source.config_set("notify-keyspace-events", "")
        subscription.close()
        listener.close()
        peer.delete(key)
