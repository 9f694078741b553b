"""node-redis (the `redis` npm package), the most used Redis client for Node, against the
Redis door: the scenarios are in node/node-redis.test.mjs (node's own test runner); this runs
them against the suite's broker. scripts/client-tests.sh installs the pinned package (npm ci)."""

from __future__ import annotations

from harness import run_node_suite


def test_node_redis_scenarios(redis_url):
    run_node_suite("node-redis.test.mjs", "redis", {"OMNIBUS_REDIS_URL": redis_url}, scenarios=7)
