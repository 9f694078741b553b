"""redis-py, the Redis client for Python, against the Redis door: strings with TTL, the
idempotency pattern (SETEX then EXISTS/GET, expiry observed), a lock with SET NX PX,
pipelines (transactions by default) and plain pipelines, RESP3, the asyncio client, and the
errors a client meets."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest
import redis
import redis.asyncio

from harness import unique


@pytest.fixture
def client(redis_url):
    connection = redis.Redis.from_url(redis_url, decode_responses=True)
    yield connection
    connection.close()


def test_set_get_and_ttl(client):
    key = unique("greeting")
    assert client.ping() is True
    assert client.set(key, "hello") is True
    assert client.get(key) == "hello"
    assert client.ttl(key) == -1
    assert client.set(key, "bye", ex=100, get=True) == "hello"
    assert 99 <= client.ttl(key) <= 100
    assert client.persist(key) is True
    assert client.ttl(key) == -1
    assert client.ttl(unique("missing")) == -2
    assert client.getdel(key) == "bye"
    assert client.get(key) is None


def test_idempotency_keys_expire(client):
    """The seed's pattern: record a result under idempotency:<key> for a while; a retry
    that finds it skips the work."""
    key = f"idempotency:{unique('order')}"
    assert client.setex(key, 86_400, "result-1") is True
    assert client.exists(key) == 1
    assert client.get(key) == "result-1"
    short = f"idempotency:{unique('short')}"
    client.psetex(short, 100, "r")
    assert client.exists(short) == 1
    time.sleep(0.25)
    assert client.exists(short) == 0
    assert client.get(short) is None


def test_a_lock_with_set_nx_px(client):
    lock = unique("lock")
    assert client.set(lock, "token-a", nx=True, px=30_000) is True
    assert client.set(lock, "token-b", nx=True, px=30_000) is None
    assert 29_000 <= client.pttl(lock) <= 30_000
    # Released by its holder, then free for the next.
    assert client.delete(lock) == 1
    assert client.set(lock, "token-b", nx=True, px=30_000) is True


def test_counters_and_many_keys(client):
    prefix = unique("k")
    assert client.incr(f"{prefix}:n") == 1
    assert client.incrby(f"{prefix}:n", 9) == 10
    assert client.decr(f"{prefix}:n") == 9
    assert client.mset({f"{prefix}:a": "1", f"{prefix}:b": "2"}) is True
    assert client.mget(f"{prefix}:a", f"{prefix}:b", f"{prefix}:c") == ["1", "2", None]
    assert client.append(f"{prefix}:a", "23") == 3
    assert client.strlen(f"{prefix}:a") == 3
    assert client.type(f"{prefix}:a") == "string"
    assert sorted(client.keys(f"{prefix}:*")) == [f"{prefix}:a", f"{prefix}:b", f"{prefix}:n"]
    assert sorted(client.scan_iter(match=f"{prefix}:*", count=1)) == [
        f"{prefix}:a",
        f"{prefix}:b",
        f"{prefix}:n",
    ]
    assert client.dbsize() >= 3
    client.set(f"{prefix}:text", "abc")
    with pytest.raises(redis.ResponseError, match="not an integer"):
        client.incr(f"{prefix}:text")


def test_pipelines_are_transactions_by_default(client):
    key = unique("tx")
    with client.pipeline() as pipe:
        pipe.set(key, "1").incr(key).incrby(key, 5).get(key)
        assert pipe.execute() == [True, 2, 7, "7"]
    # A plain pipeline: many commands in flight, answered in order.
    with client.pipeline(transaction=False) as pipe:
        for number in range(500):
            pipe.set(f"{key}:{number}", number)
        pipe.get(f"{key}:499")
        replies = pipe.execute()
    assert replies[-1] == "499" and all(reply is True for reply in replies[:-1])
    # A command the server refuses while queueing aborts the whole transaction.
    with client.pipeline() as pipe:
        pipe.set(f"{key}:never", "1")
        pipe.execute_command("NOSUCHCOMMAND", "x")
        with pytest.raises(redis.ResponseError):
            pipe.execute()
    assert client.get(f"{key}:never") is None


def test_errors_are_redis_words(client):
    with pytest.raises(redis.ResponseError, match="DB index is out of range"):
        client.execute_command("SELECT", "1")
    with pytest.raises(redis.ResponseError, match="wrong number of arguments for 'get' command"):
        client.execute_command("GET")
    with pytest.raises(
        redis.ResponseError,
        match="unknown command 'FOO', with args beginning with: 'a' 'b'",
    ):
        client.execute_command("FOO", "a", "b")
    assert client.client_setname("worker-1") is True
    assert client.client_getname() == "worker-1"
    assert client.info("server")["redis_version"] == "7.4.0"


def test_info_and_config_as_redis_py_parses_them(client):
    info = client.info()
    assert info["role"] == "master"
    assert info["maxmemory_policy"] == "noeviction"
    assert info["used_memory"] > 1024 * 1024
    assert len(info["run_id"]) == 40
    assert info["total_commands_processed"] > 0
    assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    assert client.config_get("append*") == {"appendonly": "yes", "appendfsync": "always"}
    # What monitoring tools and exporters read: the listener's address, the data folder,
    # no cluster mode, no password.
    found = client.config_get("*")
    assert found["bind"] == "127.0.0.1"
    assert found["cluster-enabled"] == "no" and found["requirepass"] == ""
    assert os.path.isdir(found["dir"]) and int(found["io-threads"]) >= 1
    with pytest.raises(redis.ResponseError, match="CONFIG SET failed .* not supported by Omnibus"):
        client.config_set("maxmemory", "1mb")


def test_command_table_as_redis_py_reads_it(client):
    table = client.command()
    assert client.command_count() == len(table)
    assert table["get"]["arity"] == 2
    assert table["get"]["first_key_pos"] == 1
    assert "readonly" in table["get"]["flags"]
    assert table["mset"]["step_count"] == 2
    assert table["xreadgroup"]["arity"] == -7
    assert table["hset"]["arity"] == -4
    assert table["zadd"]["arity"] == -4
    assert table["evalsha"]["arity"] == -3
    assert table["fcall"]["arity"] == -3 and table["geosearch"]["arity"] == -7
    assert "lolwut" not in table
    assert table["migrate"]["arity"] == -6 and "movablekeys" in table["migrate"]["flags"]
    assert client.command_getkeys("MIGRATE", "h", "1", "", "0", "5", "KEYS", "a", "b") == [
        "a",
        "b",
    ]
    assert "xautoclaim" in client.command_list()
    assert client.command_list(pattern="x*") == sorted(n for n in table if n.startswith("x"))
    assert client.command_getkeys("MSET", "a", "1", "b", "2") == ["a", "b"]
    assert client.command_getkeys("XREAD", "COUNT", "1", "STREAMS", "s", "t", "0", "0") == [
        "s",
        "t",
    ]


def test_stream_keys_spelled_with_colons(client):
    key = f"{unique('orders')}:eu:paid"
    first = client.xadd(key, {"amount": "10"})
    client.xgroup_create(key, "billing", id="0")
    read = client.xreadgroup("billing", "w1", {key: ">"}, count=10)
    assert read[0][0] == key
    assert [entry_id for entry_id, _ in read[0][1]] == [first]
    assert client.type(key) == "stream"
    assert client.keys(f"{key.split(':')[0]}:*") == [key]


def test_resp3(redis_url):
    connection = redis.Redis.from_url(redis_url, protocol=3, decode_responses=True)
    try:
        key = unique("r3")
        assert connection.set(key, "v", ex=60) is True
        assert connection.get(key) == "v"
        assert connection.get(unique("none")) is None
        hello = connection.execute_command("HELLO", "3")
        assert hello["proto"] == 3 and hello["server"] == "redis"
    finally:
        connection.close()


def test_asyncio_client(redis_url):
    async def main():
        connection = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
        try:
            key = unique("async")
            await connection.set(key, "1")
            async with connection.pipeline() as pipe:
                replies = await pipe.incr(key).expire(key, 60).ttl(key).execute()
            assert replies == [2, True, 60]
        finally:
            await connection.aclose()

    asyncio.run(main())


def wait_message(pubsub, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
        if message is not None:
            return message
    raise AssertionError(f"no pub/sub message within {timeout} s")


@pytest.mark.parametrize("protocol", [2, 3])
def test_pubsub_channels_and_patterns(redis_url, client, protocol):
    subscriber = redis.Redis.from_url(redis_url, protocol=protocol, decode_responses=True)
    pubsub = subscriber.pubsub()
    try:
        channel = f"{unique('orders')}.created"
        pubsub.subscribe(channel)
        pubsub.psubscribe(channel.split(".")[0] + ".*")
        # Both confirmations arrive before anything is published.
        for _ in range(2):
            assert pubsub.get_message(timeout=5)["type"] in ("subscribe", "psubscribe")
        assert client.publish(channel, "o-1") == 2
        kinds = sorted(wait_message(pubsub)["type"] for _ in range(2))
        assert kinds == ["message", "pmessage"]
        pubsub.unsubscribe(channel)
        pubsub.punsubscribe()
    finally:
        pubsub.close()
        subscriber.close()


@pytest.mark.parametrize("protocol", [2, 3])
def test_sharded_pubsub(redis_url, client, protocol):
    """Redis 7's sharded pub/sub as redis-py speaks it: SSUBSCRIBE, SPUBLISH, `smessage`."""
    subscriber = redis.Redis.from_url(redis_url, protocol=protocol, decode_responses=True)
    pubsub = subscriber.pubsub()
    try:
        channel = f"{unique('shard')}.updates"
        pubsub.ssubscribe(channel)
        confirmation = pubsub.get_sharded_message(timeout=5)
        assert confirmation["type"] == "ssubscribe" and confirmation["data"] == 1
        assert client.pubsub_shardnumsub(channel) == [(channel, 1)]
        assert client.spublish(channel, "u-1") == 1
        deadline = time.monotonic() + 5
        message = None
        while message is None and time.monotonic() < deadline:
            message = pubsub.get_sharded_message(ignore_subscribe_messages=True, timeout=0.1)
        assert message is not None
        assert (message["type"], message["channel"], message["data"]) == (
            "smessage",
            channel,
            "u-1",
        )
        pubsub.sunsubscribe(channel)
    finally:
        pubsub.close()
        subscriber.close()


