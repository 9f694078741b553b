"""DUMP, RESTORE and MIGRATE of stream keys between redis-server (Debian's 7.0) and the Redis
door, through redis-py: a stream of several hundred entries in many listpack nodes, with
entries of other fields, an XDEL'd entry, a last ID set past the newest entry, and two
consumer groups — one with consumers holding pending entries (delivery times and counts,
one claimed again with RETRYCOUNT), one with a consumer and nothing pending. Dumped on one
side and restored on the other, the stream reads back the same: its entries, its IDs, each
group's last delivered ID and its pending entries with their owners, delivery times and
counts, and the next `>` read of each group hands out the same entries. redis-server's
MIGRATE moves such a stream here; RESTORE's refusals and REPLACE/TTL are redis-server's; a
restored stream with its groups and TTL is all there after kill -9."""

from __future__ import annotations

import time

import pytest
import redis

from harness import HOST, port_of, unique
from test_redis_differential import redis_server  # noqa: F401


@pytest.fixture
def peer(redis_server):  # noqa: F811
    connection = redis.Redis(unix_socket_path=str(redis_server))
    yield connection
    connection.close()


@pytest.fixture
def here(redis_url):
    connection = redis.Redis.from_url(redis_url)
    yield connection
    connection.close()


def build(client, key: str):
    """The same stream on either server: 300 entries (three listpack nodes on redis-server),
    some with other fields, one XDEL'd, a last ID past the newest, two groups."""
    pipe = client.pipeline(transaction=False)
    for n in range(300):
        fields = {"n": n, "kind": "even" if n % 2 == 0 else "odd"}
        if n % 50 == 7:
            fields = {"other": "x" * (n % 13), "big": "y" * 300}
        pipe.xadd(key, fields, id=f"{1_000 + n // 4}-{n % 4}")
    pipe.execute()
    client.xdel(key, "1010-1")
    client.xgroup_create(key, "workers", id="0")
    client.xreadgroup("workers", "alice", {key: ">"}, count=5)
    client.xreadgroup("workers", "bob", {key: ">"}, count=3)
    # One of alice's entries delivered twice more: a count of 3.
    client.xclaim(key, "workers", "alice", 0, ["1000-1"], retrycount=3)
    client.xack(key, "workers", "1000-0")
    client.xgroup_create(key, "audit", id="1020-0")
    client.xgroup_createconsumer(key, "audit", "carol")
    client.execute_command("XSETID", key, "5000-7")


def pairs(reply) -> dict:
    """A map reply (RESP3) or its flat form (RESP2), keyed by text."""
    items = reply.items() if isinstance(reply, dict) else zip(reply[0::2], reply[1::2])
    return {(name.decode() if isinstance(name, bytes) else name): value for name, value in items}


def raw(client, *words):
    """A reply as the server sent it (redis-py reshapes XINFO's by its version)."""
    connection = client.connection_pool.get_connection()
    try:
        connection.send_command(*words)
        return connection.read_response()
    finally:
        client.connection_pool.release(connection)


def state(client, key: str) -> dict:
    """What a user would compare: entries, IDs, groups with their pending entries."""
    info = pairs(raw(client, "XINFO", "STREAM", key, "FULL", "COUNT", "0"))
    groups = {}
    for group_reply in info["groups"]:
        group = pairs(group_reply)
        consumers = {
            pairs(c)["name"]: sorted(p[0] for p in pairs(c)["pending"])
            for c in group["consumers"]
        }
        groups[group["name"]] = {
            "last-delivered-id": group["last-delivered-id"],
            "pel-count": group["pel-count"],
            # ID, owner, delivery time, count.
            "pending": [tuple(p) for p in group["pending"]],
            "consumers": consumers,
        }
    return {
        "length": info["length"],
        "last-generated-id": info["last-generated-id"],
        "max-deleted-entry-id": info["max-deleted-entry-id"],
        "entries": client.xrange(key),
        "groups": groups,
    }


def next_reads(client, key: str):
    return [
        client.xreadgroup(group, "dora", {key: ">"}, count=4)[0][1]
        for group in ("workers", "audit")
    ]


