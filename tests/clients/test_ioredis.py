"""ioredis, the Redis client for Node, against the Redis door: the scenarios are in
node/ioredis.test.mjs (node's own test runner); this runs them against the suite's broker.
Also `redis-cli` from Debian's redis-tools: inline commands and its RESP requests.
scripts/client-tests.sh installs the pinned ioredis (npm ci) and redis-tools (apt-get)."""

from __future__ import annotations

import shutil
import socket
import subprocess
from urllib.parse import urlparse

import pytest

from harness import run_node_suite


def test_ioredis_scenarios(redis_url):
    run_node_suite("ioredis.test.mjs", "ioredis", {"OMNIBUS_REDIS_URL": redis_url}, scenarios=7)


def redis_cli(redis_url: str, *arguments: str, stdin: str | None = None) -> str:
    cli = shutil.which("redis-cli")
    if cli is None:
        pytest.fail("redis-cli is needed (redis-tools): run scripts/client-tests.sh", pytrace=False)
    port = urlparse(redis_url).port
    result = subprocess.run(
        [cli, "-h", "127.0.0.1", "-p", str(port), *arguments],
        input=stdin, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_redis_cli_commands_and_inline_pipe(redis_url):
    assert redis_cli(redis_url, "PING").strip() == "PONG"
    assert redis_cli(redis_url, "SET", "cli:key", "v1", "EX", "60").strip() == "OK"
    assert redis_cli(redis_url, "GET", "cli:key").strip() == "v1"
    entry = redis_cli(redis_url, "XADD", "cli-stream", "*", "value", "from-cli").strip()
    assert "-" in entry
    assert redis_cli(redis_url, "XLEN", "cli-stream").strip() == "1"
    # Commands piped on standard input (redis-cli sends them as RESP, one per line).
    piped = redis_cli(redis_url, stdin="SET cli:piped 7\nINCR cli:piped\nGET cli:piped\n")
    assert piped.split() == ["OK", "8", "8"], piped
    # What a health check or `nc` sends: an inline command, not RESP.
    with socket.create_connection(("127.0.0.1", urlparse(redis_url).port), timeout=5) as sock:
        sock.sendall(b"PING\r\nECHO hello\r\n")
        answer = b""
        while answer.count(b"\r\n") < 3:
            answer += sock.recv(1024)
    assert answer == b"+PONG\r\n$5\r\nhello\r\n", answer
