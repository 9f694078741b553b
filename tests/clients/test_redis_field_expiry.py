"""Hash field expiry (Redis 7.4's HEXPIRE family) through redis-py 8's own methods, as an
application uses it: a session hash whose fields expire one by one (`hexpire`, `httl`,
`hpexpire`, `hexpireat`, `hexpiretime`, `hpersist`, with NX/XX/GT/LT), the key going with its
last field; in MULTI/EXEC and Lua; every refusal in redis-server's words; the keyspace events
(`hexpire`, `hdel`, `hpersist`, `hexpired`, `del`) in redis-server's order; INFO
`expired_subkeys`; redis-py's client-side cache invalidated when a field expires; DUMP and
RESTORE keeping field deadlines (and a payload redis-server 7.4 made); field deadlines kept
across kill -9.

Debian's redis-server is 7.0, without field expiry, so these are not differential tests: the
expected answers were checked against a redis-server 7.4.1 built from its source, by running
this file with `REDIS_FIELD_EXPIRY_PEER=redis://127.0.0.1:PORT` (every test but the kill -9
one then talks to that server instead of Omnibus)."""

from __future__ import annotations

import os
import time

import pytest
import redis
from redis.cache import CacheConfig

from harness import unique, wait_until

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
PEER = os.environ.get("REDIS_FIELD_EXPIRY_PEER")


@pytest.fixture
def url(request) -> str:
    """Omnibus's Redis door, or the peer named by REDIS_FIELD_EXPIRY_PEER."""
    if PEER:
        return PEER
    return request.getfixturevalue("redis_url")


@pytest.fixture
def client(url):
    connection = redis.Redis.from_url(url, decode_responses=True)
    yield connection
    connection.close()


def test_a_session_whose_fields_expire_one_by_one(client):
    key = unique("session")
    client.hset(key, mapping={"user": "ada", "csrf": "t0k3n", "cart": "3 items"})
    # The CSRF token lives 100 ms, the cart 100 s; the user field has no deadline.
    assert client.hpexpire(key, 100, "csrf") == [1]
    assert client.hexpire(key, 100, "cart", "nothing") == [1, -2]
    assert client.httl(key, "user", "cart", "nothing") == [-1, 100, -2]
    assert 0 < client.hpttl(key, "csrf")[0] <= 100
    assert client.hget(key, "csrf") == "t0k3n"
    wait_until(lambda: client.hget(key, "csrf") is None, 5, "the token to expire")
    assert client.hgetall(key) == {"user": "ada", "cart": "3 items"}
    assert client.hlen(key) == 2
    assert client.hexists(key, "csrf") is False
    assert client.httl(key, "csrf") == [-2]
    # Setting a field again clears its deadline; HINCRBY keeps it.
    assert client.hset(key, "cart", "4 items") == 0
    assert client.httl(key, "cart") == [-1]
    client.hset(key, "visits", 1)
    assert client.hexpire(key, 50, "visits") == [1]
    assert client.hincrby(key, "visits", 1) == 2
    assert client.httl(key, "visits") == [50]
    # Absolute deadlines, read back in seconds and milliseconds.
    at = int(time.time()) + 3600
    assert client.hexpireat(key, at, "user") == [1]
    assert client.hexpiretime(key, "user") == [at]
    assert client.hpexpiretime(key, "user") == [at * 1000]
    assert client.hpexpireat(key, at * 1000 + 500, "user") == [1]
    assert client.hexpiretime(key, "user") == [at + 1]
    # HPERSIST: cleared, nothing to clear, no such field.
    assert client.hpersist(key, "user", "cart", "nothing") == [1, -1, -2]
    # A deadline already past deletes the field (2); the last field takes the key with it.
    assert client.hexpire(key, 0, "visits", "visits") == [2, -2]
    assert client.hpexpire(key, 50, "user", "cart") == [1, 1]
    wait_until(lambda: client.exists(key) == 0, 5, "the hash to go with its last field")
    assert client.hexpire(key, 10, "user") == [-2]
    assert client.httl(key, "user") == [-2]
    assert client.hpersist(key, "user") == [-2]


