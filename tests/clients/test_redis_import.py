"""scripts/redis-import.sh: every key of a running redis-server (Debian's 7.0) copied into
the Redis door with MIGRATE … COPY from the source — strings, lists, hashes, sets, sorted sets
and a stream with its consumer group and pending entries, each with its TTL — read back the
same here and kept there; run again, the keys already here are reported (BUSYKEY) and the run
fails, unless REPLACE."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import redis

from harness import HOST, port_of, unique
from redis_peer import tcp_redis_server

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "redis-import.sh"


@pytest.fixture(scope="module")
def source():
    with tcp_redis_server() as server:
        yield server


def _import(source_port: int, redis_url: str, *extra: str) -> subprocess.CompletedProcess:
    target_port = port_of(redis_url.split("://", 1)[1].split("/", 1)[0])
    return subprocess.run(
        ["bash", str(SCRIPT), HOST, str(source_port), HOST, str(target_port), *extra],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PATTERN": "imported:*"},
    )


def test_every_key_is_copied_with_its_ttl_and_the_source_keeps_it(source, redis_url):
    port, peer = source
    prefix = f"imported:{unique('run')}"
    keys = {kind: f"{prefix}:{kind}" for kind in ("string", "list", "hash", "set", "zset", "stream")}
    peer.set(keys["string"], "value", px=600_000)
    peer.rpush(keys["list"], *[f"item-{n}" for n in range(300)])
    peer.hset(keys["hash"], mapping={f"f{n}": f"v{n}" for n in range(50)})
    peer.sadd(keys["set"], "a", "b", "c")
    peer.zadd(keys["zset"], {"low": 1, "high": 10.5})
    for n in range(1, 251):
        peer.xadd(keys["stream"], {"n": n}, id=f"{n}-0")
    peer.xgroup_create(keys["stream"], "workers", id="0")
    peer.xreadgroup("workers", "alice", {keys["stream"]: ">"}, count=5)
    for n in range(250):
        peer.set(f"{prefix}:many:{n}", n)
    done = _import(port, redis_url)
    assert done.returncode == 0, done.stderr
    assert "256 keys copied" in done.stdout
    here = redis.Redis.from_url(redis_url)
    try:
        assert here.get(keys["string"]) == b"value"
        assert 0 < here.pttl(keys["string"]) <= 600_000
        assert here.lrange(keys["list"], 0, -1) == peer.lrange(keys["list"], 0, -1)
        assert here.hgetall(keys["hash"]) == peer.hgetall(keys["hash"])
        assert here.smembers(keys["set"]) == peer.smembers(keys["set"])
        assert here.zrange(keys["zset"], 0, -1, withscores=True) == [(b"low", 1.0), (b"high", 10.5)]
        assert here.xrange(keys["stream"]) == peer.xrange(keys["stream"])
        assert here.xpending(keys["stream"], "workers")["pending"] == 5
        assert here.get(f"{prefix}:many:249") == b"249"
        # The source keeps everything.
        assert peer.exists(*keys.values()) == len(keys)
        # Again: the keys are here already.
        again = _import(port, redis_url)
        assert again.returncode == 1 and "BUSYKEY" in again.stderr
        peer.rpush(keys["list"], "newer")
        replaced = _import(port, redis_url, "REPLACE")
        assert replaced.returncode == 0, replaced.stderr
        assert here.lrange(keys["list"], -1, -1) == [b"newer"]
    finally:
        here.close()
