"""The Redis door side by side with redis-server: the same command sequences
(`redis_differential_cases.py`: strings, keys, streams, lists, hashes, sets, sorted sets,
transactions) go to a redis-server from Debian and to Omnibus, in RESP2 and in RESP3, and
every answer must be the same — values, nils, error words — once the fields that hold times
are set aside; so do seeded random sequences of strings, of a stream, of lists, of hashes, of
sets, of sorted sets and of geo commands (`redis_differential_random.py`, in RESP2). A plain socket and a
RESP reader written here, so the comparison is of what each server sent (a status and a bulk
string are told apart), not of a client's view; a RESP3 map (HGETALL, HELLO) is read as
("map", pairs) in the order sent, so a hash's fields must come in the same order too, a
RESP3 set (`~`: SMEMBERS, SPOP with a count) as ("set", items) and a double (`,`: ZSCORE,
WITHSCORES) as ("number", text), so each must be sent as that type.

A set's members are the one answer compared without its order (`normalize`): Redis 7.0
keeps a small set of integers sorted and any other set in hash-table order, Omnibus in
insertion order, so SMEMBERS, SINTER, SUNION, SDIFF, SSCAN's members and SPOP/SRANDMEMBER
with a count are sorted on both sides first (a RESP3 set stays a set); inside a transaction,
EXEC's answers are set aside each as its queued command's own would be.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from harness import HOST, port_of
from redis_differential_cases import CASES
from redis_differential_random import sequence

READY_TIMEOUT_S = 15.0
IO_TIMEOUT_S = 10.0


class Resp:
    """One connection speaking RESP2/RESP3; answers are plain Python values, with errors and
    statuses tagged so that they differ from bulk strings."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.sock.settimeout(IO_TIMEOUT_S)
        self.buffer = b""

    def send(self, *words: str | bytes):
        out = b"*%d\r\n" % len(words)
        for word in words:
            data = word.encode() if isinstance(word, str) else word
            out += b"$%d\r\n%s\r\n" % (len(data), data)
        self.sock.sendall(out)
        return self.read()

    def _fill(self, want: int):
        while len(self.buffer) < want:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("the server closed the connection")
            self.buffer += chunk

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            self._fill(len(self.buffer) + 1)
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def _exact(self, length: int) -> bytes:
        self._fill(length + 2)
        data, self.buffer = self.buffer[:length], self.buffer[length + 2 :]
        return data

    def read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return ("status", rest.decode())
        if kind == b"-":
            return ("error", rest.decode())
        if kind == b":":
            return int(rest)
        if kind in (b"$", b"="):
            length = int(rest)
            return None if length < 0 else self._exact(length)
        if kind in (b"*", b">"):
            length = int(rest)
            return None if length < 0 else [self.read() for _ in range(length)]
        if kind == b"~":
            return ("set", [self.read() for _ in range(int(rest))])
        if kind == b"%":
            return ("map", [(self.read(), self.read()) for _ in range(int(rest))])
        if kind == b"_":
            return None
        if kind == b"#":
            return rest == b"t"
        if kind in (b",", b"("):
            return ("number", rest.decode())
        if kind == b"!":
            return ("error", self._exact(int(rest)).decode())
        raise ValueError(f"not RESP: {line!r}")


def _pairs(reply):
    """A reply's field/value pairs, from a RESP3 map or a RESP2 flat array."""
    if isinstance(reply, tuple) and reply[0] == "map":
        return reply[1]
    return list(zip(reply[0::2], reply[1::2]))


def _without(reply, names: set[bytes]):
    """`reply` (a map or a flat field/value array) without the fields in `names`."""
    kept = [(k, v) for k, v in _pairs(reply) if k not in names]
    if isinstance(reply, tuple):
        return ("map", kept)
    return [item for pair in kept for item in pair]


def _unordered(reply):
    """A collection whose order is each server's own, in one order: sorted, a RESP3 set
    (`~`) still told apart from an array."""
    if isinstance(reply, tuple) and reply[0] == "set":
        return ("set", sorted(reply[1], key=repr))
    if isinstance(reply, list):
        return sorted(reply, key=repr)
    return reply


