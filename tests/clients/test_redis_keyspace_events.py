"""Keyspace notifications side by side with redis-server: the seeded random sequences of the
differential test (strings, streams, lists, hashes, sets, sorted sets, geo) run on Debian's
redis-server and on Omnibus with `notify-keyspace-events KEg$lshztnm` on both, and after every
command the events a subscriber received (`PSUBSCRIBE __key*__:*`: channel and message, in
order) must be the same. A marker PUBLISHed on a third connection once the command is
answered ends that command's events (both servers publish an event before the command's
reply), so each command's are compared on their own and in order; inside MULTI they come
with EXEC.

Expired events (`x`) are left out: when a key's deadline passes differs by a few
milliseconds between two servers (expiry has its own tests, `crates/redis/tests/
notifications.rs`).
"""

from __future__ import annotations

import shlex
import time

import pytest

from redis_differential_random import sequence
from test_redis_differential import (  # noqa: F401 (a fixture, used by name)
    _connect_omnibus,
    _connect_peer,
    _empty,
    redis_server,
)

CLASSES = "KEg$lshztnm"


def _subscriber(connect):
    listener = connect()
    listener.send("PSUBSCRIBE", "__key*__:*")
    assert listener.send("SUBSCRIBE", "mark")[0] == b"subscribe"
    return listener


def _events_until(listener, mark: str) -> list[tuple[bytes, bytes]]:
    """The keyspace events received before the marker `mark`."""
    events = []
    while True:
        message = listener.read()
        if message[0] == b"message" and message[1] == b"mark":
            if message[2] == mark.encode():
                return events
            continue
        assert message[0] == b"pmessage", message
        channel = message[2]
        # A key that is no subject (a space, `*` or `>` in it) has no `__keyspace` channel
        # on Omnibus, which publishes through its subject router (docs/redis.md): SORT BY
        # and the string values used as keys make such keys.
        key = channel.split(b":", 1)[1] if channel.startswith(b"__keyspace@") else b""
        if any(c in key for c in (b" ", b"*", b">")):
            continue
        events.append((channel, message[3]))


@pytest.mark.parametrize(
    "family,seeds,length",
    [
        ("strings", range(60), 200),
        ("streams", range(60), 200),
        ("lists", range(60), 200),
        ("hashes", range(60), 200),
        ("sets", range(60), 200),
        ("zsets", range(60), 200),
        ("geo", range(40), 150),
    ],
)
def test_random_sequences_send_the_events_redis_server_sends(
    family, seeds, length, redis_server, redis_url
):
    connects = [lambda: _connect_peer(redis_server), lambda: _connect_omnibus(redis_url)]
    peer, omnibus = (connect() for connect in connects)
    listeners = [_subscriber(connect) for connect in connects]
    markers = [connect() for connect in connects]
    sides = list(zip((peer, omnibus), listeners, markers))
    try:
        for seed in seeds:
            for connection, _, _ in sides:
                assert connection.send("CONFIG", "SET", "notify-keyspace-events", "") == (
                    "status",
                    "OK",
                )
                _empty(connection)
                connection.send("CONFIG", "SET", "notify-keyspace-events", CLASSES)
            for step, words in enumerate(sequence(family, seed, length)):
                mark = f"{seed}-{step}"
                seen = []
                for connection, listener, marker in sides:
                    connection.send(*words)
                    marker.send("PUBLISH", "mark", mark)
                    seen.append(_events_until(listener, mark))
                assert seen[1] == seen[0], (
                    f"{family} seed {seed} step {step}: {shlex.join(words)}\n"
                    f"    redis-server: {seen[0]!r}\n    omnibus:      {seen[1]!r}"
                )
            for connection, _, _ in sides:
                connection.send("DISCARD")
    finally:
        for connection in [peer, omnibus, *listeners, *markers]:
            connection.sock.close()


# A pop that waits, then the command that serves it (each on its own connection), for every
# kind of blocking pop and of command that can hand it a value.
SERVED = [
    (["BLPOP", "q", "5"], ["RPUSH", "q", "a", "b"]),
    (["BRPOP", "q", "5"], ["LPUSH", "q", "a"]),
    (["BLMOVE", "q", "d", "LEFT", "RIGHT", "5"], ["RPUSH", "q", "a"]),
    (["BRPOPLPUSH", "q", "q", "5"], ["RPUSH", "q", "a"]),
    (["BLMPOP", "5", "2", "x", "q", "RIGHT", "COUNT", "2"], ["RPUSH", "q", "a", "b", "c"]),
    (["BLPOP", "q", "5"], ["LMOVE", "src", "q", "LEFT", "LEFT"]),
    (["BZPOPMIN", "z", "5"], ["ZADD", "z", "1", "m"]),
    (["BZPOPMAX", "z", "5"], ["ZADD", "z", "1", "m", "2", "n"]),
    (["BZMPOP", "5", "1", "z", "MIN"], ["ZINCRBY", "z", "3", "m"]),
    (["BLPOP", "q", "5"], ["MULTI"]),
    # A group read that waits makes its consumer when it is served (the group `g` of `st`
    # is made before).
    (["XREADGROUP", "GROUP", "g", "c", "BLOCK", "5000", "STREAMS", "st", ">"],
     ["XADD", "st", "5-1", "f", "v"]),
    (["XREAD", "BLOCK", "5000", "STREAMS", "st", "$"], ["XADD", "st", "6-1", "f", "v"]),
]


@pytest.mark.parametrize("served", range(len(SERVED)))
def test_served_pops_send_the_events_redis_server_sends(served, redis_server, redis_url):
    waiting, serving = SERVED[served]
    connects = [lambda: _connect_peer(redis_server), lambda: _connect_omnibus(redis_url)]
    seen = []
    for connect in connects:
        connection, blocked, marker = connect(), connect(), connect()
        listener = _subscriber(connect)
        try:
            connection.send("CONFIG", "SET", "notify-keyspace-events", "")
            _empty(connection)
            connection.send("RPUSH", "src", "s1")
            connection.send("XGROUP", "CREATE", "st", "g", "$", "MKSTREAM")
            connection.send("CONFIG", "SET", "notify-keyspace-events", CLASSES)
            # Sent, not answered until served.
            out = b"*%d\r\n" % len(waiting)
            for word in waiting:
                out += b"$%d\r\n%s\r\n" % (len(word), word.encode())
            blocked.sock.sendall(out)
            time.sleep(0.3)
            if serving == ["MULTI"]:
                # Served by a transaction's push, once EXEC runs.
                connection.send("MULTI")
                connection.send("RPUSH", "q", "t")
                connection.send("EXEC")
            else:
                connection.send(*serving)
            assert blocked.read() is not None
            marker.send("PUBLISH", "mark", "end")
            seen.append(_events_until(listener, "end"))
        finally:
            for each in (connection, blocked, marker, listener):
                each.sock.close()
    assert seen[1] == seen[0], (
        f"{shlex.join(waiting)} served by {shlex.join(serving)}\n"
        f"    redis-server: {seen[0]!r}\n    omnibus:      {seen[1]!r}"
    )
