#!/usr/bin/env python3
"""Print the median throughput of every criterion benchmark under target/criterion.

Criterion's console output shows a mean with a confidence interval; on shared, noisy machines
we quote medians, which it stores in each benchmark's estimates.json.
"""
import json
import os
import sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.environ.get("CARGO_TARGET_DIR", "target"), "criterion")
for directory, _, files in sorted(os.walk(root)):
    if not directory.endswith(os.sep + "new") or "estimates.json" not in files:
        continue
    with open(os.path.join(directory, "estimates.json")) as f:
        estimates = json.load(f)
    with open(os.path.join(directory, "benchmark.json")) as f:
        benchmark = json.load(f)
    seconds = estimates["median"]["point_estimate"] / 1e9
    name = benchmark["full_id"]
    throughput = benchmark.get("throughput") or {}
    if "Elements" in throughput:
        print(f"{name}: median {seconds * 1000:.1f} ms/iter, "
              f"{throughput['Elements'] / seconds:,.0f} elements/s")
    elif "Bytes" in throughput:
        print(f"{name}: median {seconds * 1000:.1f} ms/iter, "
              f"{throughput['Bytes'] / seconds / 1e6:,.1f} MB/s")
    else:
        print(f"{name}: median {seconds * 1e6:.1f} us/iter")
