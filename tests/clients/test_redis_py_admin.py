"""redis-py against the Redis door for what tools and frameworks ask besides data: keyspace
events for changes as Spring Session subscribes to them (`Egx`) and for streams (`KEA`), LCS and SUBSTR, and the
administration probes (ACL, LASTSAVE/SAVE/BGSAVE, MODULE LIST, LATENCY, cluster mode) —
each answered as redis-py expects it from a redis-server."""

from __future__ import annotations

import datetime
import threading
import time

import pytest
import redis

from harness import unique, wait_until


@pytest.fixture
def client(redis_url):
    connection = redis.Redis.from_url(redis_url, decode_responses=True)
    yield connection
    connection.config_set("notify-keyspace-events", "")
    connection.close()


def _events(pubsub, until: str) -> list[tuple[str, str]]:
    """(channel, data) of every message until the one on channel `until`."""
    seen = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        message = pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
        if message is None:
            continue
        if message["channel"] == until:
            return seen
        seen.append((message["channel"], message["data"]))
    raise AssertionError(f"no message on {until} within 5 s; got {seen}")


def test_change_events_as_spring_session_subscribes(client):
    client.config_set("notify-keyspace-events", "Egx")
    assert client.config_get("notify-keyspace-events") == {"notify-keyspace-events": "gxE"}
    pubsub = client.pubsub()
    try:
        pubsub.psubscribe("__keyevent@0__:*")
        pubsub.subscribe("marker")
        session = unique("spring:session:sessions:expires")
        client.set(session, "", ex=30)
        client.expire(session, 60)
        client.delete(session, unique("never"))
        short = unique("spring:session:short")
        client.set(short, "", px=50)
        time.sleep(0.3)
        client.publish("marker", "-")
        assert _events(pubsub, "marker") == [
            ("__keyevent@0__:expire", session),
            ("__keyevent@0__:expire", session),
            ("__keyevent@0__:del", session),
            ("__keyevent@0__:expire", short),
            ("__keyevent@0__:expired", short),
        ]
    finally:
        pubsub.close()


def test_key_miss_events(client):
    """`m`: a read of a key that is not there (cache-miss monitoring), not a write's."""
    client.config_set("notify-keyspace-events", "Em")
    assert client.config_get("notify-keyspace-events") == {"notify-keyspace-events": "Em"}
    missing, present = unique("miss"), unique("hit")
    client.set(present, "1")
    pubsub = client.pubsub()
    try:
        pubsub.psubscribe("__keyevent@0__:*")
        pubsub.subscribe("marker")
        client.get(missing)
        client.get(present)
        client.mget(present, missing, missing)
        client.incr(missing)  # a write's lookup: no event
        client.publish("marker", "-")
        assert _events(pubsub, "marker") == [
            ("__keyevent@0__:keymiss", missing),
            ("__keyevent@0__:keymiss", missing),
            ("__keyevent@0__:keymiss", missing),
        ]
    finally:
        pubsub.close()
        client.delete(missing, present)


def test_stream_events_with_kea(client):
    """`KEA`, the tutorials' setting: a stream's changes on its `__keyspace@0__:<key>`
    channel, as a listener of one key (a BullMQ-style events stream, a cache) gets them."""
    client.config_set("notify-keyspace-events", "KEA")
    assert client.config_get("notify-keyspace-events") == {"notify-keyspace-events": "AKE"}
    stream = unique("orders")
    pubsub = client.pubsub()
    try:
        pubsub.subscribe(f"__keyspace@0__:{stream}", "marker")
        client.xadd(stream, {"f": "1"}, id="1-1")
        client.xadd(stream, {"f": "2"}, id="2-1", maxlen=1, approximate=False)
        client.xgroup_create(stream, "billing", id="0")
        client.xreadgroup("billing", "w1", {stream: ">"})
        client.xdel(stream, "2-1")
        client.expire(stream, 100)
        client.delete(stream)
        client.publish("marker", "-")
        events = [data for channel, data in _events(pubsub, "marker")]
        assert events == [
            "xadd",
            "xadd",
            "xtrim",
            "xgroup-create",
            "xgroup-createconsumer",
            "xdel",
            "expire",
            "del",
        ]
    finally:
        pubsub.close()


def test_lcs_and_substr(client):
    a, b = unique("lcs-a"), unique("lcs-b")
    client.mset({a: "ohmytext", b: "mynewtext"})
    assert client.lcs(a, b) == "mytext"
    assert client.lcs(a, b, len=True) == 6
    # redis-py hands IDX's answer over as RESP2 sends it (as from a redis-server).
    assert client.lcs(a, b, idx=True, minmatchlen=4, withmatchlen=True) == [
        "matches",
        [[[4, 7], [5, 8], 4]],
        "len",
        6,
    ]
    assert client.substr(a, 2, 3) == "my"
    client.rpush(unique("list"), "x")
    with pytest.raises(redis.ResponseError, match="must contain string values"):
        client.lcs(a, client.keys("list*")[0])


