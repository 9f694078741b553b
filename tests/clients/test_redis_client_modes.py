"""CLIENT REPLY ON|OFF|SKIP and CLIENT PAUSE / UNPAUSE side by side with Debian's
redis-server 7.0: the frames a pipelined connection gets with replies turned off, on and
skipped (errors and QUEUED included) must be the same; and a pause must hold what redis-server
holds (WRITE: writes, EXEC with a write, EVAL; not reads; ALL: everything) until its deadline
or CLIENT UNPAUSE, on both."""

from __future__ import annotations

import time

import pytest

from test_redis_differential import (  # noqa: F401 (a fixture, used by name)
    _connect_omnibus,
    _connect_peer,
    redis_server,
)


def _encode(*words: str) -> bytes:
    out = b"*%d\r\n" % len(words)
    for word in words:
        data = word.encode()
        out += b"$%d\r\n%s\r\n" % (len(data), data)
    return out


def _until(connection, mark: bytes) -> list:
    frames = []
    while True:
        frame = connection.read()
        if frame == mark:
            return frames
        frames.append(frame)


REPLY_SEQUENCE = [
    ["DEL", "a", "b"],
    ["CLIENT", "REPLY", "OFF"],
    ["SET", "a", "1"],
    ["INCR", "a"],
    ["LPUSH", "a", "x"],  # an error, not written either
    ["CLIENT", "REPLY", "SKIP"],  # nothing while OFF
    ["GET", "a"],
    ["CLIENT", "REPLY", "ON"],
    ["GET", "a"],
    ["CLIENT", "REPLY", "SKIP"],
    ["GET", "a"],
    ["GET", "a"],
    ["CLIENT", "REPLY", "SKIP"],
    ["CLIENT", "REPLY", "SKIP"],
    ["INCR", "a"],
    ["INCR", "a"],
    ["CLIENT", "REPLY", "SKIP"],
    ["MULTI"],
    ["SET", "b", "2"],
    ["EXEC"],
    ["CLIENT", "REPLY", "MAYBE"],
    ["CLIENT", "REPLY"],
    ["CLIENT", "REPLY", "OFF"],
    ["RESET"],
    ["GET", "b"],
]


def test_reply_modes_match_redis_server(redis_server, redis_url):
    seen = []
    for connect in (lambda: _connect_peer(redis_server), lambda: _connect_omnibus(redis_url)):
        connection = connect()
        try:
            pipeline = b"".join(_encode(*words) for words in REPLY_SEQUENCE)
            connection.sock.sendall(pipeline + _encode("PING", "end"))
            seen.append(_until(connection, b"end"))
        finally:
            connection.sock.close()
    assert seen[1] == seen[0]
    assert len(seen[0]) < len(REPLY_SEQUENCE)  # some replies were left out


def _timed(connection, *words):
    """Sends a command and answers (seconds until its reply, the reply)."""
    started = time.monotonic()
    connection.sock.sendall(_encode(*words))
    reply = connection.read()
    return time.monotonic() - started, reply


@pytest.mark.parametrize("side", ["redis-server", "omnibus"])
def test_pause_holds_what_redis_server_holds(side, redis_server, redis_url):
    connect = (lambda: _connect_peer(redis_server)) if side == "redis-server" else (
        lambda: _connect_omnibus(redis_url))
    admin, client = connect(), connect()
    try:
        # WRITE: reads pass, writes and a script wait for the deadline.
        assert admin.send("CLIENT", "PAUSE", "400", "WRITE") == ("status", "OK")
        took, reply = _timed(client, "GET", "paused:k")
        assert reply is None and took < 0.2
        took, reply = _timed(client, "SET", "paused:k", "1")
        assert reply == ("status", "OK") and took > 0.25, took
        # An EXEC with a write waits too (its queueing of a write already does).
        assert admin.send("CLIENT", "PAUSE", "300", "WRITE") == ("status", "OK")
        took, reply = _timed(client, "EVAL", "return 1", "0")
        assert reply == 1 and took > 0.15, took
        # UNPAUSE ends it early, for a command already waiting.
        assert admin.send("CLIENT", "PAUSE", "10000", "WRITE") == ("status", "OK")
        client.sock.sendall(_encode("INCR", "paused:k"))
        time.sleep(0.2)
        assert admin.send("CLIENT", "UNPAUSE") == ("status", "OK")
        started = time.monotonic()
        assert client.read() == 2
        assert time.monotonic() - started < 1.0
        # ALL holds reads too; a later WRITE pause does not narrow it.
        assert admin.send("CLIENT", "PAUSE", "300") == ("status", "OK")
        took, reply = _timed(client, "GET", "paused:k")
        assert reply == b"2" and took > 0.15, took
        # The refusals.
        assert admin.send("CLIENT", "PAUSE", "-1") == ("error", "ERR timeout is negative")
        assert admin.send("CLIENT", "PAUSE", "x") == (
            "error", "ERR timeout is not an integer or out of range")
        assert admin.send("CLIENT", "PAUSE", "10", "SOME") == (
            "error", "ERR CLIENT PAUSE mode must be WRITE or ALL")
    finally:
        admin.send("CLIENT", "UNPAUSE")
        admin.send("DEL", "paused:k")
        admin.sock.close()
        client.sock.close()


def test_pushes_are_sent_with_replies_off(redis_server, redis_url):
    """RESP3 with CLIENT REPLY OFF: SUBSCRIBE's confirmations and the messages published are
    pushes, and pushes are sent whatever the reply mode (redis-server's own test, "PubSub
    messages with CLIENT REPLY OFF")."""
    seen = []
    for connect in (lambda: _connect_peer(redis_server), lambda: _connect_omnibus(redis_url)):
        subscriber, publisher = connect(), connect()
        try:
            subscriber.sock.sendall(_encode("HELLO", "3"))
            subscriber.read()
            subscriber.sock.sendall(
                _encode("CLIENT", "REPLY", "OFF")
                + _encode("SUBSCRIBE", "channel")
                + _encode("PSUBSCRIBE", "ch*")
            )
            frames = [subscriber.read(), subscriber.read()]
            publisher.sock.sendall(_encode("PUBLISH", "channel", "hello"))
            assert publisher.read() == 2
            frames += [subscriber.read(), subscriber.read()]
            subscriber.sock.sendall(
                _encode("UNSUBSCRIBE", "channel") + _encode("PUNSUBSCRIBE", "ch*")
            )
            frames += [subscriber.read(), subscriber.read()]
            seen.append(frames)
        finally:
            subscriber.sock.close()
            publisher.sock.close()
    assert seen[1] == seen[0]
    assert seen[0][2][0] in ("message", b"message"), seen[0]