def test_pubsub_across_doors_with_nats(redis_url, nats_url, client):
    """A Redis PUBLISH reaches a NATS subscriber of the same subject, and a NATS publish
    reaches a Redis subscriber; PUBSUB NUMSUB and CHANNELS count the NATS subscriber too."""
    import nats

    channel = f"{unique('events')}.created"
    subscriber = redis.Redis.from_url(redis_url, decode_responses=True)
    pubsub = subscriber.pubsub()
    pubsub.subscribe(channel)
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"

    async def main():
        nc = await nats.connect(nats_url)
        try:
            sub = await nc.subscribe(channel)
            wildcard = await nc.subscribe(channel.rsplit(".", 1)[0] + ".*")
            await nc.flush()
            # PUBSUB counts and lists the NATS subscriber of the subject itself (a PUBLISH
            # reaches it), not the wildcard one; NUMPAT counts Redis patterns only.
            assert client.pubsub_numsub(channel) == [(channel, 2)]
            assert client.execute_command("PUBSUB", "SHARDNUMSUB", channel) == [channel, 1]
            assert channel in client.pubsub_channels(channel.split(".")[0] + "*")
            assert client.execute_command("PUBSUB", "SHARDCHANNELS", channel) == [channel]
            await wildcard.unsubscribe()
            await nc.flush()
            assert client.publish(channel, "from-redis") == 2
            message = await sub.next_msg(timeout=5)
            assert message.data == b"from-redis"
            await nc.publish(channel, b"from-nats")
            await nc.flush()
        finally:
            await nc.close()

    try:
        asyncio.run(main())
        payloads = [wait_message(pubsub)["data"] for _ in range(2)]
        assert payloads == ["from-redis", "from-nats"]
    finally:
        pubsub.close()
        subscriber.close()


