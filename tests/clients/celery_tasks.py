"""The Celery app and tasks the Celery suites run (test_celery.py, and celery_scenarios.py
under an older Celery): copied into each test's folder as `omnibus_tasks`, the module the
`celery worker` processes load. The broker URL comes from OMNIBUS_TEST_BROKER_URL."""
import os
import time

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


@app.task
def record(i, path):
    # One line per run, appended atomically (O_APPEND) from any worker process.
    with open(path, "a") as handle:
        handle.write(f"{i}\n")
    return i


@app.task(bind=True, max_retries=2)
def doomed(self, marker):
    # Fails every run; after its last retry the original exception is the task's result.
    with open(marker, "a") as handle:
        handle.write("run\n")
    raise self.retry(exc=ValueError(f"boom on run {self.request.retries + 1}"), countdown=0.2)


@app.task(acks_late=True)
def slow(marker):
    # Records each run, then works for longer than any test waits.
    with open(marker, "a") as handle:
        handle.write("run\n")
    time.sleep(60)
