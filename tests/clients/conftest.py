"""Fixtures for the real-client suites: a fresh `omnibus serve` per test module.

- `broker`: the running broker (harness.Broker): fresh temp data dir, loopback ports it picks
  itself (port 0, read back from `<data_dir>/listeners.json`), ready once that file is
  written, /health answers 200 and the Kafka port accepts. Killed at module teardown. A
  failing test gets the broker's log attached to its report.
- `bootstrap`: "127.0.0.1:PORT" of its Kafka listener (a test that restarts the broker gets
  a new one: ask `broker.bootstrap` again after a restart).
- `http`: base URL of its HTTP API.
- `nats_url`: "nats://127.0.0.1:PORT" of its NATS listener.
- `amqp_url`: "amqp://guest:guest@127.0.0.1:PORT/%2F" of its AMQP listener.
- `redis_url`: "redis://127.0.0.1:PORT/0" of its Redis listener.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
from pathlib import Path

import pytest

from harness import NO_AMQP, NO_KAFKA, NO_NATS, NO_REDIS, Broker


def _terminate(signum, frame):
    # SIGTERM (e.g. from the outer `timeout` in scripts/client-tests.sh): stop like Ctrl-C, so
    # that fixtures tear down and the atexit hook kills any broker still running.
    raise KeyboardInterrupt(f"signal {signum}")


signal.signal(signal.SIGTERM, _terminate)


@pytest.fixture(scope="module")
def broker(request):
    workdir = Path(tempfile.mkdtemp(prefix="omnibus-clients-"))
    instance = Broker(workdir)
    request.node.omnibus_broker = instance
    try:
        instance.start()
        yield instance
    finally:
        instance.kill9()
        failed = getattr(request.node, "omnibus_failed", False)
        if failed:
            # Keep the data dir of a failed module for a post-mortem; say where it is.
            print(f"\nomnibus data and logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def bootstrap(broker) -> str:
    if not broker.has_kafka:
        pytest.fail(NO_KAFKA, pytrace=False)
    if not broker.alive():
        broker.start()
    return broker.bootstrap


@pytest.fixture
def nats_url(broker) -> str:
    if not broker.has_nats:
        pytest.fail(NO_NATS, pytrace=False)
    if not broker.alive():
        broker.start()
    return broker.nats_url


@pytest.fixture
def amqp_url(broker) -> str:
    if not broker.has_amqp:
        pytest.fail(NO_AMQP, pytrace=False)
    if not broker.alive():
        broker.start()
    return broker.amqp_url


@pytest.fixture
def redis_url(broker) -> str:
    if not broker.has_redis:
        pytest.fail(NO_REDIS, pytrace=False)
    if not broker.alive():
        broker.start()
    return broker.redis_url


@pytest.fixture
def http(broker) -> str:
    if not broker.alive():
        broker.start()
    return broker.http


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        module = item.getparent(pytest.Module)
        if module is not None:
            module.omnibus_failed = True
            instance = getattr(module, "omnibus_broker", None)
            if instance is not None and instance.logs:
                report.sections.append(("omnibus serve log", instance.log_tail()))
    return report