def test_stream_writes_are_not_pubsub_messages(redis_url, nats_url, client):
    """In Redis a stream key is not a channel: SUBSCRIBE to a stream's key and a pattern
    covering it hear nothing of XADD (as with redis-server), while a NATS subscriber of the
    stream's subject still gets the record, and a PUBLISH after it reaches the pattern."""
    import nats

    key = unique("feed")
    subscriber = redis.Redis.from_url(redis_url, decode_responses=True)
    pubsub = subscriber.pubsub()
    pubsub.subscribe(key)
    pubsub.psubscribe(f"{key}*")
    for _ in range(2):
        assert pubsub.get_message(timeout=5)["type"] in ("subscribe", "psubscribe")

    async def main():
        nc = await nats.connect(nats_url)
        try:
            sub = await nc.subscribe(key)
            await nc.flush()
            client.xadd(key, {"value": "appended"})
            record = await sub.next_msg(timeout=5)
            assert record.data == b"appended"
        finally:
            await nc.close()

    try:
        asyncio.run(main())
        # Published after the XADD was answered: had the record reached the pattern or the
        # channel, it would be the first message.
        assert client.publish(f"{key}.after", "published") == 1
        message = wait_message(pubsub)
        assert (message["type"], message["channel"], message["data"]) == (
            "pmessage",
            f"{key}.after",
            "published",
        )
        assert pubsub.get_message(ignore_subscribe_messages=True, timeout=0.3) is None
    finally:
        pubsub.close()
        subscriber.close()


