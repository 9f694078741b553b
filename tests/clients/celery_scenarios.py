"""Celery end to end under whichever Celery the interpreter running this script has: the
client here and a `celery worker` it starts with the same interpreter. test_celery.py runs it
with the older Celery of .venv-celery-5.3 (requirements-celery-5.3.txt), so both the client
and the worker speak that version's kombu and py-amqp.

    python celery_scenarios.py BROKER_URL FOLDER

Prints the versions, one line per scenario passed, then "all scenarios passed"; exits 1 with
the worker's log at the first that fails."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path


def run(tasks, folder: Path) -> None:
    from celery import chain, group

    assert tasks.add.delay(2, 3).get(timeout=60) == 5
    print("delay: ok", flush=True)
    marker = folder / "flaky.count"
    started = time.monotonic()
    assert tasks.flaky.delay(str(marker)).get(timeout=60) == 2
    assert marker.read_text() == "2" and time.monotonic() - started >= 0.9
    print("retry with countdown: ok", flush=True)
    started = time.monotonic()
    assert tasks.add.apply_async((1, 2), countdown=2).get(timeout=30) == 3
    assert time.monotonic() - started >= 1.9, "an ETA task ran before it was due"
    print("countdown: ok", flush=True)
    assert chain(tasks.add.s(1, 2), tasks.add.s(3)).apply_async().get(timeout=30) == 6
    assert group(tasks.add.s(i, i) for i in range(5)).apply_async().get(timeout=30) == [0, 2, 4, 6, 8]
    print("chain and group: ok", flush=True)
    replies = tasks.app.control.ping(timeout=2.0)
    assert any("pong" in str(reply) for reply in replies), replies
    print("control ping: ok", flush=True)
    doomed = tasks.doomed.delay(str(folder / "doomed.runs"))
    try:
        doomed.get(timeout=60)
        raise AssertionError("the doomed task succeeded")
    except ValueError as error:
        assert "boom on run 3" in str(error), error
    assert doomed.state == "FAILURE"
    print("retries exhausted, exception stored: ok", flush=True)


def main() -> int:
    broker_url, folder = sys.argv[1], Path(sys.argv[2])
    shutil.copy(Path(__file__).parent / "celery_tasks.py", folder / "omnibus_tasks.py")
    os.environ["OMNIBUS_TEST_BROKER_URL"] = broker_url
    sys.path.insert(0, str(folder))
    import amqp
    import celery
    import kombu

    print(f"celery {celery.__version__}, kombu {kombu.__version__}, py-amqp {amqp.__version__}", flush=True)
    import omnibus_tasks

    log_path = folder / "worker.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "omnibus_tasks", "worker",
             "--loglevel=info", "--concurrency=2", "--hostname=scenarios@%h"],
            cwd=folder,
            env=dict(os.environ),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        run(omnibus_tasks, folder)
    except BaseException:
        print("--- worker.log ---\n" + log_path.read_text(errors="replace")[-4000:], flush=True)
        raise
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    print("all scenarios passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