# Commands that answer a set's members, whose order is the server's own: Redis 7.0 keeps a
# small set of integers sorted and any other set in hash-table order, Omnibus in insertion
# order. SPOP and SRANDMEMBER answer so only with a count.
SET_MEMBERS = {"SMEMBERS", "SINTER", "SUNION", "SDIFF"}
SET_MEMBERS_COUNTED = {"SPOP", "SRANDMEMBER"}


def normalize(words: list[str], reply):
    """Sets aside what legitimately differs between two servers: times (idle, inactive),
    the radix tree's shape, and the order of KEYS and SCAN answers and of a set's
    members."""
    name = words[0].upper()
    if isinstance(reply, tuple) and reply[0] == "error":
        return reply
    if name in SET_MEMBERS or (name in SET_MEMBERS_COUNTED and len(words) > 2):
        return _unordered(reply)
    if name == "SSCAN" and isinstance(reply, list) and len(reply) == 2:
        return [reply[0], _unordered(reply[1])]
    if name == "XADD" and "*" in words and isinstance(reply, bytes):
        # An ID from each server's clock.
        return "<an ID made of the time>"
    if name == "EXPIRETIME" and isinstance(reply, int) and reply > 0:
        return "<a deadline>"
    if name == "PTTL" and isinstance(reply, int) and reply > 0:
        # Milliseconds left, read at two moments.
        return "<milliseconds left>"
    if name == "KEYS" and isinstance(reply, list):
        return sorted(reply)
    if name == "SCAN" and isinstance(reply, list):
        return [reply[0], sorted(reply[1])]
    if name == "XPENDING" and len(words) >= 6 and isinstance(reply, list):
        # Extended form: [id, consumer, idle ms, deliveries].
        return [[entry[0], entry[1], 0, entry[3]] for entry in reply]
    if name == "XINFO" and len(words) > 1:
        sub = words[1].upper()
        if sub == "CONSUMERS" and isinstance(reply, list):
            return [_without(c, {b"idle", b"inactive"}) for c in reply]
        if sub == "STREAM" and isinstance(reply, (list, tuple)):
            return _without(reply, {b"radix-tree-keys", b"radix-tree-nodes"})
    return reply


