"""redis-py against the Redis door's lists, as an application uses them: a job queue (a
producer LPUSHes, a consumer blocked in BRPOP on another connection is woken), blocked
clients served in the order they blocked, BLPOP over several keys and its timeout, the
reliable-queue pattern (BLMOVE to a processing list, LREM once done), pipelines, a blocked
client that goes away, the asyncio client, the nils as they are sent, and lists read back
whole after kill -9."""

from __future__ import annotations

import asyncio
import random
import socket
import threading
import time
from collections import deque
from urllib.parse import urlsplit

import pytest
import redis
import redis.asyncio

from harness import unique

# Long enough for a thread to reach its blocking command, on a busy machine too.
HEAD_START_S = 0.2
# A bound no answer that should come at once may reach.
ANSWER_TIMEOUT_S = 10.0


@pytest.fixture
def client(redis_url):
    connection = redis.Redis.from_url(redis_url, decode_responses=True)
    yield connection
    connection.close()


class Blocked:
    """A blocking command run on a connection of its own in a thread; `result` once done."""

    def __init__(self, redis_url: str, call):
        self.connection = redis.Redis.from_url(redis_url, decode_responses=True)
        self.result = None
        self.error = None
        self.thread = threading.Thread(target=self._run, args=(call,), daemon=True)
        self.thread.start()

    def _run(self, call):
        try:
            self.result = call(self.connection)
        except Exception as error:  # reported by the test thread
            self.error = error

    def waiting(self) -> bool:
        return self.thread.is_alive()

    def wait(self, timeout: float = ANSWER_TIMEOUT_S):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"still blocked after {timeout} s"
        self.connection.close()
        if self.error is not None:
            raise self.error
        return self.result


def test_a_job_queue_with_a_blocked_consumer(redis_url, client):
    queue = unique("jobs")
    consumer = Blocked(redis_url, lambda c: c.brpop(queue, timeout=30))
    time.sleep(HEAD_START_S)
    assert consumer.waiting(), "BRPOP on an empty list answered at once"
    assert client.lpush(queue, "job-1") == 1
    assert consumer.wait() == (queue, "job-1")
    assert client.exists(queue) == 0
    # First in, first out: LPUSH at the head, BRPOP from the tail.
    for job in ("job-2", "job-3", "job-4"):
        client.lpush(queue, job)
    assert client.lpush(queue, "job-5", "job-6") == 5
    assert client.lrange(queue, 0, -1) == ["job-6", "job-5", "job-4", "job-3", "job-2"]
    taken = [client.brpop(queue, timeout=1) for _ in range(5)]
    assert taken == [(queue, f"job-{n}") for n in range(2, 7)]
    assert client.brpop(queue, timeout=0.1) is None


def test_blocked_clients_are_served_in_the_order_they_blocked(redis_url, client):
    queue = unique("fair")
    first = Blocked(redis_url, lambda c: c.brpop(queue, timeout=30))
    time.sleep(HEAD_START_S)
    second = Blocked(redis_url, lambda c: c.brpop(queue, timeout=30))
    time.sleep(HEAD_START_S)
    assert first.waiting() and second.waiting()
    client.lpush(queue, "a")
    assert first.wait() == (queue, "a")
    time.sleep(HEAD_START_S)
    assert second.waiting(), "one push woke two clients"
    client.lpush(queue, "b")
    assert second.wait() == (queue, "b")
    # One push of two elements serves both, the first blocked first, then leaves none.
    first = Blocked(redis_url, lambda c: c.blpop(queue, timeout=30))
    time.sleep(HEAD_START_S)
    second = Blocked(redis_url, lambda c: c.blpop(queue, timeout=30))
    time.sleep(HEAD_START_S)
    assert client.rpush(queue, "c", "d") == 2
    assert first.wait() == (queue, "c")
    assert second.wait() == (queue, "d")
    assert client.llen(queue) == 0