def test_conditions(client):
    key = unique("conditions")
    client.hset(key, mapping={"a": "1", "b": "2"})
    # XX and GT need a deadline; NX and LT take a field without one.
    assert client.hexpire(key, 100, "a", xx=True) == [0]
    assert client.hexpire(key, 100, "a", gt=True) == [0]
    assert client.hexpire(key, 100, "a", nx=True) == [1]
    assert client.hexpire(key, 100, "b", lt=True) == [1]
    assert client.hexpire(key, 200, "a", nx=True) == [0]
    assert client.hexpire(key, 200, "a", "b", gt=True) == [1, 1]
    assert client.hexpire(key, 300, "a", lt=True) == [0]
    assert client.hexpire(key, 150, "a", xx=True) == [1]
    assert client.httl(key, "a", "b") == [150, 200]
    # INFO keyspace counts the hashes with field deadlines (Redis 7.4's `subexpiry`).
    assert client.info("keyspace")["db0"]["subexpiry"] >= 1


def test_in_transactions_and_scripts(client):
    key = unique("atomic")
    client.hset(key, mapping={"a": "1", "b": "2"})
    with client.pipeline(transaction=True) as pipeline:
        pipeline.hexpire(key, 100, "a")
        pipeline.httl(key, "a", "b")
        pipeline.hpersist(key, "a")
        assert pipeline.execute() == [[1], [100, -1], [1]]
    script = "redis.call('HPEXPIRE', KEYS[1], 60000, 'FIELDS', 1, 'b') " \
        "return redis.call('HPTTL', KEYS[1], 'FIELDS', 2, 'a', 'b')"
    ttls = client.eval(script, 1, key)
    assert ttls[0] == -1 and 59000 < ttls[1] <= 60000


def test_refusals_in_redis_server_s_words(client):
    key, text = unique("refused"), unique("text")
    client.hset(key, "a", "1")
    client.set(text, "v")

    def refused(*words):
        with pytest.raises(redis.ResponseError) as raised:
            client.execute_command(*words)
        return str(raised.value)

    # The key's type is looked at before anything else.
    assert refused("HEXPIRE", text, "x", "FIELDS", "1", "a") == WRONGTYPE
    assert refused("HTTL", text, "NOTFIELDS", "1", "a") == WRONGTYPE
    assert refused("HEXPIRE", key, "x", "FIELDS", "1", "a") == (
        "value is not an integer or out of range"
    )
    assert refused("HEXPIRE", key, "-1", "FIELDS", "1", "a") == (
        "invalid expire time, must be >= 0"
    )
    assert refused("HEXPIRE", key, "70368744177664", "FIELDS", "1", "a") == (
        "invalid expire time in 'hexpire' command"
    )
    assert refused("HPEXPIREAT", key, "70368744177664", "FIELDS", "1", "a") == (
        "invalid expire time in 'hpexpireat' command"
    )
    assert refused("HEXPIRE", key, "10", "FIELD", "1", "a") == (
        "Mandatory argument FIELDS is missing or not at the right position"
    )
    assert refused("HEXPIRE", key, "10", "NX", "XX", "FIELDS", "1", "a") == (
        "Mandatory argument FIELDS is missing or not at the right position"
    )
    assert refused("HEXPIRE", key, "10", "FIELDS", "0", "a") == (
        "Parameter `numFields` should be greater than 0"
    )
    assert refused("HEXPIRE", key, "10", "FIELDS", "2", "a") == (
        "The `numfields` parameter must match the number of arguments"
    )
    assert refused("HTTL", key, "FIELDS", "x", "a") == (
        "Number of fields must be a positive integer"
    )
    assert refused("HPERSIST", key, "FIELDS", "3", "a", "b") == (
        "The `numfields` parameter must match the number of arguments"
    )
    assert refused("HEXPIRE", key, "10", "FIELDS") == (
        "wrong number of arguments for 'hexpire' command"
    )
    # The latest deadline a field may have is taken.
    assert client.execute_command("HPEXPIREAT", key, "70368744177663", "FIELDS", "1", "a") == [1]
    assert client.hpexpiretime(key, "a") == [70368744177663]