# Streams and consumer groups. Stream keys are Omnibus stream names: no ':'.


def stream_key(name: str) -> str:
    return unique(name).replace(":", "-")


def test_streams_xadd_xrange_xread(client):
    key = stream_key("events")
    first = client.xadd(key, {"value": "a", "kind": "created"})
    second = client.xadd(key, {"value": "b"})
    assert first < second or len(first) < len(second)
    assert client.xlen(key) == 2
    entries = client.xrange(key)
    assert entries == [(first, {"value": "a", "kind": "created"}), (second, {"value": "b"})]
    assert client.xrevrange(key, count=1) == [(second, {"value": "b"})]
    assert client.xread({key: first}) == [[key, [(second, {"value": "b"})]]]
    assert client.xread({key: "$"}, block=100) == []
    assert client.xadd(key, {"value": "c"}, id="99999999999999-0") == "99999999999999-0"
    with pytest.raises(redis.ResponseError, match="equal or smaller than the target stream top item"):
        client.xadd(key, {"value": "d"}, id="99999999999999-0")
    with pytest.raises(redis.ResponseError, match="Invalid stream ID specified as stream command argument"):
        client.xrange(key, min="bad")
    assert client.xdel(key, second) == 1
    assert [entry_id for entry_id, _ in client.xrange(key)] == [first, "99999999999999-0"]
    assert client.xinfo_stream(key)["max-deleted-entry-id"] == second
    assert client.xtrim(key, maxlen=1, approximate=False) == 1
    assert client.xlen(key) == 1


def test_stream_keys_among_key_commands(client):
    """A stream key is a key: KEYS, SCAN (with TYPE and MATCH), DBSIZE and TYPE see it, TTL is
    -1 until EXPIRE gives it one, DEL deletes it; XREAD's `+` reads its last entry (Redis
    7.4)."""
    key = stream_key("keyed")
    plain = unique("plain")
    client.set(plain, "x")
    client.xadd(key, {"value": "a"}, id="1-0")
    client.xadd(key, {"value": "b"}, id="2-0")
    assert client.xread({key: "+"}, count=5) == [[key, [("2-0", {"value": "b"})]]]
    assert key in client.keys("*")
    assert client.keys(key) == [key]
    assert list(client.scan_iter(match=key, count=1)) == [key]
    assert key in set(client.scan_iter(_type="stream"))
    assert key not in set(client.scan_iter(_type="string"))
    assert plain in set(client.scan_iter(_type="string"))
    before = client.dbsize()
    assert client.type(key) == "stream"
    assert client.ttl(key) == -1
    assert client.expire(key, 100) is True
    assert 99 <= client.ttl(key) <= 100
    assert client.persist(key) is True
    assert client.ttl(key) == -1
    assert client.delete(key, plain) == 2
    assert client.exists(key) == 0
    assert client.dbsize() <= before - 2  # keys of earlier tests may expire meanwhile
    assert client.keys(key) == []
    assert client.xadd(key, {"value": "again"}, id="1-0") == "1-0"
    assert client.unlink(key) == 1