def test_blpop_over_several_keys_and_its_timeout(redis_url, client):
    high, normal, low = unique("high"), unique("normal"), unique("low")
    client.rpush(low, "l1")
    client.rpush(normal, "n1", "n2")
    # The first key in the given order that has elements.
    assert client.blpop([high, normal, low], timeout=1) == (normal, "n1")
    assert client.brpop([high, low, normal], timeout=1) == (low, "l1")
    assert client.blpop([high, low, normal], timeout=1) == (normal, "n2")
    assert client.exists(high, normal, low) == 0
    # Blocked on all three: woken by a push to any of them, with that key's name.
    waiter = Blocked(redis_url, lambda c: c.blpop([high, normal, low], timeout=30))
    time.sleep(HEAD_START_S)
    client.rpush(low, "late")
    assert waiter.wait() == (low, "late")
    # Nothing comes: None once the timeout has passed, not before.
    for timeout in (0.3, 1):
        started = time.monotonic()
        assert client.blpop([high, normal], timeout=timeout) is None
        elapsed = time.monotonic() - started
        assert timeout <= elapsed < timeout + 2.0, f"BLPOP timeout {timeout} took {elapsed:.2f} s"
    with pytest.raises(redis.ResponseError, match="timeout is negative"):
        client.blpop([high], timeout=-1)
    with pytest.raises(redis.ResponseError, match="timeout is not a float or out of range"):
        client.execute_command("BLPOP", high, "soon")


def test_a_reliable_queue_with_blmove_and_lrem(redis_url, client):
    jobs, processing = unique("jobs"), unique("processing")
    client.lpush(jobs, "j1", "j2", "j3")
    # A worker takes the oldest job and keeps it in `processing` while it works.
    job = client.blmove(jobs, processing, timeout=1, src="RIGHT", dest="LEFT")
    assert job == "j1"
    assert client.lrange(processing, 0, -1) == ["j1"]
    assert client.lrem(processing, 1, job) == 1
    assert client.exists(processing) == 0
    # A worker that dies after taking j2 leaves it in `processing`; a reaper puts it back at
    # the tail of `jobs`, so it is the next to be taken.
    assert client.lmove(jobs, processing, "RIGHT", "LEFT") == "j2"
    assert client.lrange(jobs, 0, -1) == ["j3"]
    assert client.lmove(processing, jobs, "RIGHT", "RIGHT") == "j2"
    assert client.blmove(jobs, processing, timeout=1, src="RIGHT", dest="LEFT") == "j2"
    assert client.lrem(processing, 1, "j2") == 1
    assert client.rpoplpush(jobs, processing) == "j3"
    assert client.lrem(processing, 0, "j3") == 1
    # A worker blocked on an empty queue takes the next job as it comes.
    worker = Blocked(
        redis_url, lambda c: c.blmove(jobs, processing, timeout=30, src="RIGHT", dest="LEFT")
    )
    time.sleep(HEAD_START_S)
    assert worker.waiting()
    client.lpush(jobs, "j4")
    assert worker.wait() == "j4"
    assert client.lrange(processing, 0, -1) == ["j4"]
    assert client.exists(jobs) == 0
    assert client.blmove(jobs, processing, timeout=0.1, src="RIGHT", dest="LEFT") is None
    assert client.brpoplpush(jobs, processing, timeout=0.1) is None
    assert client.lrange(processing, 0, -1) == ["j4"]


def test_pipelines_of_list_commands(client):
    log = unique("log")
    with client.pipeline(transaction=True) as pipe:
        for n in range(1, 6):
            pipe.rpush(log, f"e{n}").ltrim(log, -3, -1)
        pipe.lrange(log, 0, -1)
        replies = pipe.execute()
    assert replies[:-1] == [1, True, 2, True, 3, True, 4, True, 4, True]
    assert replies[-1] == ["e3", "e4", "e5"]
    with client.pipeline(transaction=False) as pipe:
        pipe.lpush(log, "e2").rpop(log, 2).lrange(log, 0, -1).llen(log)
        assert pipe.execute() == [4, ["e5", "e4"], ["e2", "e3"], 2]
    # A command that fails inside EXEC fails alone; the others are done.
    with client.pipeline(transaction=True) as pipe:
        pipe.rpush(log, "e6").lset(log, 10, "x").lset(log, 0, "first").lrange(log, 0, -1)
        replies = pipe.execute(raise_on_error=False)
    assert replies[0] == 3
    assert isinstance(replies[1], redis.ResponseError) and "index out of range" in str(replies[1])
    assert replies[2:] == [True, ["first", "e3", "e6"]]


