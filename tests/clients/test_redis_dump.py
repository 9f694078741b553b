"""DUMP and RESTORE between redis-server (Debian's 7.0) and the Redis door, both ways: every
kind of value in every encoding redis-server writes for it (small ones as listpacks and
intsets, big ones as hash tables and skip lists, long strings LZF-compressed, a list of many
nodes), dumped on one side, restored on the other and read back the same; MIGRATE run on
redis-server copying keys into Omnibus over TCP; and RESTORE's errors in redis-server's
words (the same damaged payload, BUSYKEY, a bad TTL). The payloads are compared as values,
not bytes: Omnibus writes the plain encodings, redis-server its compact ones."""

from __future__ import annotations

import pytest

from harness import HOST, port_of
from test_redis_differential import _connect_omnibus, _connect_peer, redis_server  # noqa: F401

# Each key with the commands that make it, so both servers hold the same values.
VALUES = {
    "str": [["SET", "str", "hello"]],
    "int": [["SET", "int", "-12345678"]],
    "long": [["SET", "long", "abc" * 1000]],
    "binary": [["SET", "binary", bytes(range(256))]],
    "list": [["RPUSH", "list", "a", "b", "-70000", "300", "x" * 5000]],
    "biglist": [["RPUSH", "biglist", *[f"item-{n}" for n in range(3000)]]],
    "intset": [["SADD", "intset", "1", "-2", "300000", "9223372036854775807"]],
    "set": [["SADD", "set", "apple", "banana"]],
    "bigset": [["SADD", "bigset", *[f"m{n}" for n in range(700)]]],
    "hash": [["HSET", "hash", "f", "v", "n", "12"]],
    "bighash": [["HSET", "bighash", *[w for n in range(700) for w in (f"f{n}", f"v{n}")]]],
    "zset": [["ZADD", "zset", "1.5", "m", "-2", "n", "inf", "top"]],
    "bigzset": [["ZADD", "bigzset", *[w for n in range(300) for w in (str(n * 0.25), f"z{n}")]]],
}


def read(connection, key: str):
    """The key's value in a form that does not depend on the encoding."""
    kind = connection.send("TYPE", key)[1]
    if kind == "string":
        return kind, connection.send("GET", key)
    if kind == "list":
        return kind, connection.send("LRANGE", key, "0", "-1")
    if kind == "set":
        return kind, sorted(connection.send("SMEMBERS", key))
    if kind == "hash":
        flat = connection.send("HGETALL", key)
        return kind, dict(zip(flat[0::2], flat[1::2]))
    if kind == "zset":
        return kind, connection.send("ZRANGE", key, "0", "-1", "WITHSCORES")
    return kind, None


@pytest.fixture
def both(redis_server, redis_url):  # noqa: F811
    peer, omnibus = _connect_peer(redis_server), _connect_omnibus(redis_url)
    for connection in (peer, omnibus):
        connection.send("DEL", *VALUES, *[f"{k}:copy" for k in VALUES], "migrated", "gone")
        for commands in VALUES.values():
            for command in commands:
                connection.send(*command)
    yield peer, omnibus
    peer.sock.close()
    omnibus.sock.close()


def test_redis_server_payloads_restore_here(both):
    peer, omnibus = both
    for key in VALUES:
        payload = peer.send("DUMP", key)
        assert omnibus.send("RESTORE", f"{key}:copy", "0", payload) == ("status", "OK"), key
        assert read(omnibus, f"{key}:copy") == read(peer, key), key


def test_payloads_written_here_restore_on_redis_server(both):
    peer, omnibus = both
    for key in VALUES:
        payload = omnibus.send("DUMP", key)
        assert peer.send("RESTORE", f"{key}:copy", "0", payload) == ("status", "OK"), key
        assert read(peer, f"{key}:copy") == read(omnibus, key), key
        # And back: what redis-server wrote of it restores here again.
        again = peer.send("DUMP", f"{key}:copy")
        assert omnibus.send("RESTORE", f"{key}:copy", "0", again, "REPLACE") == ("status", "OK")
        assert read(omnibus, f"{key}:copy") == read(omnibus, key), key


def test_migrate_on_redis_server_copies_keys_here(both, redis_url):
    peer, omnibus = both
    port = port_of(redis_url.split("://", 1)[1].split("/", 1)[0])
    peer.send("SET", "migrated", "moved over")
    peer.send("PEXPIRE", "migrated", "600000")
    answer = peer.send("MIGRATE", HOST, str(port), "", "0", "5000", "COPY", "REPLACE", "KEYS", "migrated", "hash", "bigzset")
    assert answer == ("status", "OK")
    assert omnibus.send("GET", "migrated") == b"moved over"
    assert 0 < omnibus.send("PTTL", "migrated") <= 600_000
    for key in ("hash", "bigzset"):
        assert read(omnibus, key) == read(peer, key)


def test_restore_errors_are_redis_servers(both):
    peer, omnibus = both
    payload = peer.send("DUMP", "str")
    damaged = payload[:-1] + bytes([payload[-1] ^ 1])
    calls = [
        ["RESTORE", "str", "0", payload],
        ["RESTORE", "gone", "0", damaged],
        ["RESTORE", "gone", "-5", payload],
        ["RESTORE", "gone", "x", payload],
        ["RESTORE", "gone", "0", payload, "FREQ", "300"],
        ["RESTORE", "gone", "0", payload, "IDLETIME", "-1"],
        ["RESTORE", "gone", "0", payload, "BOGUS"],
        ["RESTORE", "gone", "0", b"short"],
        ["RESTORE", "gone", "1", payload, "ABSTTL"],
        ["EXISTS", "gone"],
        ["RESTORE", "str", "0", peer.send("DUMP", "list"), "REPLACE", "IDLETIME", "10"],
        ["TYPE", "str"],
        ["DUMP", "nosuchkey"],
        # What a cluster node's MIGRATE sends: RESTORE on a server without cluster mode.
        ["RESTORE-ASKING", "asked", "0", payload],
        ["GET", "asked"],
        ["RESTORE-ASKING", "asked", "0", payload],
        ["DEL", "asked"],
    ]
    for call in calls:
        assert omnibus.send(*call) == peer.send(*call), call