def test_a_stream_key_with_a_ttl_goes_with_its_group(client):
    """A per-session stream: EXPIRE gives the stream key a deadline, XADD keeps it, and at
    the deadline the stream goes with its consumer group; the next XADD makes a new one."""
    key = stream_key("session")
    client.xadd(key, {"value": "a"}, id="1-0")
    client.xgroup_create(key, "workers", id="0")
    with client.pipeline(transaction=False) as pipe:
        pipe.xadd(key, {"value": "b"}, id="2-0")
        pipe.pexpire(key, 300)
        pipe.pttl(key)
        _, expired, pttl = pipe.execute()
    assert expired is True
    assert 0 < pttl <= 300
    assert client.exists(key) == 1
    deadline = time.monotonic() + 5
    while client.exists(key) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.exists(key) == 0
    assert client.ttl(key) == -2
    assert key not in client.keys(key)
    with pytest.raises(redis.ResponseError, match="no such key"):
        client.xinfo_groups(key)
    assert client.xadd(key, {"value": "c"}, id="1-0") == "1-0"
    assert client.xlen(key) == 1
    assert client.ttl(key) == -1
    assert client.xinfo_groups(key) == []
    assert client.delete(key) == 1


def test_streams_a_pipeline_of_xadds(client):
    key = stream_key("piped")
    for transaction in (True, False):
        with client.pipeline(transaction=transaction) as pipe:
            for index in range(200):
                pipe.xadd(key, {"n": str(index)})
            ids = pipe.execute()
        assert len(ids) == 200
        assert ids == sorted(ids, key=lambda i: tuple(int(p) for p in i.split("-")))
    assert client.xlen(key) == 400


def test_streams_consumer_groups(client):
    key = stream_key("jobs")
    client.xgroup_create(key, "workers", id="$", mkstream=True)
    with pytest.raises(redis.ResponseError, match="BUSYGROUP Consumer Group name already exists"):
        client.xgroup_create(key, "workers", id="$")
    ids = [client.xadd(key, {"job": str(index)}) for index in range(6)]
    first = client.xreadgroup("workers", "alice", {key: ">"}, count=3)
    second = client.xreadgroup("workers", "bob", {key: ">"}, count=10)
    assert [entry_id for entry_id, _ in first[0][1]] == ids[:3]
    assert [entry_id for entry_id, _ in second[0][1]] == ids[3:]
    assert client.xreadgroup("workers", "bob", {key: ">"}, count=10) == []
    assert client.xack(key, "workers", ids[0], ids[3]) == 2
    summary = client.xpending(key, "workers")
    assert summary["pending"] == 4
    assert summary["min"] == ids[1] and summary["max"] == ids[5]
    assert {c["name"]: c["pending"] for c in summary["consumers"]} == {"alice": 2, "bob": 2}
    detail = client.xpending_range(key, "workers", min="-", max="+", count=10, consumername="alice")
    assert [(d["message_id"], d["times_delivered"]) for d in detail] == [(ids[1], 1), (ids[2], 1)]
    # alice crashed: bob takes her entries once idle.
    time.sleep(0.05)
    cursor, claimed, deleted = client.xautoclaim(key, "workers", "bob", min_idle_time=20, start_id="0-0")
    assert cursor == "0-0" and deleted == []
    assert [entry_id for entry_id, _ in claimed] == [ids[1], ids[2], ids[4], ids[5]]
    with pytest.raises(redis.ResponseError, match="NOGROUP No such key"):
        client.xreadgroup("ghosts", "c", {key: ">"})
    groups = client.xinfo_groups(key)
    assert [(g["name"], g["pending"], g["consumers"]) for g in groups] == [("workers", 4, 2)]
    info = client.xinfo_stream(key)
    assert info["length"] == 6 and info["groups"] == 1
    assert info["first-entry"] == (ids[0], {"job": "0"})
    assert info["last-entry"] == (ids[5], {"job": "5"})
    consumers = client.xinfo_consumers(key, "workers")
    assert {c["name"]: c["pending"] for c in consumers} == {"alice": 0, "bob": 4}


def test_streams_wrongtype(client):
    text, stream = unique("text"), stream_key("log")
    client.set(text, "x")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        client.xadd(text, {"value": "v"})
    client.xadd(stream, {"value": "v"})
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        client.get(stream)
    assert client.type(stream) == "stream"