def test_lists_and_other_commands_on_their_keys(client):
    name, text = unique("list"), unique("text")
    assert client.rpush(name, "a", "b", "c", "b") == 4
    assert client.type(name) == "list"
    assert client.linsert(name, "BEFORE", "c", "x") == 5
    assert client.lpos(name, "b") == 1
    assert client.lpos(name, "b", rank=-1) == 4
    assert client.lpos(name, "b", count=0) == [1, 4]
    assert client.lindex(name, -1) == "b"
    assert client.lmpop(2, text, name, direction="RIGHT", count=2) == [name, ["b", "c"]]
    assert client.lpop(name, 0) == []
    client.set(text, "v")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        client.lpush(text, "a")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        client.get(name)
    assert client.mget(name, text) == [None, "v"]
    assert client.expire(name, 100) is True
    assert 99 <= client.ttl(name) <= 100
    assert client.persist(name) is True
    assert name in set(client.scan_iter(match=name, _type="list"))
    assert name not in set(client.scan_iter(match=name, _type="string"))
    assert client.set(name, "now a string") is True
    assert client.type(name) == "string"
    assert client.delete(name, text) == 2
    assert client.lpop(name) is None
    assert client.lpop(name, 2) is None


def test_a_blocked_client_that_disconnects_takes_nothing(redis_url, client):
    queue, processing = unique("orphan"), unique("processing")
    address = urlsplit(redis_url)
    sockets = []
    for command in (
        ["BLPOP", queue, "0"],
        ["BLMOVE", queue, processing, "LEFT", "LEFT", "0"],
        ["BLMPOP", "0", "1", queue, "LEFT"],
    ):
        sock = socket.create_connection((address.hostname, address.port), timeout=5)
        sock.sendall(encode(command))
        sockets.append(sock)
    time.sleep(HEAD_START_S)
    for sock in sockets:
        sock.close()
    time.sleep(HEAD_START_S)
    assert client.lpush(queue, "job") == 1
    assert client.lpop(queue) == "job"
    assert client.exists(processing) == 0
    # A blocked client that goes away leaves the next one its turn.
    sock = socket.create_connection((address.hostname, address.port), timeout=5)
    sock.sendall(encode(["BRPOP", queue, "0"]))
    time.sleep(HEAD_START_S)
    waiter = Blocked(redis_url, lambda c: c.brpop(queue, timeout=30))
    time.sleep(HEAD_START_S)
    sock.close()
    time.sleep(HEAD_START_S)
    client.rpush(queue, "next")
    assert waiter.wait() == (queue, "next")
    assert client.exists(queue) == 0


def test_asyncio_consumers_share_a_queue(redis_url):
    async def main():
        producer = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
        queue = unique("async-jobs")

        async def consume() -> list[str]:
            consumer = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
            got = []
            try:
                while True:
                    popped = await consumer.brpop(queue, timeout=1)
                    if popped is None:
                        return got
                    got.append(popped[1])
            finally:
                await consumer.aclose()

        try:
            consumers = [asyncio.create_task(consume()) for _ in range(3)]
            await asyncio.sleep(HEAD_START_S)
            jobs = [f"job-{n}" for n in range(30)]
            for job in jobs:
                await producer.lpush(queue, job)
            taken = await asyncio.wait_for(asyncio.gather(*consumers), ANSWER_TIMEOUT_S)
            # Each job once, and each consumer in the order they were pushed.
            assert sorted(job for part in taken for job in part) == sorted(jobs)
            for part in taken:
                assert part == sorted(part, key=jobs.index)
            assert await producer.exists(queue) == 0
            # BLMPOP and a pipeline, asynchronously.
            await producer.rpush(queue, "a", "b", "c")
            assert await producer.blmpop(1, 1, queue, direction="LEFT", count=2) == [
                queue,
                ["a", "b"],
            ]
            async with producer.pipeline() as pipe:
                replies = await pipe.rpush(queue, "d").lrange(queue, 0, -1).delete(queue).execute()
            assert replies == [2, ["c", "d"], 1]
        finally:
            await producer.aclose()

    asyncio.run(main())


