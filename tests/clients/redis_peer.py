"""Debian's redis-server on a loopback TCP port, for tests that need a real one the door or a
script connects to (MIGRATE's target, an import's source)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
import redis

from harness import HOST, wait_until


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def tcp_redis_server(password: str | None = None):
    """A redis-server without persistence, in the C locale: yields (port, redis-py client)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (scripts/client-tests.sh installs it)", pytrace=False)
    workdir = Path(tempfile.mkdtemp(prefix="omnibus-redis-peer-"))
    port = free_port()
    words = [binary, "--bind", HOST, "--port", str(port), "--save", "", "--appendonly", "no"]
    if password is not None:
        words += ["--requirepass", password]
    process = subprocess.Popen(
        words + ["--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "LC_ALL": "C"},
    )
    client = redis.Redis(host=HOST, port=port, password=password)
    try:
        wait_until(lambda: _answers(client), 10, "redis-server to start")
        yield port, client
    finally:
        client.close()
        process.kill()
        process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def _answers(client) -> bool:
    try:
        return client.ping()
    except redis.ConnectionError:
        return False