@pytest.fixture(scope="module")
def redis_server():
    """A redis-server from Debian on a Unix socket (no TCP port to race for), without
    persistence, in the C locale (SORT … ALPHA collates with `strcoll`: bytes there, as in
    Omnibus); killed when the module is done."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(
            "redis-server is not installed (scripts/client-tests.sh installs it)", pytrace=False
        )
    workdir = Path(tempfile.mkdtemp(prefix="omnibus-redis-peer-"))
    path = workdir / "redis.sock"
    process = subprocess.Popen(
        [binary, "--port", "0", "--unixsocket", str(path), "--save", "", "--appendonly", "no"]
        + ["--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "LC_ALL": "C"},
    )
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not path.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("redis-server did not start", pytrace=False)
            time.sleep(0.05)
        yield path
    finally:
        process.kill()
        process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def _connect_peer(path: Path) -> Resp:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(path))
    return Resp(sock)


def _connect_omnibus(redis_url: str) -> Resp:
    address = redis_url.split("://", 1)[1].split("/", 1)[0]
    return Resp(socket.create_connection((HOST, port_of(address)), timeout=IO_TIMEOUT_S))


def normalize_exec(queued: list[list[str]] | None, words: list[str], reply):
    """`normalize`, and for EXEC's answers each as its queued command's own would be."""
    if words[0].upper() == "EXEC" and queued is not None and isinstance(reply, list):
        return [normalize(w, r) for w, r in zip(queued, reply)]
    return normalize(words, reply)


def queue(queued: list[list[str]] | None, words: list[str], expected):
    """The commands queued since MULTI once `words` got `expected` from redis-server (None
    outside a transaction)."""
    name = words[0].upper()
    if name == "MULTI" and expected == ("status", "OK"):
        return []
    if name in ("EXEC", "DISCARD"):
        return None
    if queued is not None and expected == ("status", "QUEUED"):
        return queued + [words]
    return queued


def _empty(connection: Resp):
    """Deletes every key (FLUSHALL is off on the test broker)."""
    keys = connection.send("KEYS", "*")
    if keys:
        connection.send("DEL", *keys)


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("case", sorted(CASES))
def test_answers_match_redis_server(case, protocol, redis_server, redis_url):
    peer = _connect_peer(redis_server)
    omnibus = _connect_omnibus(redis_url)
    differences = []
    try:
        for connection in (peer, omnibus):
            if protocol == 3:
                assert _pairs(connection.send("HELLO", "3"))[2][1] == 3
            _empty(connection)
        # The commands queued since MULTI, so that EXEC's answers are set aside as each
        # command's own would be (SMEMBERS inside a transaction, say).
        queued = None
        for line in CASES[case]:
            words = shlex.split(line)
            raw = peer.send(*words)
            expected = normalize_exec(queued, words, raw)
            answered = normalize_exec(queued, words, omnibus.send(*words))
            queued = queue(queued, words, raw)
            if answered != expected:
                differences.append(
                    f"{line}\n    redis-server: {expected!r}\n    omnibus:      {answered!r}"
                )
    finally:
        peer.sock.close()
        omnibus.sock.close()
    assert not differences, f"RESP{protocol}, case {case}:\n" + "\n".join(differences)


def _sharded_pubsub_session(subscriber: Resp, publisher: Resp, protocol: int) -> list:
    """Sharded pub/sub (SSUBSCRIBE, SPUBLISH, SUNSUBSCRIBE, PUBSUB SHARD…) as one client
    sees it: every reply and push, in order. Shard channels and channels are not mixed (in
    Omnibus they are subjects of one router; see docs/redis.md)."""
    seen = []
    for connection in (subscriber, publisher):
        if protocol == 3:
            connection.send("HELLO", "3")
    seen.append(subscriber.send("SSUBSCRIBE", "orders.eu", "audit"))
    seen.append(subscriber.read())
    # Channels count apart from shard channels.
    seen.append(subscriber.send("SUBSCRIBE", "news"))
    seen.append(publisher.send("SPUBLISH", "orders.eu", "o-1"))
    seen.append(subscriber.read())
    seen.append(publisher.send("SPUBLISH", "nobody.here", "lost"))
    seen.append(sorted(publisher.send("PUBSUB", "SHARDCHANNELS")))
    seen.append(publisher.send("PUBSUB", "SHARDCHANNELS", "ord*"))
    seen.append(publisher.send("PUBSUB", "SHARDNUMSUB", "orders.eu", "audit", "none"))
    seen.append(publisher.send("PUBSUB", "CHANNELS"))
    seen.append(publisher.send("PUBSUB", "SHARDCHANNELS", "a", "b"))
    seen.append(subscriber.send("SUNSUBSCRIBE", "orders.eu"))
    if protocol == 2:
        # Still in subscribed mode.
        seen.append(subscriber.send("GET", "k"))
    seen.append(subscriber.send("SUNSUBSCRIBE"))
    seen.append(subscriber.send("SUNSUBSCRIBE"))
    seen.append(subscriber.send("UNSUBSCRIBE"))
    seen.append(publisher.send("SPUBLISH", "orders.eu", "o-2"))
    seen.append(subscriber.send("PING"))
    return seen


@pytest.mark.parametrize("protocol", [2, 3])
def test_sharded_pubsub_answers_match_redis_server(protocol, redis_server, redis_url):
    answers = []
    for connect in (lambda: _connect_peer(redis_server), lambda: _connect_omnibus(redis_url)):
        subscriber, publisher = connect(), connect()
        try:
            answers.append(_sharded_pubsub_session(subscriber, publisher, protocol))
        finally:
            subscriber.sock.close()
            publisher.sock.close()
    expected, answered = answers
    assert answered == expected


def test_answers_that_differ_on_purpose(redis_url):
    """What Omnibus answers where it differs from Redis by design (docs/redis.md)."""
    omnibus = _connect_omnibus(redis_url)
    try:
        _empty(omnibus)
        assert omnibus.send("XADD", "purpose", "1-1", "f", "v") == b"1-1"
        wrongtype = ("error", "WRONGTYPE Operation against a key holding the wrong kind of value")
        # A whole durable stream is not replaced by SET (Redis would overwrite it).
        assert omnibus.send("SET", "purpose", "x") == wrongtype
        # MSET too, all or nothing (Redis would overwrite the stream).
        assert omnibus.send("MSET", "other", "1", "purpose", "x") == wrongtype
        assert omnibus.send("EXISTS", "other") == 0
        assert omnibus.send("TYPE", "purpose") == ("status", "stream")
        assert omnibus.send("SELECT", "1") == ("error", "ERR DB index is out of range")
        # Redis 7.4's XREAD `+`: the last entry.
        assert omnibus.send("XREAD", "STREAMS", "purpose", "+") == [
            [b"purpose", [[b"1-1", [b"f", b"v"]]]]
        ]
        # Redis 7.2+'s XSETID: not below the largest deleted ID, even on an emptied stream
        # (Debian's 7.0 takes it).
        assert omnibus.send("XADD", "purpose", "2-1", "f", "v") == b"2-1"
        assert omnibus.send("XDEL", "purpose", "2-1") == 1
        assert omnibus.send("XTRIM", "purpose", "MAXLEN", "0") == 1
        assert omnibus.send("XSETID", "purpose", "1-5") == (
            "error",
            "ERR The ID specified in XSETID is smaller than current max_deleted_entry_id",
        )
        assert omnibus.send("XSETID", "purpose", "2-1") == ("status", "OK")
    finally:
        omnibus.sock.close()


# Fields of XINFO GROUPS that differ by design (docs/redis.md): entries-read and lag are
# counted in offsets, last-delivered-id is read back from the log, and Redis 7.0 (Debian's)
# makes consumers on XCLAIM/XAUTOCLAIM only when something is claimed, 7.2+ always.
GROUP_FIELDS_APART = {b"entries-read", b"lag", b"last-delivered-id", b"consumers"}


def _groups_apart(words: list[str], reply):
    """XINFO GROUPS' answer without the fields that differ by design."""
    if words[:2] == ["XINFO", "GROUPS"] and isinstance(reply, list):
        return [_without(g, GROUP_FIELDS_APART) for g in reply]
    return reply