def encode(words: list[str]) -> bytes:
    out = b"*%d\r\n" % len(words)
    for word in words:
        data = word.encode()
        out += b"$%d\r\n%s\r\n" % (len(data), data)
    return out


def raw_replies(redis_url: str, protocol: int, commands: list[list[str]]) -> list[bytes]:
    """Each command's reply as the bytes sent, on one connection (after HELLO 3 for RESP3)."""
    address = urlsplit(redis_url)
    sock = socket.create_connection((address.hostname, address.port), timeout=ANSWER_TIMEOUT_S)
    replies = []
    try:
        if protocol == 3:
            sock.sendall(encode(["HELLO", "3"]))
            read_reply(sock, b"")
        buffer = b""
        for command in commands:
            sock.sendall(encode(command))
            reply, buffer = read_reply(sock, buffer)
            replies.append(reply)
    finally:
        sock.close()
    return replies


def read_reply(sock: socket.socket, buffer: bytes) -> tuple[bytes, bytes]:
    """One whole reply (its raw bytes) off `sock`, and what came after it."""
    while True:
        end = reply_end(buffer, 0)
        if end is not None:
            return buffer[:end], buffer[end:]
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("the server closed the connection")
        buffer += chunk


def reply_end(buffer: bytes, start: int):
    """Where the reply at `start` ends, or None if `buffer` does not hold all of it yet."""
    line_end = buffer.find(b"\r\n", start)
    if line_end < 0:
        return None
    kind, rest, after = buffer[start : start + 1], buffer[start + 1 : line_end], line_end + 2
    if kind in (b"$", b"=", b"!"):
        length = int(rest)
        if length < 0:
            return after
        return after + length + 2 if len(buffer) >= after + length + 2 else None
    if kind in (b"*", b"~", b">", b"%"):
        count = int(rest) * (2 if kind == b"%" else 1)
        for _ in range(max(count, 0)):
            after = reply_end(buffer, after)
            if after is None:
                return None
        return after
    return after


@pytest.mark.parametrize("protocol", [2, 3])
def test_nils_as_sent(redis_url, protocol):
    """What redis-py folds into None: RESP2 has a nil bulk string and a nil array, RESP3 one
    null, and Redis answers each command with its own: a nil array for LPOP with a count, and
    for every blocking command that timed out (BLMOVE and BRPOPLPUSH too, though they answer a
    bulk string otherwise)."""
    name, missing = unique("shapes"), unique("missing")
    replies = raw_replies(
        redis_url,
        protocol,
        [
            ["RPUSH", name, "a"],
            ["LPOP", missing],
            ["LPOP", missing, "2"],
            ["RPOP", missing, "0"],
            ["LPOP", name, "0"],
            ["LINDEX", name, "5"],
            ["LPOS", name, "z"],
            ["LPOS", name, "z", "COUNT", "0"],
            ["LMOVE", missing, name, "LEFT", "LEFT"],
            ["RPOPLPUSH", missing, name],
            ["LMPOP", "1", missing, "LEFT"],
            ["BLPOP", missing, "0.01"],
            ["BRPOP", missing, "0.01"],
            ["BLMOVE", missing, name, "LEFT", "LEFT", "0.01"],
            ["BRPOPLPUSH", missing, name, "0.01"],
            ["BLMPOP", "0.01", "1", missing, "LEFT"],
            ["MULTI"],
            ["BLPOP", missing, "0"],
            ["BRPOP", missing, "0"],
            ["BLMOVE", missing, name, "LEFT", "LEFT", "0"],
            ["BRPOPLPUSH", missing, name, "0"],
            ["BLMPOP", "0", "1", missing, "LEFT"],
            ["EXEC"],
            ["DEL", name],
        ],
    )
    if protocol == 2:
        bulk, array = b"$-1\r\n", b"*-1\r\n"
    else:
        bulk = array = b"_\r\n"
    empty = b"*0\r\n"
    assert replies == [
        b":1\r\n",
        bulk,
        array,
        array,
        empty,
        bulk,
        bulk,
        empty,
        bulk,
        bulk,
        array,
        array,
        array,
        array,
        array,
        array,
        b"+OK\r\n",
        *[b"+QUEUED\r\n"] * 5,
        # Inside MULTI, BLMOVE and BRPOPLPUSH answer as LMOVE and RPOPLPUSH do.
        b"*5\r\n" + array + array + bulk + bulk + array,
        b":1\r\n",
    ]