def test_watch_aborts_a_transaction(client):
    key = unique("balance")
    client.set(key, "10")
    with client.pipeline() as pipe:
        pipe.watch(key)
        assert pipe.get(key) == "10"
        client.set(key, "11")  # another connection of the pool
        pipe.multi()
        pipe.set(key, "12")
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert client.get(key) == "11"


def test_streams_xinfo_stream_full(client):
    key = stream_key("full")
    client.xgroup_create(key, "workers", id="$", mkstream=True)
    ids = [client.xadd(key, {"job": str(index)}) for index in range(3)]
    client.xreadgroup("workers", "alice", {key: ">"}, count=2)
    full = client.xinfo_stream(key, full=True)
    assert full["length"] == 3
    assert list(full["entries"].keys()) == ids
    group = full["groups"][0]
    assert group["name"] == "workers" and group["pel-count"] == 2
    assert [entry[0] for entry in group["pending"]] == ids[:2]
    consumer = group["consumers"][0]
    assert consumer["name"] == "alice" and consumer["pel-count"] == 2
    assert [entry[0] for entry in consumer["pending"]] == ids[:2]


def test_monitor_shows_other_clients_commands(client, redis_url):
    """redis-py's Monitor (what `redis-cli monitor` prints) parses the door's lines: each
    command of another client, with its time, database and address, AUTH's secrets
    redacted."""
    key = unique("watched")
    with client.monitor() as monitor:
        other = redis.Redis.from_url(redis_url, decode_responses=True)
        other.set(key, "a value")
        other.get(key)
        with pytest.raises(redis.exceptions.RedisError):
            other.execute_command("AUTH", "user", "secret")
        seen = []
        while len(seen) < 3:
            command = monitor.next_command()
            if key in command["command"] or command["command"].startswith("AUTH"):
                seen.append(command)
        other.close()
    assert [c["command"] for c in seen] == [
        f"SET {key} a value",
        f"GET {key}",
        "AUTH (redacted) (redacted)",
    ]
    assert all(c["db"] == 0 and c["client_address"] == "127.0.0.1" for c in seen)
    assert all(c["time"] > 1_700_000_000 for c in seen)


def test_client_list_and_client_kill(client, redis_url):
    """redis-py's client_list() parses every connection's line; client_kill_filter closes
    another connection (redis-py then connects again, with a new id and no name)."""
    name = unique("victim")
    victim = redis.Redis.from_url(redis_url, decode_responses=True)
    victim.client_setname(name)
    old_id = victim.client_id()
    listed = {c["name"]: c for c in client.client_list()}
    assert name in listed
    entry = listed[name]
    assert entry["db"] == "0" and entry["flags"] == "N" and entry["cmd"] == "client"
    assert int(entry["id"]) == old_id
    assert client.client_kill_filter(_id=entry["id"]) == 1
    # The killed session leaves the list as it closes.
    deadline = time.monotonic() + 10
    while name in {c["name"] for c in client.client_list()}:
        assert time.monotonic() < deadline, "the killed connection is still listed"
        time.sleep(0.02)
    assert victim.client_id() != old_id
    victim.close()


def test_client_unblock_ends_another_clients_blpop(client, redis_url):
    """redis-py's client_unblock() ends a BLPOP another connection is blocked in: as its
    timeout would (None), or with the UNBLOCKED error redis-py raises."""
    key = unique("nothing")
    waiter = redis.Redis.from_url(redis_url, decode_responses=True)
    waiter_id = waiter.client_id()
    outcomes = []

    def wait():
        try:
            outcomes.append(waiter.blpop([key], timeout=0))
        except redis.exceptions.ResponseError as error:
            outcomes.append(str(error))

    unblocked = "UNBLOCKED client unblocked via CLIENT UNBLOCK"
    for error, expected in ((False, None), (True, unblocked)):
        thread = threading.Thread(target=wait)
        thread.start()
        deadline = time.monotonic() + 10
        while not client.client_unblock(waiter_id, error=error):
            assert time.monotonic() < deadline, "the BLPOP never blocked"
            time.sleep(0.01)
        thread.join(timeout=10)
        assert outcomes.pop() == expected
    assert client.client_unblock(waiter_id) == 0
    waiter.close()