@pytest.mark.parametrize(
    "family,seeds,length",
    [
        ("strings", range(40), 300),
        ("streams", range(30), 150),
        ("lists", range(40), 200),
        ("hashes", range(40), 200),
        ("sets", range(40), 200),
        ("zsets", range(40), 200),
        ("geo", range(40), 200),
    ],
)
def test_random_sequences_answer_as_redis_server_does(
    family, seeds, length, redis_server, redis_url
):
    peer = _connect_peer(redis_server)
    omnibus = _connect_omnibus(redis_url)
    try:
        for seed in seeds:
            for connection in (peer, omnibus):
                _empty(connection)
            # The commands queued since MULTI, so that EXEC's answers are set aside as each
            # command's own would be (a PTTL inside a transaction, say).
            queued = None
            for step, words in enumerate(sequence(family, seed, length)):
                raw = peer.send(*words)
                expected = normalize_exec(queued, words, raw)
                answered = normalize_exec(queued, words, omnibus.send(*words))
                if words[0] == "EXEC" and queued is not None and isinstance(expected, list):
                    expected = [_groups_apart(w, a) for w, a in zip(queued, expected)]
                    answered = [_groups_apart(w, a) for w, a in zip(queued, answered)]
                queued = queue(queued, words, raw)
                expected, answered = _groups_apart(words, expected), _groups_apart(words, answered)
                assert answered == expected, (
                    f"{family} seed {seed} step {step}: {shlex.join(words)}\n"
                    f"    redis-server: {expected!r}\n    omnibus:      {answered!r}"
                )
            # Leave no transaction open for the next seed.
            for connection in (peer, omnibus):
                connection.send("DISCARD")
    finally:
        peer.sock.close()
        omnibus.sock.close()