def test_a_stream_from_redis_server_restores_here_with_its_groups(peer, here):
    key = unique("orders")
    build(peer, key)
    time.sleep(1.2)
    payload = peer.dump(key)
    assert here.restore(key, 0, payload)
    # Consumers' idle times go on from where they were (XINFO CONSUMERS).
    for group in ("workers", "audit"):
        there = {c["name"]: c["idle"] for c in peer.xinfo_consumers(key, group)}
        moved = {c["name"]: c["idle"] for c in here.xinfo_consumers(key, group)}
        assert there.keys() == moved.keys()
        for name, idle in there.items():
            assert idle >= 1_000 and abs(moved[name] - idle) < 500, (name, idle, moved[name])
    expected = state(peer, key)
    assert expected["groups"][b"workers"]["pel-count"] == 7
    assert state(here, key) == expected
    assert here.type(key) == b"stream"
    assert here.ttl(key) == -1
    assert next_reads(here, key) == next_reads(peer, key)
    # Appends go on after the restored last ID.
    assert int(here.xadd(key, {"n": "next"}).split(b"-")[0]) > 5_000
    peer.delete(key)


def test_a_stream_dumped_here_restores_on_redis_server(peer, here):
    key = unique("orders")
    build(here, key)
    payload = here.dump(key)
    assert peer.restore(key, 0, payload)
    expected = state(here, key)
    assert state(peer, key) == expected
    assert next_reads(peer, key) == next_reads(here, key)
    # And back again: the payload redis-server writes restores to the same stream.
    copy = f"{key}:back"
    assert here.restore(copy, 0, peer.dump(key))
    assert here.xrange(copy) == here.xrange(key)
    peer.delete(key)


def test_migrate_on_redis_server_moves_a_stream_here(peer, here, redis_url):
    key = unique("events")
    build(peer, key)
    expected = state(peer, key)
    port = port_of(redis_url.split("://", 1)[1].split("/", 1)[0])
    assert peer.execute_command("MIGRATE", HOST, port, key, 0, 5000) == b"OK"
    assert peer.exists(key) == 0
    assert state(here, key) == expected


def test_restore_of_a_stream_refuses_and_replaces_as_redis_server_does(peer, here):
    key = unique("jobs")
    peer.xadd(key, {"a": "1"}, id="1-1")
    peer.xgroup_create(key, "g", id="0")
    payload = peer.dump(key)
    assert here.restore(key, 0, payload)
    for client in (peer, here):
        with pytest.raises(redis.ResponseError, match="BUSYKEY Target key name already exists"):
            client.restore(key, 0, payload)
        with pytest.raises(redis.ResponseError, match="DUMP payload version or checksum are wrong"):
            client.restore(unique("other"), 0, payload[:-1] + bytes([payload[-1] ^ 1]))
    # REPLACE over the stream, and over a string key; a TTL kept.
    here.xadd(key, {"b": "2"}, id="2-0")
    assert here.restore(key, 0, payload, replace=True)
    assert here.xrange(key) == [(b"1-1", {b"a": b"1"})]
    assert here.xinfo_groups(key)[0]["name"] == b"g"
    text = unique("text")
    here.set(text, "v")
    assert here.restore(text, 60_000, payload, replace=True)
    assert here.type(text) == b"stream"
    assert 0 < here.pttl(text) <= 60_000
    # A key Omnibus cannot name a stream is refused in words.
    with pytest.raises(redis.ResponseError, match="not a valid Omnibus stream name"):
        here.restore("has\ncontrol", 0, payload)
    # A payload that would expand past the bound once read: refused before it does (a
    # string whose LZF form claims 1 GiB).
    with pytest.raises(redis.ResponseError, match="would take more than 536870912 bytes"):
        here.restore(unique("huge"), 0, sealed(bytes([0, 0xC3, 3, 0x80, 0x40, 0, 0, 0, 1]) + b"ab"))
    peer.delete(key)


def sealed(body: bytes) -> bytes:
    """A DUMP payload of `body`: RDB version 10 and Redis's CRC-64 (Jones, reflected)."""
    body += (10).to_bytes(2, "little")
    crc = 0
    for byte in body:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x95AC9329AC4BC9B5 if crc & 1 else crc >> 1
    return body + crc.to_bytes(8, "little")


def test_a_restored_stream_survives_kill_9(peer, broker, redis_url):
    key = unique("durable")
    build(peer, key)
    here = redis.Redis.from_url(redis_url)
    assert here.restore(key, 600_000, peer.dump(key))
    here.close()
    broker.restart()
    here = redis.Redis.from_url(broker.redis_url)
    try:
        assert state(here, key) == state(peer, key)
        assert 0 < here.pttl(key) <= 600_000
        assert next_reads(here, key) == next_reads(peer, key)
    finally:
        here.close()
        peer.delete(key)
