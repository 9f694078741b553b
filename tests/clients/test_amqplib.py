"""amqplib, the AMQP 0-9-1 client for Node, against the AMQP door: the scenarios are in
node/amqplib.test.mjs (node's own test runner); this runs them against the suite's broker
and fails with their report when any fails. scripts/client-tests.sh installs the pinned
amqplib into node/node_modules (npm ci)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).parent / "node"


def test_amqplib_scenarios(amqp_url):
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / "amqplib").is_dir():
        pytest.fail("node and tests/clients/node/node_modules are needed: run scripts/client-tests.sh",
                    pytrace=False)
    result = subprocess.run(
        [node, "--test", "--test-reporter=spec", "amqplib.test.mjs"],
        cwd=NODE_DIR,
        env={**os.environ, "OMNIBUS_AMQP_URL": amqp_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    # Every scenario ran (a file that failed to load would report none).
    assert "# pass 7" in report or "ℹ pass 7" in report, report
