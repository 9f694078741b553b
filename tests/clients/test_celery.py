"""Celery against the AMQP door: real `celery worker` processes with Celery's default AMQP
transport (py-amqp through kombu) and the `rpc://` result backend. A task sent with
`.delay()`, a task that retries itself, a countdown, a chain and a group, `celery inspect
ping` (the pidbox fanout exchange and reply queues), task events (`celery worker -E`, the
`celeryev` topic exchange and a receiver's queue with `x-message-ttl` and `x-expires`, what
`celery events` reads), an `acks_late` task whose worker is
killed mid-task running again on the next worker, 500 tasks over 4 worker processes each
run exactly once, a task whose retries all fail ending in FAILURE with its exception stored,
an `eta=` task held while other tasks flow, and the `celery inspect ping`, `celery status`
and `celery events --dump` commands."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from celery import chain, group

from harness import stop_workers

TASKS = Path(__file__).parent / "celery_tasks.py"



class Workers:
    """`celery worker` processes for one test, each in its own process group."""

    def __init__(self, folder: Path, broker_url: str):
        self.folder = folder
        self.env = dict(os.environ, OMNIBUS_TEST_BROKER_URL=broker_url)
        self.processes: list[subprocess.Popen] = []

    def start(self) -> subprocess.Popen:
        return self.start_with_concurrency(1)

    def start_with_concurrency(self, concurrency: int, *extra: str) -> subprocess.Popen:
        log = open(self.folder / f"worker-{len(self.processes)}.log", "wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "omnibus_tasks", "worker",
             "--loglevel=info", f"--concurrency={concurrency}",
             f"--hostname=w{len(self.processes)}@%h", *extra],
            cwd=self.folder,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.processes.append(process)
        return process

    def kill_9(self, process: subprocess.Popen) -> None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def stop_all(self) -> None:
        stop_workers(self.processes, self.folder, grace_s=3)


@pytest.fixture
def celery_setup(amqp_url, tmp_path: Path):
    shutil.copy(TASKS, tmp_path / "omnibus_tasks.py")
    broker_url = amqp_url.replace("/%2F", "//")
    os.environ["OMNIBUS_TEST_BROKER_URL"] = broker_url
    sys.path.insert(0, str(tmp_path))
    workers = Workers(tmp_path, broker_url)
    try:
        import omnibus_tasks

        yield omnibus_tasks, workers, tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("omnibus_tasks", None)
        workers.stop_all()


def test_a_worker_runs_a_delayed_task_and_a_retried_one(celery_setup):
    tasks, workers, folder = celery_setup
    workers.start()
    result = tasks.add.delay(2, 3)
    assert result.get(timeout=60) == 5
    marker = folder / "flaky.count"
    started = time.monotonic()
    retried = tasks.flaky.delay(str(marker))
    assert retried.get(timeout=60) == 2
    assert marker.read_text() == "2"
    # The retry waited for its countdown.
    assert time.monotonic() - started >= 0.9


def test_countdown_chain_group_and_inspect_ping(celery_setup):
    tasks, workers, folder = celery_setup
    workers.start()
    assert tasks.add.delay(0, 0).get(timeout=60) == 0
    started = time.monotonic()
    assert tasks.add.apply_async((1, 2), countdown=2).get(timeout=30) == 3
    assert time.monotonic() - started >= 1.9, "an ETA task ran before it was due"
    assert chain(tasks.add.s(1, 2), tasks.add.s(3)).apply_async().get(timeout=30) == 6
    assert group(tasks.add.s(i, i) for i in range(5)).apply_async().get(timeout=30) == [0, 2, 4, 6, 8]
    replies = tasks.app.control.ping(timeout=2.0)
    assert any("pong" in str(reply) for reply in replies), replies


def test_task_events_reach_an_event_receiver(celery_setup):
    tasks, workers, folder = celery_setup
    workers.start_with_concurrency(1, "-E")
    assert tasks.add.delay(1, 1).get(timeout=60) == 2
    app = tasks.app
    succeeded: list[dict] = []
    ready = threading.Event()

    def on_succeeded(event):
        succeeded.append(event)
        receiver.should_stop = True

    with app.connection_for_read() as connection:
        receiver = app.events.Receiver(
            connection,
            handlers={"task-succeeded": on_succeeded, "*": lambda event: ready.set()},
        )
        # What `celery events` does: a consumer on the celeryev topic exchange (its queue
        # has x-message-ttl and x-expires), woken with a heartbeat request to the workers.
        capture = threading.Thread(
            target=lambda: receiver.capture(limit=None, timeout=30, wakeup=True), daemon=True
        )
        capture.start()
        # Any event (the workers' heartbeats answering the wakeup) says the queue is bound.
        assert ready.wait(20), "no event from the worker within 20 s"
        result = tasks.add.delay(20, 22)
        assert result.get(timeout=60) == 42
        capture.join(30)
    assert any(event.get("uuid") == result.id for event in succeeded), succeeded


def test_an_acks_late_task_runs_again_when_its_worker_is_killed(celery_setup):
    tasks, workers, folder = celery_setup
    first = workers.start()
    marker = folder / "slow.runs"
    tasks.slow.delay(str(marker))
    deadline = time.monotonic() + 30
    while not (marker.exists() and marker.read_text().count("run") == 1):
        assert time.monotonic() < deadline, "the task never started"
        time.sleep(0.05)
    workers.kill_9(first)
    workers.start()
    deadline = time.monotonic() + 30
    while marker.read_text().count("run") < 2:
        assert time.monotonic() < deadline, "the unacknowledged task did not run again"
        time.sleep(0.05)


def test_500_tasks_over_4_worker_processes_each_run_once(celery_setup):
    tasks, workers, folder = celery_setup
    workers.start_with_concurrency(4)
    runs = folder / "runs.txt"
    results = group(tasks.record.s(i, str(runs)) for i in range(500)).apply_async()
    assert sorted(results.get(timeout=60)) == list(range(500))
    lines = runs.read_text().split()
    assert sorted(int(line) for line in lines) == list(range(500)), "a task ran twice or never"


def test_a_task_that_keeps_failing_ends_in_failure_with_its_exception_stored(celery_setup):
    tasks, workers, folder = celery_setup
    workers.start()
    marker = folder / "doomed.runs"
    result = tasks.doomed.delay(str(marker))
    with pytest.raises(ValueError, match="boom on run 3"):
        result.get(timeout=60)
    assert result.state == "FAILURE"
    assert isinstance(result.result, ValueError)
    assert marker.read_text().count("run") == 3, "the first run and its two retries"


def test_an_eta_task_is_held_while_other_tasks_flow_and_runs_when_due(celery_setup):
    from datetime import datetime, timedelta, timezone

    tasks, workers, folder = celery_setup
    workers.start()
    assert tasks.add.delay(0, 0).get(timeout=60) == 0
    due = datetime.now(timezone.utc) + timedelta(seconds=3)
    later = tasks.add.apply_async((40, 2), eta=due)
    # The worker holds the ETA message unacknowledged; the others pass it.
    started = time.monotonic()
    flowing = [tasks.add.delay(i, 1) for i in range(20)]
    assert [r.get(timeout=30) for r in flowing] == [i + 1 for i in range(20)]
    assert time.monotonic() - started < 2.5, "the other tasks waited for the ETA task"
    assert not later.ready()
    assert later.get(timeout=30) == 42
    assert datetime.now(timezone.utc) >= due, "the ETA task ran before it was due"


def celery_command(folder: Path, broker_url: str, *arguments: str, timeout: float):
    return subprocess.run(
        [sys.executable, "-m", "celery", "-A", "omnibus_tasks", *arguments],
        cwd=folder,
        env=dict(os.environ, OMNIBUS_TEST_BROKER_URL=broker_url),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_celery_inspect_ping_and_status_commands_find_the_worker(celery_setup):
    tasks, workers, folder = celery_setup
    workers.start()
    assert tasks.add.delay(1, 2).get(timeout=60) == 3
    broker_url = workers.env["OMNIBUS_TEST_BROKER_URL"]
    ping = celery_command(folder, broker_url, "inspect", "ping", "--timeout", "5", timeout=60)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert "pong" in ping.stdout, ping.stdout
    status = celery_command(folder, broker_url, "status", "--timeout", "5", timeout=60)
    assert status.returncode == 0, status.stdout + status.stderr
    assert "1 node online" in status.stdout, status.stdout


def test_the_celery_events_command_dumps_a_task_s_events(celery_setup):
    tasks, workers, folder = celery_setup
    workers.start_with_concurrency(1, "-E")
    assert tasks.add.delay(1, 1).get(timeout=60) == 2
    broker_url = workers.env["OMNIBUS_TEST_BROKER_URL"]
    log = open(folder / "events.log", "wb")
    dumper = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "omnibus_tasks", "events", "--dump"],
        cwd=folder,
        env=dict(os.environ, OMNIBUS_TEST_BROKER_URL=broker_url),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    try:
        # Its queue is bound once it prints the workers' heartbeats.
        deadline = time.monotonic() + 30
        while "heartbeat:" not in (folder / "events.log").read_text(errors="replace"):
            assert time.monotonic() < deadline, (folder / "events.log").read_text(errors="replace")
            time.sleep(0.1)
        result = tasks.add.delay(20, 22)
        assert result.get(timeout=60) == 42
        deadline = time.monotonic() + 30
        while True:
            dumped = (folder / "events.log").read_text(errors="replace")
            if any("task succeeded" in line and result.id in line for line in dumped.splitlines()):
                break
            assert time.monotonic() < deadline, dumped
            time.sleep(0.1)
    finally:
        os.killpg(dumper.pid, signal.SIGKILL)
        dumper.wait()


def test_an_older_celery_minor_runs_its_client_and_worker_against_the_broker(amqp_url, tmp_path: Path):
    """Celery 5.3 (kombu 5.3, py-amqp 5.2) on both sides, from its own virtualenv."""
    repo = Path(__file__).resolve().parents[2]
    python = os.environ.get("OMNIBUS_CELERY_OLD_PYTHON", str(repo / ".venv-celery-5.3" / "bin" / "python"))
    assert Path(python).exists(), f"{python} is missing: scripts/client-tests.sh makes it"
    scenarios = Path(__file__).parent / "celery_scenarios.py"
    done = subprocess.run(
        [python, str(scenarios), amqp_url.replace("/%2F", "//"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    print(done.stdout + done.stderr)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[0].startswith("celery 5.3.6, kombu 5.3.7, py-amqp 5.2.0")
    assert "all scenarios passed" in done.stdout
