"""RQ (Python "Redis Queue") against the Redis door, with real `rq worker` processes. RQ keeps
a queue as a list (LMOVE/BLMOVE by the worker into an intermediate list), each job as a hash,
its registries (started, finished, failed, deferred, scheduled, canceled) as sorted sets, a
worker's state as a hash (HINCRBY, HINCRBYFLOAT), a job's results as a stream (XADD MAXLEN,
XREVRANGE, XREAD BLOCK), and does its bookkeeping in MULTI/EXEC, some under WATCH, and in Lua
scripts (SCRIPT LOAD, EVALSHA).

Covered: a job enqueued, through queued, started and finished, and its result read; a failing
job in the FailedJobRegistry with its exception; `Retry(max=2)` running a job three times,
then succeeding or failing; `enqueue_in` and `enqueue_at` jobs run when due by a worker
started `--with-scheduler`; `depends_on` (one whose dependency failed held unless it allows
failure); 100 jobs over 2 burst workers each run exactly once; `Queue.count`, `empty()`, a
cancelled job and a deleted one; and results and a queued job kept across kill -9 of the
broker. The jobs are in a module the test writes into its folder (on the workers'
PYTHONPATH). Every wait is bounded; the workers are stopped (SIGTERM, then SIGKILL) whatever
happens."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import redis
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Dependency, Job, JobStatus
from rq.registry import (CanceledJobRegistry, DeferredJobRegistry, FailedJobRegistry,
                         FinishedJobRegistry, ScheduledJobRegistry, StartedJobRegistry)
from rq.results import Result

from harness import stop_workers, unique, wait_until

JOBS = '''"""Jobs run by the rq workers of test_rq.py."""
import os
import time

from rq import get_current_job

def add(a, b):
    return a + b

def fail(message):
    raise ValueError(message)

def flaky(path, failures):
    # Counts its runs in `path`; the first `failures` runs fail.
    runs = int(open(path).read()) + 1 if os.path.exists(path) else 1
    open(path, "w").write(str(runs))
    if runs <= failures:
        raise RuntimeError(f"run {runs} fails")
    return runs

def wait_for(path):
    # Runs until `path` exists (30 s at most).
    deadline = time.monotonic() + 30
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    return "released"

def ran_at():
    return time.time()

def record(key, value):
    # Appends "<value> <worker name>" to the list `key`, on the worker's own connection.
    job = get_current_job()
    job.connection.rpush(key, f"{value} {job.worker_name}")
    return value
'''


class Workers:
    """`rq worker` processes for one test, each in its own process group."""

    def __init__(self, folder: Path, url: str):
        self.folder = folder
        self.url = url
        self.env = dict(os.environ, PYTHONPATH=str(folder))
        self.processes: list[subprocess.Popen] = []

    def start(self, queue: str, *options: str) -> subprocess.Popen:
        index = len(self.processes)
        with open(self.folder / f"worker-{index}.log", "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "rq.cli", "worker", "--url", self.url,
                 "--name", unique(f"w{index}"), *options, queue],
                cwd=self.folder, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        self.processes.append(process)
        return process

    def burst(self, queue: str, count: int = 1, timeout: float = 40) -> None:
        """Runs `count` burst workers on `queue` until they have emptied it and quit."""
        started = [self.start(queue, "--burst") for _ in range(count)]
        for process in started:
            assert process.wait(timeout=timeout) == 0, "a burst worker failed"

    def stop_all(self) -> None:
        stop_workers(self.processes, self.folder, grace_s=5)


@pytest.fixture
def rq_env(redis_url, tmp_path: Path):
    """(a Queue of the test's own, its Workers, the test's folder, the jobs module)."""
    (tmp_path / "omnibus_rq_jobs.py").write_text(JOBS)
    sys.path.insert(0, str(tmp_path))
    # redis-py's default socket timeout (5 s) would cut XREAD BLOCK short.
    connection = redis.Redis.from_url(redis_url, socket_timeout=30)
    workers = Workers(tmp_path, redis_url)
    try:
        import omnibus_rq_jobs

        yield Queue(unique("rq"), connection=connection), workers, tmp_path, omnibus_rq_jobs
    finally:
        workers.stop_all()
        connection.close()
        sys.path.remove(str(tmp_path))
        sys.modules.pop("omnibus_rq_jobs", None)


def status_of(job: Job) -> str:
    return job.get_status(refresh=True)


def test_an_enqueued_job_goes_queued_started_finished_and_its_result_is_read(rq_env):
    queue, workers, folder, jobs = rq_env
    gate = folder / "gate"
    job = queue.enqueue(jobs.wait_for, str(gate))
    assert status_of(job) == JobStatus.QUEUED
    assert queue.count == 1 and queue.job_ids == [job.id]
    workers.start(queue.name, "--burst")
    wait_until(lambda: status_of(job) == JobStatus.STARTED, 30, "the job to start")
    assert job.id in StartedJobRegistry(queue=queue)
    assert queue.count == 0
    gate.touch()
    # Blocks on the job's result stream (XREAD BLOCK) until the worker adds its result.
    result = job.latest_result(timeout=10)
    assert result is not None and result.type == Result.Type.SUCCESSFUL
    assert result.return_value == "released"
    wait_until(lambda: status_of(job) == JobStatus.FINISHED, 20, "the job to finish")
    assert job.return_value(refresh=True) == "released" and job.result == "released"
    assert job.id in FinishedJobRegistry(queue=queue)
    assert Job.fetch(job.id, connection=queue.connection).return_value() == "released"


def test_a_failing_job_lands_in_the_failed_registry_with_its_exception(rq_env):
    queue, workers, folder, jobs = rq_env
    job = queue.enqueue(jobs.fail, "boom")
    fine = queue.enqueue(jobs.add, 1, 2)
    workers.burst(queue.name)
    assert status_of(job) == JobStatus.FAILED
    registry = FailedJobRegistry(queue=queue)
    assert job.id in registry and registry.get_job_ids() == [job.id]
    result = job.latest_result()
    assert result.type == Result.Type.FAILED
    assert "ValueError: boom" in result.exc_string
    assert job.return_value(refresh=True) is None
    assert fine.return_value(refresh=True) == 3
    # Requeued from the failed registry, it fails again, once more in the registry.
    registry.requeue(job.id)
    assert job.id not in registry and queue.job_ids == [job.id]
    workers.burst(queue.name)
    assert status_of(job) == JobStatus.FAILED and job.id in registry
    assert len(job.results()) == 2


def test_retry_max_2_runs_a_job_three_times_then_succeeds_or_fails(rq_env):
    queue, workers, folder, jobs = rq_env
    lucky, unlucky = folder / "lucky.runs", folder / "unlucky.runs"
    succeeds = queue.enqueue(jobs.flaky, str(lucky), 2, retry=Retry(max=2))
    fails = queue.enqueue(jobs.flaky, str(unlucky), 5, retry=Retry(max=2))
    assert succeeds.retries_left == 2
    workers.burst(queue.name)
    assert lucky.read_text() == "3" and unlucky.read_text() == "3"
    assert status_of(succeeds) == JobStatus.FINISHED
    assert succeeds.return_value(refresh=True) == 3
    assert status_of(fails) == JobStatus.FAILED
    assert fails.id in FailedJobRegistry(queue=queue)
    assert succeeds.id not in FailedJobRegistry(queue=queue)
    assert Job.fetch(fails.id, connection=queue.connection).retries_left == 0
    assert "RuntimeError: run 3 fails" in fails.latest_result().exc_string


def test_jobs_enqueued_in_and_at_run_when_due_on_a_worker_with_scheduler(rq_env):
    queue, workers, folder, jobs = rq_env
    enqueued = time.time()
    later = queue.enqueue_in(timedelta(seconds=2), jobs.ran_at)
    due = datetime.now(timezone.utc) + timedelta(seconds=3)
    latest = queue.enqueue_at(due, jobs.ran_at)
    assert status_of(later) == JobStatus.SCHEDULED and status_of(latest) == JobStatus.SCHEDULED
    scheduled = ScheduledJobRegistry(queue=queue)
    assert scheduled.get_job_ids() == [later.id, latest.id] and queue.count == 0
    workers.start(queue.name, "--with-scheduler")
    now = queue.enqueue(jobs.ran_at)
    wait_until(lambda: now.return_value(refresh=True), 30, "the unscheduled job to run")
    assert now.return_value() < enqueued + 2, "the unscheduled job waited for the others"
    wait_until(lambda: later.return_value(refresh=True), 30, "the enqueue_in job to run")
    wait_until(lambda: latest.return_value(refresh=True), 30, "the enqueue_at job to run")
    # The scheduled registry's scores are whole seconds: due means from that second on.
    assert later.return_value() >= int(enqueued + 2), "an enqueue_in job ran before it was due"
    assert latest.return_value() >= int(due.timestamp()), "an enqueue_at job ran too early"
    assert scheduled.count == 0


def test_dependent_jobs_wait_for_their_dependencies(rq_env):
    queue, workers, folder, jobs = rq_env
    order = unique("order")
    first = queue.enqueue(jobs.record, order, "first")
    second = queue.enqueue(jobs.record, order, "second", depends_on=first)
    third = queue.enqueue(jobs.record, order, "third", depends_on=[first, second])
    broken = queue.enqueue(jobs.fail, "dependency fails")
    held = queue.enqueue(jobs.record, order, "held", depends_on=broken)
    allowed = queue.enqueue(
        jobs.record, order, "allowed", depends_on=Dependency(jobs=[broken], allow_failure=True)
    )
    assert {status_of(j) for j in (second, third, held, allowed)} == {JobStatus.DEFERRED}
    deferred = DeferredJobRegistry(queue=queue)
    assert set(deferred.get_job_ids()) == {second.id, third.id, held.id, allowed.id}
    assert queue.job_ids == [first.id, broken.id]
    workers.burst(queue.name)
    ran = [entry.decode().split(" ")[0] for entry in queue.connection.lrange(order, 0, -1)]
    assert ran.index("first") < ran.index("second") < ran.index("third")
    assert sorted(ran) == ["allowed", "first", "second", "third"]
    assert status_of(broken) == JobStatus.FAILED
    assert status_of(held) == JobStatus.DEFERRED and held.id in deferred
    assert {status_of(j) for j in (first, second, third, allowed)} == {JobStatus.FINISHED}


def test_100_jobs_over_2_burst_workers_each_run_exactly_once(rq_env):
    queue, workers, folder, jobs = rq_env
    runs = unique("runs")
    enqueued = [queue.enqueue(jobs.record, runs, i) for i in range(100)]
    assert queue.count == 100
    workers.burst(queue.name, count=2, timeout=60)
    done = [entry.decode().split(" ") for entry in queue.connection.lrange(runs, 0, -1)]
    assert sorted(int(i) for i, _ in done) == list(range(100)), "a job ran twice or never"
    assert len({worker for _, worker in done}) == 2, "one worker took every job"
    assert queue.count == 0
    assert FinishedJobRegistry(queue=queue).count == 100
    assert [j.return_value(refresh=True) for j in enqueued] == list(range(100))


def test_queue_count_empty_and_job_cancel_and_delete(rq_env):
    queue, workers, folder, jobs = rq_env
    waiting = [queue.enqueue(jobs.add, i, i) for i in range(5)]
    assert queue.count == 5 and not queue.is_empty()
    waiting[1].cancel()
    assert status_of(waiting[1]) == JobStatus.CANCELED
    assert waiting[1].id in CanceledJobRegistry(queue=queue)
    assert queue.count == 4 and waiting[1].id not in queue.job_ids
    waiting[2].delete()
    with pytest.raises(NoSuchJobError):
        Job.fetch(waiting[2].id, connection=queue.connection)
    assert queue.count == 3
    assert queue.job_ids == [waiting[0].id, waiting[3].id, waiting[4].id]
    # empty() is a Lua script: it pops every job id and deletes each job's hash.
    assert queue.empty() == 3
    assert queue.count == 0 and queue.is_empty()
    for job in (waiting[0], waiting[3], waiting[4]):
        assert not queue.connection.exists(job.key)
    workers.burst(queue.name)
    assert FinishedJobRegistry(queue=queue).count == 0
    assert status_of(waiting[1]) == JobStatus.CANCELED
    # The queue still works afterwards.
    again = queue.enqueue(jobs.add, 20, 22)
    workers.burst(queue.name)
    assert again.return_value(refresh=True) == 42


def test_a_finished_job_s_result_and_a_queued_job_survive_kill_9(broker, rq_env):
    queue, workers, folder, jobs = rq_env
    done = queue.enqueue(jobs.add, 40, 2, result_ttl=600)
    failed = queue.enqueue(jobs.fail, "before the crash")
    workers.burst(queue.name)
    assert done.return_value(refresh=True) == 42
    pending = queue.enqueue(jobs.add, 1, 1)
    name = queue.name
    queue.connection.close()

    broker.restart()
    connection = redis.Redis.from_url(broker.redis_url, socket_timeout=30)
    try:
        queue = Queue(name, connection=connection)
        again = Job.fetch(done.id, connection=connection)
        assert again.get_status() == JobStatus.FINISHED and again.return_value() == 42
        assert done.id in FinishedJobRegistry(queue=queue)
        assert failed.id in FailedJobRegistry(queue=queue)
        assert "ValueError: before the crash" in Job.fetch(
            failed.id, connection=connection
        ).latest_result().exc_string
        assert queue.job_ids == [pending.id]
        assert Job.fetch(pending.id, connection=connection).get_status() == JobStatus.QUEUED
        # A worker on the restarted broker runs the job that was waiting.
        workers.url = broker.redis_url
        workers.burst(name)
        assert Job.fetch(pending.id, connection=connection).return_value() == 2
        assert queue.count == 0
    finally:
        connection.close()
