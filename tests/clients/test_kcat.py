"""kcat (librdkafka's command-line client, from the OS packages) against omnibus:
`-L` metadata, `-P` produce, `-C` consume, `-G` balanced group consumption."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import time
from collections import Counter

from harness import HOST, unique

RUN_TIMEOUT_S = 60
FORMAT = "%p|%o|%k|%s\\n"  # partition|offset|key|value, one record a line


def kcat(bootstrap: str, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(
        ["kcat", "-b", bootstrap, "-X", "broker.address.family=v4", *args],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert done.returncode == 0, (
        f"kcat {' '.join(args)} exited {done.returncode}: {done.stderr.decode(errors='replace')}"
    )
    return done


def parse(lines: list[bytes]) -> list[tuple[int, int, str, str]]:
    out = []
    for line in lines:
        p, o, k, v = line.decode().split("|", 3)
        out.append((int(p), int(o), k, v))
    return out


class GroupReader:
    """`kcat -G GROUP TOPIC` in the background; reads its lines with a deadline, stops it with
    SIGINT (kcat then closes the consumer: commits and leaves the group)."""

    def __init__(self, bootstrap: str, group: str, topic: str):
        self.process = subprocess.Popen(
            ["kcat", "-b", bootstrap, "-X", "broker.address.family=v4", "-X", "auto.offset.reset=earliest",
             "-X", "session.timeout.ms=10000", "-u", "-q", "-f", FORMAT, "-G", group, topic],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.buffer = b""
        self.lines: list[bytes] = []

    def read(self, count: int, timeout: float) -> None:
        """Reads until `count` lines in all arrived or `timeout` passed."""
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        try:
            while len(self.lines) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                if not selector.select(timeout=min(left, 0.5)):
                    if self.process.poll() is not None:
                        return
                    continue
                chunk = os.read(self.process.stdout.fileno(), 65536)
                if not chunk:
                    return
                self.buffer += chunk
                *complete, self.buffer = self.buffer.split(b"\n")
                self.lines.extend(complete)
        finally:
            selector.close()

    def stop(self) -> str:
        """SIGINT, then wait (bounded) for kcat to close cleanly; returns its stderr."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            _, stderr = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, stderr = self.process.communicate(timeout=10)
            raise AssertionError("kcat -G did not stop within 30s of SIGINT")
        return stderr.decode(errors="replace")


def test_kcat_lists_metadata(broker, bootstrap):
    topic = unique("kcat-meta")
    broker.create_stream(topic, 3)
    listing = json.loads(kcat(bootstrap, "-L", "-J").stdout)
    names = [t["topic"] for t in listing["topics"]]
    assert topic in names, f"kcat -L listed {names}"
    [entry] = [t for t in listing["topics"] if t["topic"] == topic]
    assert "error" not in entry or not entry["error"], entry
    assert sorted(p["partition"] for p in entry["partitions"]) == [0, 1, 2]
    brokers = {b["id"]: b["name"] for b in listing["brokers"]}
    assert f"{HOST}:{broker.kafka_port}" in brokers.values(), f"brokers: {brokers}"
    for p in entry["partitions"]:
        assert p["leader"] in brokers, f"partition {p['partition']} leader {p['leader']} not in {brokers}"

    # The plain text form, for one topic.
    text = kcat(bootstrap, "-L", "-t", topic).stdout.decode()
    assert f'topic "{topic}" with 3 partitions' in text, text


def test_kcat_produce_then_consume(broker, bootstrap):
    topic = unique("kcat-pc")
    broker.create_stream(topic, 3)
    lines = [f"user{i % 5}:line {i}" for i in range(50)]
    kcat(bootstrap, "-P", "-t", topic, "-K", ":", "-X", "acks=all", stdin=("\n".join(lines) + "\n").encode())

    # The stream has them (HTTP), keyed.
    stored = [r for p in range(3) for r in broker.read_partition(topic, p)]
    assert sorted((r["key"], r["value"]) for r in stored) == sorted(tuple(l.split(":", 1)) for l in lines)

    done = kcat(bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", FORMAT)
    records = parse(done.stdout.splitlines())
    assert Counter((k, v) for _, _, k, v in records) == Counter(tuple(l.split(":", 1)) for l in lines)
    # Per partition: offsets dense from 0, and per key in the order written.
    for p in range(3):
        offsets = [o for q, o, _, _ in records if q == p]
        assert offsets == list(range(len(offsets))), f"partition {p} offsets {offsets}"
    for key in {f"user{i}" for i in range(5)}:
        seqs = [int(v.split()[1]) for _, _, k, v in records if k == key]
        assert seqs == sorted(seqs), f"{key}: {seqs}"


def test_kcat_group_consumption_resumes_after_commit(broker, bootstrap):
    topic = unique("kcat-g")
    group = unique("kcat-group")
    broker.create_stream(topic, 3)
    first = [f"first {i}" for i in range(40)]
    kcat(bootstrap, "-P", "-t", topic, stdin=("\n".join(first) + "\n").encode())

    reader = GroupReader(bootstrap, group, topic)
    try:
        reader.read(len(first), timeout=60)
    finally:
        stderr = reader.stop()
    got = [v for _, _, _, v in parse(reader.lines)]
    assert Counter(got) == Counter(first), f"kcat -G read {len(got)} of {len(first)}; stderr: {stderr}"

    second = [f"second {i}" for i in range(10)]
    kcat(bootstrap, "-P", "-t", topic, stdin=("\n".join(second) + "\n").encode())
    reader = GroupReader(bootstrap, group, topic)
    try:
        reader.read(len(second), timeout=60)
        reader.read(len(second) + 1, timeout=2)  # anything more would be a re-delivery
    finally:
        stderr = reader.stop()
    got = [v for _, _, _, v in parse(reader.lines)]
    assert Counter(got) == Counter(second), (
        f"the same group after a clean stop should read only the 10 new lines, read {got}; stderr: {stderr}"
    )
