"""BullMQ, the job-queue library for Node, against the Redis door: the scenarios are in
node/bullmq.test.mjs (node's own test runner); this runs them against the suite's broker.
BullMQ moves jobs with Lua scripts that also append to the queue's events stream (XADD,
XTRIM inside scripts), and QueueEvents reads that stream with XREAD BLOCK.
scripts/client-tests.sh installs the pinned BullMQ (npm ci)."""

from __future__ import annotations

from harness import run_node_suite


def test_bullmq_scenarios(redis_url):
    run_node_suite("bullmq.test.mjs", "bullmq", {"OMNIBUS_REDIS_URL": redis_url}, scenarios=5)