def test_administration_probes(client):
    assert client.acl_whoami() == "default"
    assert client.acl_list() == ["user default on nopass ~* &* +@all"]
    user = client.acl_getuser("default")
    assert user["enabled"] is True and "nopass" in user["flags"]
    assert user["categories"] == ["+@all"] and user["keys"] == ["~*"]
    assert "read" in client.acl_cat() and "get" in client.acl_cat("string")
    assert len(client.acl_genpass()) == 64
    with pytest.raises(redis.ResponseError, match="one user, default"):
        client.acl_setuser("someone", enabled=True)
    before = client.lastsave()
    assert isinstance(before, datetime.datetime)
    assert client.save() is True
    assert client.bgsave() is True
    assert client.lastsave() >= before
    assert client.module_list() == []
    assert client.latency_latest() == []
    with pytest.raises(redis.ResponseError, match="cluster support disabled"):
        client.execute_command("CLUSTER", "SLOTS")
    with pytest.raises(redis.ResponseError, match="DB index is out of range"):
        client.move(unique("k"), 1)
    # What a redis-server given REPLICAOF <omnibus> sends, and SHUTDOWN: refused in words a
    # replica's log and redis-cli show, not as unknown commands.
    for words in (("PSYNC", "?", "-1"), ("REPLCONF", "capa", "psync2"), ("SYNC",)):
        with pytest.raises(redis.ResponseError, match="^Omnibus cannot be replicated from"):
            client.execute_command(*words)
    with pytest.raises(redis.ResponseError, match="^SHUTDOWN is not served by Omnibus"):
        client.execute_command("SHUTDOWN", "NOSAVE")
    assert client.ping() is True


def test_commandstats_and_errorstats(client):
    """What redis_exporter and Grafana's Redis panels read: calls, time, refusals and
    failures per command, and error replies by code (deltas: the broker is shared)."""

    def stats():
        commands = client.info("commandstats")
        errors = client.info("errorstats")
        return commands, errors

    key = unique("counter")
    before_commands, before_errors = stats()
    for _ in range(5):
        client.get(key)
    client.set(key, "not a number")
    with pytest.raises(redis.ResponseError):
        client.incr(key)
    with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
        client.execute_command("SET", key)
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        client.lpush(key, "x")
    after_commands, after_errors = stats()

    def delta(name, field):
        was = before_commands.get(f"cmdstat_{name}", {}).get(field, 0)
        return after_commands[f"cmdstat_{name}"][field] - was

    assert delta("get", "calls") == 5
    assert after_commands["cmdstat_get"]["usec"] >= 0
    assert delta("incrby", "failed_calls") == 1  # redis-py sends INCR as INCRBY
    assert delta("set", "rejected_calls") == 1
    assert delta("lpush", "failed_calls") == 1

    def errors(code):
        return after_errors.get(f"errorstat_{code}", {}).get("count", 0) - before_errors.get(
            f"errorstat_{code}", {}
        ).get("count", 0)

    assert errors("ERR") == 2
    assert errors("WRONGTYPE") == 1
    # Not in the default INFO, as in Redis; errorstats is.
    default = client.info()
    assert not any(name.startswith("cmdstat_") for name in default)
    assert "errorstat_ERR" in default


def test_an_error_answered_after_a_wait_is_counted(client, redis_url):
    """A blocked XREADGROUP whose group is destroyed gets NOGROUP when it wakes: counted in
    errorstats, the command's failed_calls and total_error_replies like an error answered at
    once (redis-server's stream-cgroups test checks the same three)."""
    stream = unique("blocked").replace(":", "-")
    client.xgroup_create(stream, "workers", id="$", mkstream=True)

    def totals():
        commands = client.info("commandstats").get("cmdstat_xreadgroup", {})
        errors = client.info("errorstats").get("errorstat_NOGROUP", {})
        return (
            commands.get("failed_calls", 0),
            errors.get("count", 0),
            client.info("stats")["total_error_replies"],
        )

    before = totals()
    blocked_before = client.info("clients")["blocked_clients"]
    reader = redis.Redis.from_url(redis_url)
    outcome = {}

    def read():
        try:
            outcome["reply"] = reader.xreadgroup("workers", "alice", {stream: ">"}, block=0)
        except redis.ResponseError as error:
            outcome["error"] = str(error)

    thread = threading.Thread(target=read)
    thread.start()
    wait_until(
        lambda: client.info("clients")["blocked_clients"] > blocked_before,
        5,
        "the XREADGROUP blocked",
    )
    # CLIENT LIST flags the waiting connection `b`, as Redis does.
    waiting = [entry for entry in client.client_list() if entry.get("cmd") == "xreadgroup"]
    assert any("b" in entry["flags"] for entry in waiting), waiting
    assert client.xgroup_destroy(stream, "workers") == 1
    thread.join(5)
    reader.close()
    assert "No such key" in outcome.get("error", ""), outcome
    failed, nogroup, total = totals()
    assert (failed - before[0], nogroup - before[1]) == (1, 1)
    assert total - before[2] >= 1


