"""Celery against the AMQP door: a real `celery worker` process with Celery's default AMQP
transport (py-amqp through kombu) and the `rpc://` result backend runs a task sent with
`.delay()`, and a task that retries itself once and then succeeds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TASKS = '''
import os

from celery import Celery

app = Celery("omnibus_clients", broker=os.environ["OMNIBUS_TEST_BROKER_URL"], backend="rpc://")
app.conf.broker_connection_retry_on_startup = True


@app.task
def add(x, y):
    return x + y


@app.task(bind=True, max_retries=3)
def flaky(self, marker):
    # Fails on its first run, succeeds on the retry: the count of runs is kept in a file.
    runs = int(open(marker).read()) if os.path.exists(marker) else 0
    with open(marker, "w") as handle:
        handle.write(str(runs + 1))
    if runs == 0:
        raise self.retry(countdown=1)
    return runs + 1
'''


@pytest.fixture
def worker(amqp_url, tmp_path: Path):
    (tmp_path / "omnibus_tasks.py").write_text(TASKS)
    env = dict(os.environ, OMNIBUS_TEST_BROKER_URL=amqp_url.replace("/%2F", "//"))
    log = open(tmp_path / "worker.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "omnibus_tasks", "worker", "--loglevel=info",
         "--concurrency=1"],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    sys.path.insert(0, str(tmp_path))
    os.environ["OMNIBUS_TEST_BROKER_URL"] = env["OMNIBUS_TEST_BROKER_URL"]
    try:
        import omnibus_tasks

        yield omnibus_tasks, tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("omnibus_tasks", None)
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
        print((tmp_path / "worker.log").read_text(errors="replace")[-4000:])


def test_a_worker_runs_a_delayed_task_and_a_retried_one(worker):
    tasks, folder = worker
    result = tasks.add.delay(2, 3)
    assert result.get(timeout=60) == 5
    marker = folder / "flaky.count"
    started = time.monotonic()
    retried = tasks.flaky.delay(str(marker))
    assert retried.get(timeout=60) == 2
    assert marker.read_text() == "2"
    # The retry waited for its countdown.
    assert time.monotonic() - started >= 0.9
