"""BullMQ, the job-queue library for Node, against the Redis door: the scenarios are in
node/bullmq.test.mjs (node's own test runner); this runs them against the suite's broker.
BullMQ moves jobs with Lua scripts that also append to the queue's events stream (XADD,
XTRIM inside scripts), and QueueEvents reads that stream with XREAD BLOCK. Also jobs added
while the broker is killed with -9 (node/bullmq-kill9.mjs): none acknowledged is lost.
scripts/client-tests.sh installs the pinned BullMQ (npm ci)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

from harness import NODE_DIR, run_node_suite, unique


def test_bullmq_scenarios(redis_url):
    run_node_suite("bullmq.test.mjs", "bullmq", {"OMNIBUS_REDIS_URL": redis_url}, scenarios=9)


def _node(mode: str, queue: str, redis_url: str, **options) -> subprocess.Popen:
    return subprocess.Popen(
        [shutil.which("node") or "node", "bullmq-kill9.mjs", mode, queue],
        cwd=NODE_DIR,
        env={**os.environ, "OMNIBUS_REDIS_URL": redis_url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **options,
    )


def test_bullmq_jobs_survive_kill_9(broker, redis_url):
    """Jobs added while the broker is killed with -9: every job whose `queue.add` returned is
    there after the restart, waiting, and a Worker then runs each of them once."""
    queue = unique("survivors")
    adder = _node("add", queue, redis_url)
    time.sleep(1.5)
    broker.kill9()
    out, err = adder.communicate(timeout=60)
    acknowledged = out.split()
    assert len(acknowledged) > 20, f"too few jobs added before the kill: {out!r} {err}"

    broker.start()
    checker = _node("check", queue, broker.redis_url)
    out, err = checker.communicate(timeout=120)
    assert checker.returncode == 0, err
    seen = json.loads(out.strip().splitlines()[-1])
    waiting, processed = set(seen["waiting"]), seen["processed"]
    lost = [job for job in acknowledged if job not in waiting]
    assert not lost, f"{len(lost)} acknowledged jobs lost, e.g. {lost[:5]}"
    assert len(processed) == len(set(processed)), "a job ran twice"
    assert set(acknowledged) <= set(processed)
    print(f"crash summary: test_bullmq [kill -9] acknowledged={len(acknowledged)} lost=0")