def test_config_resetstat(client):
    """CONFIG RESETSTAT, which dashboards and benchmarks send before a measurement: the
    command and error counts start again, and so do INFO's stats."""
    key = unique("reset")
    client.set(key, "1")
    with pytest.raises(redis.ResponseError):
        client.lpush(key, "x")
    assert client.config_resetstat() is True
    client.get(key)
    commands = client.info("commandstats")
    assert commands["cmdstat_get"]["calls"] == 1
    assert "cmdstat_set" not in commands and "cmdstat_lpush" not in commands
    assert client.info("errorstats") == {}
    stats = client.info("stats")
    assert stats["total_error_replies"] == 0
    # The RESETSTAT, the GET and the INFOs since (the broker counts a command as it reads it).
    assert 1 <= stats["total_commands_processed"] <= 5


def test_latency_histogram_and_latencystats(client):
    """Redis 7's per-command latencies: INFO latencystats (p50/p99/p99.9 in µs, what
    redis_exporter exports) and LATENCY HISTOGRAM (calls and a cumulative histogram by
    powers of two of µs)."""
    key = unique("latency")
    client.config_resetstat()
    for n in range(50):
        client.set(key, n)
    client.get(key)
    stats = client.info("latencystats")
    set_latency = stats["latency_percentiles_usec_set"]
    assert 0 < set_latency["p50"] <= set_latency["p99"] <= set_latency["p99.9"]
    assert "latency_percentiles_usec_get" in stats
    assert "latency_percentiles_usec_lpush" not in stats
    assert "latencystats" not in str(client.info()), "not among the default sections"
    assert any(name.startswith("latency_percentiles_usec_") for name in client.info("all"))

    raw = redis.Redis.from_url(_url(client), protocol=3, decode_responses=True)
    try:
        histograms = raw.execute_command("LATENCY", "HISTOGRAM", "set", "no-such-command")
        assert list(histograms) == ["set"]
        assert histograms["set"]["calls"] == 50
        buckets = histograms["set"]["histogram_usec"]
        bounds = sorted(buckets)
        assert all(bound & (bound - 1) == 0 for bound in bounds), bounds  # powers of two
        counts = [buckets[bound] for bound in bounds]
        assert counts == sorted(counts) and counts[-1] == 50  # cumulative
        everything = raw.execute_command("LATENCY", "HISTOGRAM")
        assert {"set", "get"} <= set(everything)
    finally:
        raw.close()


def _url(client) -> str:
    kwargs = client.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/0"


def test_expired_keys_are_counted(client):
    """INFO's `expired_keys` (what dashboards graph as expirations per second): string keys
    and stream keys deleted at their deadline, back to 0 at CONFIG RESETSTAT."""
    # Other tests' keys may expire meanwhile (the broker is shared): counts are lower bounds.
    client.config_resetstat()
    short, stream = unique("short"), unique("short-stream")
    client.set(short, "v", px=50)
    client.xadd(stream, {"f": "v"})
    client.pexpire(stream, 50)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and client.info("stats")["expired_keys"] < 2:
        time.sleep(0.05)
    assert client.info("stats")["expired_keys"] >= 2
    assert client.exists(short, stream) == 0
    client.config_resetstat()
    assert client.info("stats")["expired_keys"] < 2


@pytest.mark.parametrize("protocol", [2, 3])
def test_a_url_with_the_default_user_and_a_password_connects(redis_url, protocol):
    """An application's Redis URL often carries `default:<password>`: a redis-server without
    `requirepass` lets the default user in with any password (AUTH in RESP2, HELLO … AUTH in
    RESP3), and refuses any other user."""
    host = redis_url.split("://", 1)[1]
    with redis.Redis.from_url(f"redis://default:anything@{host}", protocol=protocol) as client:
        assert client.ping() is True
    with redis.Redis.from_url(f"redis://someone:anything@{host}", protocol=protocol) as client:
        with pytest.raises(redis.AuthenticationError):
            client.ping()
