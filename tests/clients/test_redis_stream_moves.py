"""RENAME, RENAMENX and COPY with stream keys, through redis-py, each test run against the
Redis door and against Debian's redis-server (7.0) in the same run, so every expectation is
redis-server's: a stream renamed or copied with its entries, IDs, consumer groups, pending
entries and TTL; the source gone after RENAME, independent after COPY; a destination of any
kind replaced by RENAME and by COPY … REPLACE, left alone by RENAMENX and plain COPY; a
string renamed over a stream; a pipeline and a MULTI/EXEC that go on using the new name; and
(Omnibus alone) a renamed stream read back after kill -9."""

from __future__ import annotations

import pytest
import redis

from harness import unique
from test_redis_differential import redis_server  # noqa: F401
from test_redis_stream_dump import build, next_reads, state


@pytest.fixture(params=["omnibus", "redis-server"])
def client(request, redis_url):
    if request.param == "omnibus":
        connection = redis.Redis.from_url(redis_url)
    else:
        path = request.getfixturevalue("redis_server")
        connection = redis.Redis(unix_socket_path=str(path))
    yield connection
    connection.close()


def test_rename_moves_a_stream_with_its_groups_and_ttl(client):
    source, destination = unique("orders"), unique("orders-renamed")
    build(client, source)
    client.pexpire(source, 600_000)
    before = state(client, source)
    assert client.rename(source, destination) is True
    assert client.exists(source) == 0
    assert client.type(destination) == b"stream"
    assert state(client, destination) == before
    assert 0 < client.pttl(destination) <= 600_000
    # IDs go on after the last one; the groups read on from where they were.
    assert int(client.xadd(destination, {"n": "next"}).split(b"-")[0]) > 5_000
    reads = next_reads(client, destination)
    assert [entry[0] for entry in reads[0]] == [b"1002-0", b"1002-1", b"1002-2", b"1002-3"]
    assert client.xreadgroup("workers", "alice", {destination: "0"})[0][1][0][0] == b"1000-1"
    client.delete(destination)


def test_renamenx_and_rename_onto_keys_of_every_kind(client):
    stream, text, other = unique("s"), unique("text"), unique("other")
    client.xadd(stream, {"a": "1"}, id="1-1")
    client.set(text, "v")
    client.xadd(other, {"b": "2"}, id="7-7")
    assert client.renamenx(stream, text) is False
    assert client.renamenx(stream, other) is False
    assert client.xrange(stream) == [(b"1-1", {b"a": b"1"})]
    # RENAME replaces a string, then a stream.
    assert client.rename(stream, text) is True
    assert client.type(text) == b"stream" and client.exists(stream) == 0
    assert client.rename(text, other) is True
    assert client.xrange(other) == [(b"1-1", {b"a": b"1"})]
    assert client.exists(text) == 0
    # A string renamed over a stream replaces it; RENAMENX does not.
    client.set(text, "again")
    assert client.renamenx(text, other) is False
    assert client.rename(text, other) is True
    assert client.type(other) == b"string" and client.get(other) == b"again"
    # Renaming onto itself; a missing source.
    client.xadd(stream, {"c": "3"}, id="2-2")
    assert client.rename(stream, stream) is True
    assert client.renamenx(stream, stream) is False
    with pytest.raises(redis.ResponseError, match="no such key"):
        client.rename(unique("missing"), stream)
    client.delete(stream, other)


def test_copy_makes_an_independent_stream(client):
    source, destination, text = unique("src"), unique("dst"), unique("text")
    build(client, source)
    client.pexpire(source, 600_000)
    assert client.copy(source, destination) is True
    assert state(client, destination) == state(client, source)
    assert 0 < client.pttl(destination) <= 600_000
    # Independent: an entry or a read on one is not on the other.
    client.xadd(destination, {"only": "here"}, id="6000-0")
    client.xack(destination, "workers", "1000-1")
    assert client.xlen(source) == 299 and client.xlen(destination) == 300
    assert len(client.xpending_range(source, "workers", "-", "+", 100)) == 7
    assert len(client.xpending_range(destination, "workers", "-", "+", 100)) == 6
    # Onto an existing key: only with REPLACE.
    client.set(text, "v")
    assert client.copy(source, text) is False
    assert client.copy(source, destination) is False
    assert client.copy(source, text, replace=True) is True
    assert client.type(text) == b"stream" and client.xlen(text) == 299
    assert client.copy(source, destination, replace=True) is True
    assert client.xlen(destination) == 299
    # A string copied over a stream.
    client.set(source + ":s", "x")
    assert client.copy(source + ":s", text, replace=True) is True
    assert client.get(text) == b"x"
    client.delete(source, destination, text, source + ":s")


def test_a_pipeline_and_a_transaction_go_on_with_the_new_name(client):
    first, second, third = unique("a"), unique("b"), unique("c")
    client.xadd(first, {"n": "1"}, id="1-0")
    pipe = client.pipeline(transaction=False)
    pipe.rename(first, second)
    pipe.xadd(second, {"n": "2"}, id="2-0")
    pipe.xlen(second)
    pipe.exists(first)
    pipe.copy(second, third)
    pipe.xadd(third, {"n": "3"}, id="3-0")
    pipe.xlen(third)
    assert pipe.execute() == [True, b"2-0", 2, 0, True, b"3-0", 3]
    transaction = client.pipeline(transaction=True)
    transaction.rename(third, first)
    transaction.xlen(first)
    transaction.type(third)
    assert transaction.execute() == [True, 3, b"none"]
    client.delete(first, second)


def test_a_renamed_stream_survives_kill_9(broker, redis_url):
    client = redis.Redis.from_url(redis_url)
    source, destination = unique("durable"), unique("durable-renamed")
    build(client, source)
    before = state(client, source)
    assert client.rename(source, destination) is True
    client.close()
    broker.restart()
    client = redis.Redis.from_url(broker.redis_url)
    try:
        assert client.exists(source) == 0
        assert state(client, destination) == before
    finally:
        client.close()
