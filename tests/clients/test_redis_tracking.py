"""Client-side caching (CLIENT TRACKING) side by side with Debian's redis-server 7.0: scripted
scenarios over a few connections (`a` tracks, `b` writes, `r` receives redirected messages),
each command sent on its connection, then every connection pinged with a marker; everything
each connection received up to its marker (replies, `invalidate` pushes, redirected
`__redis__:invalidate` messages, `tracking-redir-broken`) must be the same on both servers,
frame by frame and in order.

And redis-py's own client-side cache (`protocol=3, cache_config=CacheConfig()`, which sends
CLIENT TRACKING ON on every connection) kept right by the invalidations: a cached GET served
without a round trip, another client's SET, an expiry and a DEL each invalidating it.
"""

from __future__ import annotations

import time

import pytest
import redis
from redis.cache import CacheConfig

from harness import unique
from test_redis_differential import (  # noqa: F401 (a fixture, used by name)
    _connect_omnibus,
    _connect_peer,
    _empty,
    redis_server,
)

# Each scenario: (connection, command) steps. `$r` in a command is replaced by connection
# r's CLIENT ID on that server.
SCENARIOS = {
    "default-mode": [
        ("a", ["HELLO", "3"]),
        ("a", ["CLIENT", "TRACKING", "ON"]),
        ("a", ["GET", "k"]),
        ("a", ["MGET", "k", "k2", "k3"]),
        ("b", ["SET", "k", "1"]),
        # Told once per read: the second change sends nothing.
        ("b", ["SET", "k", "2"]),
        ("a", ["GET", "k"]),
        ("b", ["DEL", "k", "k2", "never-read"]),
        ("b", ["SET", "k3", "x", "NX"]),
        ("b", ["SET", "k3", "y", "NX"]),
        ("a", ["HGET", "h", "f"]),
        ("a", ["LRANGE", "l", "0", "-1"]),
        ("a", ["SMEMBERS", "s"]),
        ("a", ["ZSCORE", "z", "m"]),
        ("b", ["HSET", "h", "f", "v"]),
        ("b", ["RPUSH", "l", "x"]),
        ("b", ["SADD", "s", "x"]),
        ("b", ["ZADD", "z", "1", "m"]),
        ("a", ["GET", "counter"]),
        ("b", ["INCR", "counter"]),
        ("a", ["GET", "counter"]),
        ("b", ["EXPIRE", "counter", "100"]),
        ("a", ["CLIENT", "TRACKINGINFO"]),
        ("a", ["CLIENT", "GETREDIR"]),
        ("a", ["CLIENT", "TRACKING", "OFF"]),
        ("a", ["GET", "k"]),
        ("b", ["SET", "k", "3"]),
        ("a", ["CLIENT", "TRACKINGINFO"]),
    ],
    "own-changes-and-noloop": [
        ("a", ["HELLO", "3"]),
        ("a", ["CLIENT", "TRACKING", "ON"]),
        ("a", ["GET", "x"]),
        # The connection's own change: its reply, then the message.
        ("a", ["SET", "x", "1"]),
        ("a", ["GET", "x"]),
        ("a", ["MULTI"]),
        ("a", ["GET", "y"]),
        ("a", ["SET", "x", "2"]),
        ("a", ["SET", "y", "2"]),
        ("a", ["EXEC"]),
        ("a", ["CLIENT", "TRACKING", "ON", "NOLOOP"]),
        ("a", ["GET", "x"]),
        ("a", ["SET", "x", "3"]),
        ("a", ["GET", "x"]),
        ("b", ["SET", "x", "4"]),
        ("a", ["CLIENT", "TRACKINGINFO"]),
    ],
    "scripts-and-streams": [
        ("a", ["HELLO", "3"]),
        ("a", ["CLIENT", "TRACKING", "ON"]),
        ("a", ["EVAL", "return redis.call('GET', KEYS[1])", "1", "sk"]),
        ("b", ["SET", "sk", "1"]),
        ("a", ["XRANGE", "st", "-", "+"]),
        ("a", ["XLEN", "st"]),
        ("b", ["XADD", "st", "1-1", "f", "v"]),
        ("a", ["XRANGE", "st", "-", "+"]),
        ("b", ["XADD", "st", "2-1", "f", "v"]),
        ("a", ["GET", "sk"]),
        ("b", ["EVAL", "redis.call('SET', KEYS[1], 'x') return 1", "1", "sk"]),
    ],
    "bcast": [
        ("a", ["HELLO", "3"]),
        ("a", ["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "user:", "PREFIX", "order:"]),
        ("b", ["SET", "user:1", "a"]),
        ("b", ["MSET", "order:2", "x", "other", "2", "user:2", "y", "order:1", "z"]),
        ("b", ["SET", "other", "3"]),
        ("a", ["SET", "user:3", "self"]),
        ("a", ["CLIENT", "TRACKINGINFO"]),
        ("a", ["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "user"]),
        ("a", ["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "item:", "PREFIX", "item:x"]),
        ("a", ["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "cart:"]),
        ("b", ["SET", "cart:1", "c"]),
        ("a", ["CLIENT", "TRACKINGINFO"]),
        ("a", ["CLIENT", "TRACKING", "ON"]),
        ("a", ["CLIENT", "TRACKING", "OFF"]),
        ("a", ["CLIENT", "TRACKING", "ON", "BCAST", "NOLOOP"]),
        ("a", ["SET", "mine", "1"]),
        ("b", ["SET", "theirs", "1"]),
    ],
    # A transaction's changes reach BCAST connections as one message per prefix, sent
    # once EXEC has run (redis-server's own test "Clients can enable the BCAST mode with
    # prefixes").
    "bcast-transaction": [
        ("a", ["HELLO", "3"]),
        ("a", ["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a:", "PREFIX", "b:"]),
        ("b", ["MULTI"]),
        ("b", ["INCR", "a:1"]),
        ("b", ["INCR", "b:2"]),
        ("b", ["INCR", "a:2"]),
        ("b", ["INCR", "b:1"]),
        ("b", ["INCR", "c:1"]),
        ("b", ["INCR", "a:1"]),
        ("b", ["EXEC"]),
        ("b", ["INCR", "a:3"]),
        ("b", ["EVAL", "redis.call('INCR', KEYS[1]) redis.call('INCR', KEYS[2]) "
               "redis.call('INCR', KEYS[3])", "3", "b:9", "a:9", "b:8"]),
    ],
    "optin-optout": [
        ("a", ["HELLO", "3"]),
        ("a", ["CLIENT", "CACHING", "yes"]),
        ("a", ["CLIENT", "TRACKING", "ON", "OPTIN"]),
        ("a", ["GET", "p"]),
        ("a", ["CLIENT", "CACHING", "yes"]),
        ("a", ["CLIENT", "TRACKINGINFO"]),
        ("a", ["GET", "q"]),
        ("a", ["GET", "q2"]),
        ("b", ["MSET", "p", "1", "q", "1", "q2", "1"]),
        ("a", ["CLIENT", "CACHING", "no"]),
        ("a", ["CLIENT", "CACHING", "maybe"]),
        ("a", ["CLIENT", "TRACKING", "ON", "OPTOUT"]),
        ("a", ["CLIENT", "TRACKING", "OFF"]),
        ("a", ["CLIENT", "TRACKING", "ON", "OPTOUT"]),
        ("a", ["CLIENT", "CACHING", "no"]),
        ("a", ["GET", "p"]),
        ("a", ["GET", "q"]),
        ("b", ["MSET", "p", "2", "q", "2"]),
        ("a", ["CLIENT", "TRACKING", "ON", "OPTOUT", "OPTIN"]),
    ],
    # rueidis's shape: OPTIN on every connection, CLIENT CACHING YES in or before MULTI.
    "optin-in-transactions": [
        ("a", ["HELLO", "3"]),
        ("a", ["CLIENT", "TRACKING", "ON", "OPTIN"]),
        ("a", ["MULTI"]),
        ("a", ["CLIENT", "CACHING", "YES"]),
        ("a", ["PTTL", "m"]),
        ("a", ["GET", "m"]),
        ("a", ["EXEC"]),
        ("a", ["GET", "n"]),
        ("b", ["MSET", "m", "1", "n", "1"]),
        ("a", ["CLIENT", "CACHING", "YES"]),
        ("a", ["MULTI"]),
        ("a", ["GET", "m2"]),
        ("a", ["EXEC"]),
        ("a", ["GET", "n2"]),
        ("b", ["MSET", "m2", "1", "n2", "1"]),
    ],
    "redirect": [
        ("r", ["SUBSCRIBE", "__redis__:invalidate"]),
        ("a", ["CLIENT", "TRACKING", "ON", "REDIRECT", "$r"]),
        ("a", ["GET", "k"]),
        ("b", ["SET", "k", "1"]),
        ("a", ["CLIENT", "GETREDIR"]),
        ("a", ["CLIENT", "TRACKING", "ON", "REDIRECT", "$r", "REDIRECT", "$r"]),
        ("a", ["CLIENT", "TRACKING", "ON", "REDIRECT", "99999999"]),
        ("a", ["CLIENT", "TRACKING", "ON", "REDIRECT", "abc"]),
        # RESP3 tracking connection whose redirection's target goes away.
        ("c", ["HELLO", "3"]),
        ("c", ["CLIENT", "TRACKING", "ON", "REDIRECT", "$r"]),
        ("c", ["GET", "j"]),
        ("r", ["QUIT"]),
        ("b", ["SET", "j", "1"]),
        ("c", ["CLIENT", "TRACKINGINFO"]),
    ],
    "refusals": [
        ("a", ["CLIENT", "TRACKING", "ON", "PREFIX", "x"]),
        ("a", ["CLIENT", "TRACKING", "ON", "BCAST", "OPTIN"]),
        ("a", ["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a", "PREFIX", "ab"]),
        ("a", ["CLIENT", "TRACKING", "ON", "WHATEVER"]),
        ("a", ["CLIENT", "TRACKING", "MAYBE"]),
        ("a", ["CLIENT", "TRACKING"]),
        ("a", ["CLIENT", "CACHING", "yes"]),
        ("a", ["CLIENT", "GETREDIR"]),
        ("a", ["CLIENT", "GETREDIR", "x"]),
        ("a", ["CLIENT", "TRACKINGINFO"]),
        ("a", ["CLIENT", "TRACKING", "OFF"]),
        # RESP2 tracking without a redirection: remembered, but nothing can be sent.
        ("a", ["CLIENT", "TRACKING", "ON"]),
        ("a", ["GET", "k"]),
        ("b", ["SET", "k", "1"]),
        ("a", ["RESET"]),
        ("a", ["CLIENT", "TRACKINGINFO"]),
    ],
}


def _frames_until(connection, mark: bytes) -> list:
    """Every frame received before the reply to `PING <mark>`."""
    frames = []
    while True:
        frame = connection.read()
        if frame == mark or frame == [b"pong", mark]:
            return frames
        frames.append(frame)


def _run(scenario, connect) -> list:
    connections = {}
    closed = set()
    queuing = set()
    seen = []
    setup = connect()
    _empty(setup)
    for name, _ in scenario:
        if name not in connections:
            connections[name] = connect()
    ids = {name: connection.send("CLIENT", "ID") for name, connection in connections.items()}
    try:
        for step, (name, words) in enumerate(scenario):
            words = [str(ids["r"]) if word == "$r" else word for word in words]
            connection = connections[name]
            out = b"*%d\r\n" % len(words)
            for word in words:
                out += b"$%d\r\n%s\r\n" % (len(word.encode()), word.encode())
            connection.sock.sendall(out)
            if words[0] == "QUIT":
                assert connection.read() in (("status", "OK"), None)
                connection.sock.close()
                closed.add(name)
            if words[0] == "MULTI":
                queuing.add(name)
            # Its answer first (redis-server sends BCAST messages once the commands it read
            # together have run: a marker sent with the command would overtake them).
            answer = [] if words[0] == "QUIT" else [connection.read()]
            if name in queuing:
                # Inside MULTI a marker would be queued too: the answer alone.
                seen.append((step, name, answer))
            if words[0] in ("EXEC", "DISCARD"):
                queuing.discard(name)
            # The connection that ran the command first: its reply, then what followed.
            order = [name] + [other for other in connections if other != name]
            for other in order:
                if other in closed or other in queuing:
                    continue
                mark = f"mark-{step}".encode()
                ping = b"*2\r\n$4\r\nPING\r\n$%d\r\n%s\r\n" % (len(mark), mark)
                connections[other].sock.sendall(ping)
                received = _frames_until(connections[other], mark)
                seen.append((step, other, (answer if other == name else []) + received))
    finally:
        for name, connection in connections.items():
            if name not in closed:
                connection.sock.close()
        _empty(setup)
        setup.sock.close()
    return seen


def _normalized(frames, steps):
    """Connection ids differ between the servers: GETREDIR's answer, TRACKINGINFO's
    `redirect` and `tracking-redir-broken`'s id are compared as "an id" (or -1 / 0); and
    HELLO's map (versions, ids) is not compared."""

    def id_of(value):
        return "id" if isinstance(value, int) and value > 0 else value

    out = []
    for step, name, received in frames:
        own = name == steps[step][0]
        getredir = own and steps[step][1][1:2] == ["GETREDIR"]
        if own and steps[step][1][0] == "HELLO":
            # The servers' versions and ids differ; HELLO is compared elsewhere.
            received = [("hello",) if isinstance(frame, tuple) and frame[0] == "map" else frame
                        for frame in received]
        cleaned = []
        for frame in received:
            if isinstance(frame, tuple) and frame[0] == "map":
                frame = ("map", [(k, id_of(v) if k == b"redirect" else v) for k, v in frame[1]])
            elif isinstance(frame, list) and len(frame) == 6 and frame[2] == b"redirect":
                frame = [*frame[:3], id_of(frame[3]), *frame[4:]]
            elif isinstance(frame, list) and frame[:1] == [b"tracking-redir-broken"]:
                frame = [frame[0], id_of(frame[1])]
            elif getredir:
                frame = id_of(frame)
            cleaned.append(frame)
        out.append((step, name, cleaned))
    return out


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_tracking_scenarios_match_redis_server(scenario, redis_server, redis_url):
    steps = SCENARIOS[scenario]
    peer = _normalized(_run(steps, lambda: _connect_peer(redis_server)), steps)
    omnibus = _normalized(_run(steps, lambda: _connect_omnibus(redis_url)), steps)
    for (step, name, expected), (_, _, got) in zip(peer, omnibus):
        words = steps[step][1]
        assert got == expected, (
            f"{scenario} step {step} ({steps[step][0]}: {' '.join(words)}), on {name}\n"
            f"    redis-server: {expected!r}\n    omnibus:      {got!r}"
        )
    assert len(peer) == len(omnibus)
    # Each scenario makes messages to compare, not only replies.
    pushes = [frame for _, _, frames in peer for frame in frames
              if isinstance(frame, list) and frame[:1] in ([b"invalidate"], [b"message"])]
    assert pushes or scenario == "refusals", f"{scenario}: redis-server sent no invalidation"


def _wait_for(condition, seconds=5.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_redis_py_client_side_cache(redis_url):
    """redis-py 8's own cache: hits served from memory, kept right by the invalidations."""
    cached = redis.Redis.from_url(redis_url, protocol=3, cache_config=CacheConfig())
    writer = redis.Redis.from_url(redis_url)
    key, other = unique("csc"), unique("csc-expiring")
    try:
        writer.set(key, "v1")
        assert cached.get(key) == b"v1"
        calls_before = writer.info("commandstats").get("cmdstat_get", {}).get("calls", 0)
        for _ in range(20):
            assert cached.get(key) == b"v1"
        calls_after = writer.info("commandstats").get("cmdstat_get", {}).get("calls", 0)
        assert calls_after == calls_before, "cached GETs reached the server"
        assert writer.info("stats")["tracking_total_keys"] >= 1
        assert writer.info("clients")["tracking_clients"] >= 1

        # Another client's change reaches the cache.
        writer.set(key, "v2")
        assert _wait_for(lambda: cached.get(key) == b"v2")
        writer.delete(key)
        assert _wait_for(lambda: cached.get(key) is None)

        # A deadline passing is a change too.
        writer.set(other, "soon", px=100)
        assert cached.get(other) == b"soon"
        assert _wait_for(lambda: cached.get(other) is None)
    finally:
        cached.close()
        writer.close()


def test_client_list_shows_tracking(redis_url):
    """CLIENT LIST / CLIENT INFO: `t` tracking, `B` broadcasting, `redir` its redirection
    (0 without one, -1 when not tracking), as redis-server shows them."""
    connection = redis.Redis.from_url(redis_url, protocol=3, single_connection_client=True)
    try:
        assert int(connection.client_info()["redir"]) == -1
        connection.execute_command("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "user:")
        info = connection.client_info()
        assert "t" in info["flags"] and "B" in info["flags"], info["flags"]
        assert int(info["redir"]) == 0
        connection.execute_command("CLIENT", "TRACKING", "OFF")
        assert "t" not in connection.client_info()["flags"]
    finally:
        connection.close()


@pytest.mark.parametrize("kind", ["string", "stream"])
def test_a_key_expiring_is_invalidated_on_both_servers(kind, redis_server, redis_url):
    """A key read with tracking on and then gone at its deadline (nobody touches it): the
    deadline's deletion is a change, for a string key and for a stream key alike."""
    seen = []
    for connect in (lambda: _connect_peer(redis_server), lambda: _connect_omnibus(redis_url)):
        reader, writer = connect(), connect()
        try:
            reader.send("HELLO", "3")
            assert reader.send("CLIENT", "TRACKING", "ON") == ("status", "OK")
            writer.send("DEL", "soon")
            if kind == "string":
                writer.send("SET", "soon", "v")
            else:
                writer.send("XADD", "soon", "1-1", "f", "v")
            writer.send("PEXPIRE", "soon", "150")
            read = ["GET", "soon"] if kind == "string" else ["XRANGE", "soon", "-", "+"]
            assert reader.send(*read) not in (None, [])
            time.sleep(0.6)
            # Nothing sent since: the marker's reply comes after what the deadline sent.
            reader.sock.sendall(b"*2\r\n$4\r\nPING\r\n$4\r\ndone\r\n")
            seen.append(_frames_until(reader, b"done"))
        finally:
            reader.sock.close()
            writer.sock.close()
    assert seen[0] == [[b"invalidate", [b"soon"]]], seen[0]
    assert seen[1] == seen[0]