def test_slowlog_keeps_a_slow_script(client):
    """SLOWLOG through redis-py's `slowlog_get`: a script that spins for 30 ms (above the
    default 10 ms threshold) is kept with its arguments, the client's address and name."""
    client.client_setname("slow-reporter")
    client.slowlog_reset()
    spin = (
        "local t = redis.call('TIME') local start = t[1] * 1000000 + t[2] "
        "repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] - start >= 30000 "
        "return 1"
    )
    assert client.eval(spin, 0) == 1
    def text(value):
        return value.decode() if isinstance(value, bytes) else value

    entries = client.slowlog_get(5)
    slow = [entry for entry in entries if text(entry["command"]).startswith("EVAL")]
    assert len(slow) == 1, entries
    entry = slow[0]
    assert entry["duration"] >= 30_000
    assert text(entry["client_name"]) == "slow-reporter"
    assert text(entry["client_address"]).startswith("127.0.0.1:")
    assert abs(entry["start_time"] - time.time()) < 60
    assert client.slowlog_len() >= 1
    setting = {text(k): text(v) for k, v in client.config_get("slowlog-log-slower-than").items()}
    assert setting == {"slowlog-log-slower-than": "10000"}


def test_config_set_changes_the_slow_log_while_running(client):
    """What one does to chase a latency spike: CONFIG SET slowlog-log-slower-than 0 (every
    command logged) and a short slowlog-max-len, then back; all or nothing, in Redis's words;
    the settings Omnibus keeps take their own value (a script making sure of `appendfsync
    always` passes) and refuse another."""
    try:
        assert client.config_set("slowlog-log-slower-than", 0) is True
        assert client.config_set("slowlog-max-len", 3) is True
        client.slowlog_reset()
        for n in range(5):
            client.set(f"logged-{n}", n)
        assert client.slowlog_len() == 3
        # The newest first, the SLOWLOG LEN just run among them (as redis-server 7.4 answers).
        logged = [entry["command"] for entry in client.slowlog_get(3)]
        assert logged == [b"SLOWLOG LEN", b"SET logged-4 4", b"SET logged-3 3"], logged
        with pytest.raises(redis.ResponseError) as refused:
            client.execute_command("CONFIG", "SET", "slowlog-max-len", "5", "slowlog-max-len", "6")
        assert str(refused.value) == (
            "CONFIG SET failed (possibly related to argument 'slowlog-max-len') - "
            "duplicate parameter"
        )
        with pytest.raises(redis.ResponseError) as refused:
            client.config_set("slowlog-log-slower-than", -2)
        assert str(refused.value).endswith(
            "argument must be between -1 and 9223372036854775807 inclusive"
        )
        # All or nothing: a refused pair leaves the other as it was.
        with pytest.raises(redis.ResponseError, match="CONFIG SET failed .* not supported by Omnibus"):
            client.execute_command(
                "CONFIG", "SET", "slowlog-max-len", "9", "appendfsync", "everysec"
            )
        assert client.config_get("slowlog-max-len") == {"slowlog-max-len": "3"}
        assert client.execute_command("CONFIG", "SET", "appendfsync", "always", "save", "")
        assert client.config_set("maxmemory-policy", "NOEVICTION") is True
    finally:
        client.config_set("slowlog-log-slower-than", 10_000)
        client.config_set("slowlog-max-len", 128)


def test_keyspace_notifications_for_expired_keys(client):
    """The expiry listener pattern: CONFIG SET notify-keyspace-events Ex, a subscriber on
    `__keyevent@0__:expired`, a key with a TTL; redis-py's pubsub gets the key's name."""
    assert client.config_set("notify-keyspace-events", "Ex") is True
    pubsub = client.pubsub()
    try:
        pubsub.subscribe("__keyevent@0__:expired")
        assert pubsub.get_message(timeout=5)["type"] == "subscribe"
        key = f"job-timeout-{time.time_ns()}"
        client.set(key, "1", px=50)
        deadline = time.monotonic() + 5
        message = None
        while message is None and time.monotonic() < deadline:
            message = pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
        assert message is not None, "no expired event within 5 s"
        data = message["data"].decode() if isinstance(message["data"], bytes) else message["data"]
        assert data == key
        with pytest.raises(redis.ResponseError, match="Invalid event class character"):
            client.config_set("notify-keyspace-events", "KEq")
    finally:
        pubsub.close()
        client.config_set("notify-keyspace-events", "")
