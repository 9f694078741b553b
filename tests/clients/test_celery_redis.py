"""Celery against the Redis door: real `celery worker` processes with kombu's Redis transport
(`broker_url = "redis://…"`: tasks LPUSHed to a list and taken with BRPOP, bindings kept in
sets, unacknowledged messages kept in a hash and a sorted-set index) and the Redis result
backend (results SETEXed and PUBLISHed to the waiting client). A task sent with `.delay()`
and its result read with `.get()` (and found under `celery-task-meta-<id>`); a chain and a
group; a chord, whose header results the backend counts with Lua scripts of its own; a task
that retries itself then succeeds; countdown and eta tasks held until due while others flow;
200 tasks over 2 workers each run exactly once; an `acks_late` task whose worker is killed
with SIGKILL running again on another worker once its visibility timeout (5 s here) has
passed, which kombu's `restore_visible` does under a redis-py `Lock` (SET NX PX, then EVALSHA
of redis-py's release script); and `celery inspect ping`, which goes over the pidbox fanout
exchange (PUBLISH / PSUBSCRIBE) and a reply queue.

The app is celery_tasks.py's, copied unchanged into each test's folder as `omnibus_tasks`,
with a small module beside it that switches the result backend to Redis, gives each test a
queue of its own and adds three tasks (a chord callback, and two that record which worker ran
them). Every wait is bounded; the workers are stopped (SIGTERM, then SIGKILL) whatever
happens."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import redis
from celery import chain, chord, group

from harness import stop_workers, unique, wait_until

TASKS = Path(__file__).parent / "celery_tasks.py"
# The worker and client load this module (`celery -A omnibus_redis_tasks`).
REDIS_APP = '''"""celery_tasks.py's app and tasks (copied here as omnibus_tasks), with the Redis
result backend, the queue named by OMNIBUS_TEST_QUEUE, kombu's unacked sweep run every second,
and three tasks of its own."""
import os
import time

from omnibus_tasks import add, app, flaky, record  # noqa: F401 (registered with the app)

app.conf.update(
    result_backend=os.environ["OMNIBUS_TEST_BROKER_URL"],
    task_default_queue=os.environ["OMNIBUS_TEST_QUEUE"],
    broker_transport_options={
        "visibility_timeout": float(os.environ.get("OMNIBUS_TEST_VISIBILITY_TIMEOUT", "3600")),
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    },
)


@app.task
def total(numbers):
    return sum(numbers)


@app.task(bind=True)
def record_where(self, i, path):
    with open(path, "a") as handle:
        handle.write(f"{i} {self.request.hostname}\\n")
    return i


@app.task(bind=True, acks_late=True)
def slow_where(self, path):
    # Records which worker runs it, then works for longer than any test waits.
    with open(path, "a") as handle:
        handle.write(f"{self.request.hostname}\\n")
    time.sleep(60)
'''


class Workers:
    """`celery worker` processes for one test, each in its own process group."""

    def __init__(self, folder: Path, env: dict):
        self.folder = folder
        self.env = env
        self.processes: list[subprocess.Popen] = []

    def start(self, concurrency: int = 1) -> str:
        """Starts one worker; returns its node name."""
        name = f"w{len(self.processes)}@{unique('host')}"
        with open(self.folder / f"worker-{len(self.processes)}.log", "wb") as log:
            self.processes.append(subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "omnibus_redis_tasks", "worker",
                 "--loglevel=info", f"--concurrency={concurrency}", f"--hostname={name}"],
                cwd=self.folder, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            ))
        return name

    def kill_9(self, index: int) -> None:
        process = self.processes[index]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)

    def stop_all(self) -> None:
        stop_workers(self.processes, self.folder, grace_s=3)


def wait_for_workers(app, names: list[str], timeout: float = 30) -> None:
    """Until every named worker answers a broadcast ping (its consumers are running)."""

    def all_answer():
        replies = app.control.ping(timeout=0.5)
        return set(names) <= {name for reply in replies for name in reply}

    wait_until(all_answer, timeout, f"workers {names} to answer a ping", interval=0.2)


def lines_of(path: Path) -> list[str]:
    return path.read_text().split("\n")[:-1] if path.exists() else []


@pytest.fixture
def celery_redis(redis_url, tmp_path: Path):
    """(the tasks module, its Workers, the test's folder, a redis-py client)."""
    shutil.copy(TASKS, tmp_path / "omnibus_tasks.py")
    (tmp_path / "omnibus_redis_tasks.py").write_text(REDIS_APP)
    settings = {"OMNIBUS_TEST_BROKER_URL": redis_url, "OMNIBUS_TEST_QUEUE": unique("celery")}
    saved = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    sys.path.insert(0, str(tmp_path))
    workers = Workers(tmp_path, dict(os.environ))
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        import omnibus_redis_tasks

        yield omnibus_redis_tasks, workers, tmp_path, client
    finally:
        workers.stop_all()
        client.close()
        if "omnibus_redis_tasks" in sys.modules:
            # Nothing left for a result object to unsubscribe from when it is collected at
            # interpreter exit, after the broker has gone.
            consumer = sys.modules["omnibus_redis_tasks"].app.backend.result_consumer
            consumer.subscribed_to.clear()
            consumer.stop()
        sys.path.remove(str(tmp_path))
        for module in ("omnibus_redis_tasks", "omnibus_tasks"):
            sys.modules.pop(module, None)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_a_delayed_task_s_result_is_read_from_the_redis_backend(celery_redis):
    tasks, workers, folder, client = celery_redis
    workers.start()
    result = tasks.add.delay(2, 3)
    assert result.get(timeout=30) == 5
    assert result.state == "SUCCESS"
    # Where the Redis backend keeps it: JSON under celery-task-meta-<id>, for a day.
    stored = json.loads(client.get(f"celery-task-meta-{result.id}"))
    assert stored["status"] == "SUCCESS" and stored["result"] == 5
    assert 0 < client.ttl(f"celery-task-meta-{result.id}") <= 86400
    # Read again through a fresh handle on the same id.
    assert tasks.app.AsyncResult(result.id).get(timeout=10) == 5
    # Several in flight, answered each to its own.
    pending = [tasks.add.delay(i, i) for i in range(10)]
    assert [r.get(timeout=30) for r in pending] == [2 * i for i in range(10)]
    assert client.llen(os.environ["OMNIBUS_TEST_QUEUE"]) == 0


def test_a_chain_and_a_group(celery_redis):
    tasks, workers, folder, client = celery_redis
    workers.start(concurrency=2)
    assert chain(tasks.add.s(1, 2), tasks.add.s(3), tasks.add.s(4)).apply_async().get(
        timeout=30
    ) == 10
    together = group(tasks.add.s(i, 10) for i in range(8)).apply_async()
    assert together.get(timeout=30) == [i + 10 for i in range(8)]
    assert together.successful()
    # A group inside a chain: the next step gets every result, in order.
    flow = chain(tasks.add.s(1, 1), group(tasks.add.s(i) for i in range(3))).apply_async()
    assert flow.get(timeout=30) == [2, 3, 4]


def test_a_chord_s_callback_gets_every_header_result(celery_redis):
    """The Redis backend counts a chord's finished header tasks with Lua scripts of its own
    (EVALSHA), and the last one in sends the callback."""
    tasks, workers, folder, client = celery_redis
    workers.start(concurrency=2)
    result = chord((tasks.add.s(i, i) for i in range(6)), tasks.total.s()).apply_async()
    assert result.get(timeout=30) == 30
    inner = chord([tasks.add.s(1), tasks.add.s(2)], tasks.total.s())
    assert chain(tasks.add.s(1, 1), inner).apply_async().get(timeout=30) == 7


def test_a_task_that_retries_itself_then_succeeds(celery_redis):
    tasks, workers, folder, client = celery_redis
    workers.start()
    marker = folder / "flaky.count"
    started = time.monotonic()
    result = tasks.flaky.delay(str(marker))
    assert result.get(timeout=30) == 2
    assert marker.read_text() == "2", "one failed run, one retry"
    # The retry waited for its countdown of 1 s.
    assert time.monotonic() - started >= 0.9
    assert result.state == "SUCCESS"


def test_countdown_and_eta_tasks_wait_until_due_while_others_flow(celery_redis):
    tasks, workers, folder, client = celery_redis
    workers.start()
    assert tasks.add.delay(0, 0).get(timeout=30) == 0
    started = time.monotonic()
    later = tasks.add.apply_async((1, 2), countdown=3)
    due = datetime.now(timezone.utc) + timedelta(seconds=4)
    latest = tasks.add.apply_async((40, 2), eta=due)
    # The worker holds them (delivered, not acknowledged); the tasks sent after pass them.
    flowing = [tasks.add.delay(i, 1) for i in range(20)]
    assert [r.get(timeout=30) for r in flowing] == [i + 1 for i in range(20)]
    assert time.monotonic() - started < 2.8, "the other tasks waited for the delayed ones"
    assert not later.ready() and not latest.ready()
    assert later.get(timeout=30) == 3
    assert time.monotonic() - started >= 2.9, "a countdown task ran before it was due"
    assert latest.get(timeout=30) == 42
    assert datetime.now(timezone.utc) >= due, "an eta task ran before it was due"


def test_200_tasks_over_2_workers_each_run_exactly_once(celery_redis):
    tasks, workers, folder, client = celery_redis
    names = [workers.start(), workers.start()]
    wait_for_workers(tasks.app, names)
    runs = folder / "runs.txt"
    results = group(tasks.record_where.s(i, str(runs)) for i in range(200)).apply_async()
    assert sorted(results.get(timeout=60)) == list(range(200))
    done = [line.split(" ") for line in lines_of(runs)]
    assert sorted(int(i) for i, _ in done) == list(range(200)), "a task ran twice or never"
    # Both took their share off the one queue.
    assert {worker for _, worker in done} == set(names)


def test_an_acks_late_task_runs_again_on_another_worker_after_a_kill_9(celery_redis):
    tasks, workers, folder, client = celery_redis
    workers.env["OMNIBUS_TEST_VISIBILITY_TIMEOUT"] = "5"
    first = workers.start()
    marker = folder / "slow.runs"
    result = tasks.slow_where.delay(str(marker))
    wait_until(lambda: lines_of(marker) == [first], 30, "the task to start on the first worker")
    # Delivered, not acknowledged: kombu keeps it in its unacked hash and index.
    assert any(result.id in message for message in client.hvals("unacked"))
    assert client.zcard("unacked_index") >= 1
    workers.kill_9(0)
    second = workers.start()
    # Once 5 s have passed since delivery, the second worker's sweep (under redis-py's Lock)
    # puts it back on the queue, and runs it.
    wait_until(lambda: len(lines_of(marker)) >= 2, 40, "the task to run again")
    assert lines_of(marker)[:2] == [first, second]
    # The sweep's lock was released (EVALSHA of redis-py's release script).
    wait_until(lambda: client.exists("unacked_mutex") == 0, 10, "the unacked mutex to be freed")


def test_celery_inspect_ping_finds_the_worker(celery_redis):
    tasks, workers, folder, client = celery_redis
    name = workers.start()
    assert tasks.add.delay(1, 2).get(timeout=30) == 3
    # Broadcast to every worker; this one answers on the command's reply queue.
    ping = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "omnibus_redis_tasks", "inspect", "ping",
         "--timeout", "3"],
        cwd=folder, env=workers.env, capture_output=True, text=True, timeout=60,
    )
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert "pong" in ping.stdout and name in ping.stdout, ping.stdout
    assert "1 node online" in ping.stdout, ping.stdout
    # Addressed to it by name: done as soon as it answers.
    assert tasks.app.control.ping([name], timeout=10) == [{name: {"ok": "pong"}}]
    assert tasks.app.control.ping([f"w9@{unique('nobody')}"], timeout=0.5) == []
