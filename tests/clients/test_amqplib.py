"""amqplib, the AMQP 0-9-1 client for Node, against the AMQP door: the scenarios are in
node/amqplib.test.mjs (node's own test runner); this runs them against the suite's broker
and fails with their report when any fails. scripts/client-tests.sh installs the pinned
amqplib into node/node_modules (npm ci)."""

from __future__ import annotations

from harness import run_node_suite


def test_amqplib_scenarios(amqp_url):
    run_node_suite("amqplib.test.mjs", "amqplib", {"OMNIBUS_AMQP_URL": amqp_url}, scenarios=7)
