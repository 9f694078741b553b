"""FUNCTION DUMP and FUNCTION RESTORE between Debian's redis-server 7.0 and Omnibus, both ways:
libraries dumped by one server are restored into the other (FLUSH, APPEND, REPLACE) and
FUNCTION LIST WITHCODE and FCALL agree; and every refusal (a damaged payload, a wrong
policy, a library or function already there, a payload that holds a key rather than
functions) is answered in the same words by both."""

from __future__ import annotations

from test_redis_differential import (  # noqa: F401 (a fixture, used by name)
    _connect_omnibus,
    _connect_peer,
    redis_server,
)

ORDERS = (
    "#!lua name=orders\n"
    "redis.register_function('order_add', function(keys, args) "
    "return redis.call('INCRBY', keys[1], args[1]) end)\n"
    "redis.register_function{function_name='order_get', callback=function(keys, args) "
    "return redis.call('GET', keys[1]) end, flags={'no-writes'}, description='reads'}"
)
TAGS = (
    "#!lua name=tags\n"
    "redis.register_function('tag_count', function(keys, args) "
    "return redis.call('SCARD', keys[1]) end)"
)
# Same library name as ORDERS, other functions; and a library whose function ORDERS has.
ORDERS_V2 = "#!lua name=orders\nredis.register_function('order_v2', function() return 2 end)"
THIEF = "#!lua name=thief\nredis.register_function('order_add', function() return 0 end)"


def _libraries(connection):
    """FUNCTION LIST WITHCODE, as comparable data: libraries by name."""
    listed = connection.send("FUNCTION", "LIST", "WITHCODE")
    out = []
    for library in listed:
        fields = dict(zip(library[0::2], library[1::2]))
        functions = sorted(
            (tuple(sorted(dict(zip(f[0::2], f[1::2])).items(), key=str)) for f in fields[b"functions"]),
            key=str,
        )
        out.append((fields[b"library_name"], fields[b"library_code"], functions))
    return sorted(out)


def _reset(connection, *codes):
    assert connection.send("FUNCTION", "FLUSH") == ("status", "OK")
    for code in codes:
        assert connection.send("FUNCTION", "LOAD", code) == code.split("name=")[1].split("\n")[0].encode()


def test_libraries_move_both_ways(redis_server, redis_url):
    peer, omnibus = _connect_peer(redis_server), _connect_omnibus(redis_url)
    try:
        for source, target in ((peer, omnibus), (omnibus, peer)):
            _reset(source, ORDERS, TAGS)
            _reset(target, TAGS)
            payload = source.send("FUNCTION", "DUMP")
            assert isinstance(payload, bytes) and len(payload) > 10
            assert target.send("FUNCTION", "RESTORE", payload, "FLUSH") == ("status", "OK")
            assert _libraries(target) == _libraries(source)
            assert target.send("DEL", "n") in (0, 1)
            assert target.send("FCALL", "order_add", "1", "n", "5") == 5
            assert target.send("FCALL_RO", "order_get", "1", "n") == b"5"
            # A payload restored twice: APPEND (the default) refuses, REPLACE takes it.
            # (Which one is named follows redis-server's hash table: either.)
            assert target.send("FUNCTION", "RESTORE", payload) in (
                ("error", "ERR Library orders already exists"),
                ("error", "ERR Library tags already exists"),
            )
            assert target.send("FUNCTION", "RESTORE", payload, "REPLACE") == ("status", "OK")
            assert _libraries(target) == _libraries(source)
            # An empty server's dump restores nothing.
            _reset(source)
            empty = source.send("FUNCTION", "DUMP")
            assert target.send("FUNCTION", "RESTORE", empty, "FLUSH") == ("status", "OK")
            assert target.send("FUNCTION", "LIST") == []
    finally:
        for connection in (peer, omnibus):
            connection.send("FUNCTION", "FLUSH")
            connection.sock.close()


def test_refusals_are_redis_servers(redis_server, redis_url):
    peer, omnibus = _connect_peer(redis_server), _connect_omnibus(redis_url)
    try:
        answers = []
        for connection in (peer, omnibus):
            _reset(connection, ORDERS_V2)
            v2 = connection.send("FUNCTION", "DUMP")
            _reset(connection, THIEF)
            thief = connection.send("FUNCTION", "DUMP")
            _reset(connection, ORDERS)
            orders = connection.send("FUNCTION", "DUMP")
            connection.send("SET", "plain", "value")
            key_payload = connection.send("DUMP", "plain")
            damaged = orders[:-1] + bytes([orders[-1] ^ 1])
            seen = [
                connection.send("FUNCTION", "RESTORE", damaged),
                connection.send("FUNCTION", "RESTORE", orders, "MERGE"),
                connection.send("FUNCTION", "RESTORE", orders, "FLUSH", "EXTRA"),
                connection.send("FUNCTION", "RESTORE", key_payload),
                connection.send("FUNCTION", "RESTORE", b"short"),
                # THIEF's function is ORDERS's: refused even with REPLACE (another library).
                connection.send("FUNCTION", "RESTORE", thief, "REPLACE"),
                connection.send("FUNCTION", "RESTORE", thief),
                # ORDERS_V2 replaces ORDERS (same name), whose functions go with it.
                connection.send("FUNCTION", "RESTORE", v2, "REPLACE"),
                _libraries(connection),
                connection.send("FCALL", "order_add", "1", "n", "1"),
                connection.send("FUNCTION", "DUMP", "extra"),
            ]
            connection.send("DEL", "plain")
            answers.append(seen)
        assert answers[1] == answers[0]
        # Every case above refused something (the comparison is not of two empty runs).
        assert sum(1 for answer in answers[0] if isinstance(answer, tuple) and answer[0] == "error") >= 7
    finally:
        for connection in (peer, omnibus):
            connection.send("FUNCTION", "FLUSH")
            connection.sock.close()