def test_lists_survive_kill_9(broker, redis_url):
    """Everything acknowledged is there after kill -9 and a restart, and nothing popped comes
    back: lists pushed at both ends and popped, changed by LSET, LINSERT, LREM, LTRIM, LMOVE and
    BLPOP, one with a TTL, one emptied; and a model of a few hundred more commands."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    main, timed, emptied, moved = (unique(n) for n in ("main", "timed", "emptied", "moved"))
    assert client.rpush(main, "1", "2", "3") == 3
    assert client.lpush(main, "0", "-1") == 5
    assert client.lpop(main) == "-1"
    assert client.rpop(main) == "3"
    assert client.lset(main, 1, "one") is True
    assert client.linsert(main, "BEFORE", "2", "1.5") == 4
    assert client.rpush(main, "x", "x", "y", "x") == 8
    assert client.lrem(main, 2, "x") == 2
    assert client.lrange(main, 0, -1) == ["0", "one", "1.5", "2", "y", "x"]
    assert client.rpush(timed, "keep", "me") == 2
    assert client.expire(timed, 1000) is True
    assert client.rpush(emptied, "gone") == 1
    assert client.blpop(emptied, timeout=1) == (emptied, "gone")
    assert client.rpush(moved, "a", "b", "c", "d") == 4
    assert client.lmove(moved, main, "LEFT", "RIGHT") == "a"
    assert client.ltrim(moved, 0, 1) is True
    assert client.lpop(moved, 1) == ["b"]

    # A few hundred more commands over three lists, each answer checked against a model.
    rng = random.Random(7)
    keys = [unique("model") for _ in range(3)]
    model = {key: deque() for key in keys}
    for n in range(300):
        key, other = rng.sample(keys, 2)
        action = rng.randrange(7)
        if action <= 1:
            values = [f"v{n}-{i}" for i in range(rng.randrange(1, 4))]
            if action == 0:
                assert client.lpush(key, *values) == len(model[key]) + len(values)
                model[key].extendleft(values)
            else:
                assert client.rpush(key, *values) == len(model[key]) + len(values)
                model[key].extend(values)
        elif action == 2:
            expected = model[key].popleft() if model[key] else None
            assert client.lpop(key) == expected
        elif action == 3:
            expected = model[key].pop() if model[key] else None
            assert client.rpop(key) == expected
        elif action == 4:
            expected = model[key].pop() if model[key] else None
            assert client.lmove(key, other, "RIGHT", "LEFT") == expected
            if expected is not None:
                model[other].appendleft(expected)
        elif action == 5 and model[key]:
            index = rng.randrange(len(model[key]))
            assert client.lset(key, index, f"set{n}") is True
            model[key][index] = f"set{n}"
        else:
            with client.pipeline(transaction=True) as pipe:
                pipe.rpush(key, f"p{n}").lpop(key)
                replies = pipe.execute()
            model[key].append(f"p{n}")
            assert replies == [len(model[key]), model[key].popleft()]
    before = {key: client.lrange(key, 0, -1) for key in [main, moved, timed, *keys]}
    assert {key: before[key] for key in keys} == {key: list(model[key]) for key in keys}
    client.close()

    broker.restart()
    client = redis.Redis.from_url(broker.redis_url, decode_responses=True)
    try:
        after = {key: client.lrange(key, 0, -1) for key in before}
        assert after == before
        assert after[main] == ["0", "one", "1.5", "2", "y", "x", "a"]
        assert after[moved] == ["c"]
        for key, values in before.items():
            assert client.type(key) == ("list" if values else "none")
            assert client.llen(key) == len(values)
        assert client.exists(emptied) == 0
        assert 0 < client.ttl(timed) <= 1000
        assert client.ttl(main) == -1
        # Still a working list: pushes and pops go on from where they were.
        assert client.rpush(main, "z") == 8
        assert client.lpop(main) == "0"
    finally:
        client.close()