def test_keyspace_events_in_redis_server_s_order(client, url):
    key, other = unique("events"), unique("events-other")
    client.config_set("notify-keyspace-events", "Kh$g")
    listener = redis.Redis.from_url(url, decode_responses=True)
    subscription = listener.pubsub()
    subscription.subscribe(f"__keyspace@0__:{key}", f"__keyspace@0__:{other}")
    try:
        for _ in range(2):
            subscription.get_message(timeout=2)
        client.hset(key, mapping={"a": "1", "b": "2", "c": "3"})
        client.hexpire(key, 100, "a", "nothing")
        client.hexpire(key, 0, "a", "b")  # Past: deleted, `hdel`.
        client.hexpire(key, 100, "nothing")  # Nothing changed: no event.
        client.hpexpire(key, 100, "c")
        client.hpersist(key, "c")
        client.hpersist(key, "c")  # No deadline to clear: no event.
        client.hset(other, mapping={"x": "1", "y": "2"})
        client.hpexpire(other, 50, "x")
        client.hpexpire(key, 50, "c")
        wait_until(lambda: client.exists(key) == 0, 5, "the hash to expire")
        wait_until(lambda: client.hlen(other) == 1, 5, "the field to expire")
        events = []
        while (message := subscription.get_message(timeout=0.5)) is not None:
            events.append((message["channel"].split(":", 1)[1], message["data"]))
        expected = [
            (key, "hset"),
            (key, "hexpire"),
            (key, "hdel"),
            (key, "hexpire"),
            (key, "hpersist"),
            (other, "hset"),
            (other, "hexpire"),
            (key, "hexpire"),
        ]
        assert events[: len(expected)] == expected
        # The two expiries, in whichever order the server reached them.
        assert sorted(events[len(expected) :]) == sorted(
            [(key, "hexpired"), (key, "del"), (other, "hexpired")]
        )
        assert events.index((key, "hexpired")) < events.index((key, "del"))
    finally:
        client.config_set("notify-keyspace-events", "")
        subscription.close()
        listener.close()


def test_expired_subkeys_are_counted(client):
    key = unique("counted")
    client.config_resetstat()
    client.hset(key, mapping={"a": "1", "b": "2", "c": "3"})
    client.hexpire(key, 0, "a")  # Deleted at once: counted too.
    client.hpexpire(key, 30, "b", "c")
    wait_until(lambda: client.exists(key) == 0, 5, "the fields to expire")
    assert client.info("stats")["expired_subkeys"] == 3


def test_a_cached_field_is_invalidated_when_it_expires(url):
    cached = redis.Redis.from_url(url, protocol=3, cache_config=CacheConfig())
    try:
        key = unique("cached-hash")
        cached.hset(key, mapping={"token": "t", "name": "n"})
        cached.hpexpire(key, 200, "token")
        assert cached.hget(key, "token") == "t".encode()
        # Served from the cache until the field expires; then the invalidation sends the
        # next read to the server.
        wait_until(lambda: cached.hget(key, "token") is None, 5, "the cached field to go")
        assert cached.hget(key, "name") == b"n"
    finally:
        cached.close()


# redis-server 7.4.1's DUMP of a hash {a: 1, b: 2, c: 3} whose a and c expire in 2100
# (HPEXPIREAT 4102444800000 and 4102444800123).
REDIS_7_4_DUMP = bytes.fromhex(
    "1900d8c32cbb0300002c2c00000009008161020101f400d8c32cbb030000098163020301f47bd8c32cbb03"
    "00000981620202010001ff0c00e5110c228b5517e6"
)


def test_dump_and_restore_keep_field_deadlines(client):
    key, copy, migrated = unique("dumped"), unique("restored"), unique("from-7.4")
    client.hset(key, mapping={"a": "1", "b": "2"})
    assert client.hexpire(key, 1000, "a") == [1]
    deadline = client.hpexpiretime(key, "a")[0]
    assert client.restore(copy, 0, client.dump(key)) == "OK"
    assert client.hpexpiretime(copy, "a", "b") == [deadline, -1]
    assert client.hgetall(copy) == {"a": "1", "b": "2"}
    # A payload made by redis-server 7.4, as MIGRATE or a RESTORE script would bring it.
    assert client.restore(migrated, 0, REDIS_7_4_DUMP) == "OK"
    assert client.hpexpiretime(migrated, "a", "b", "c") == [4102444800000, -1, 4102444800123]
    assert client.hmget(migrated, ["a", "b", "c"]) == ["1", "2", "3"]


@pytest.mark.skipif(PEER is not None, reason="kills Omnibus")
def test_field_deadlines_survive_kill_9(broker, redis_url):
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    key = unique("durable-fields")
    client.hset(key, mapping={"long": "1", "short": "2", "none": "3", "cleared": "4"})
    at = int(time.time()) + 3600
    assert client.hexpireat(key, at, "long", "cleared") == [1, 1]
    assert client.hpexpire(key, 1500, "short") == [1]
    assert client.hpersist(key, "cleared") == [1]
    client.close()
    broker.restart()
    client = redis.Redis.from_url(broker.redis_url, decode_responses=True)
    try:
        assert client.hexpiretime(key, "long", "none", "cleared") == [at, -1, -1]
        # The short one still expires, whether its deadline passed during the restart or
        # after it.
        wait_until(lambda: client.hexists(key, "short") is False, 10, "the short field to go")
        assert client.hgetall(key) == {"long": "1", "none": "3", "cleared": "4"}
    finally:
        client.close()
