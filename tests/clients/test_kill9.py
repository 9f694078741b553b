"""kill -9 through Kafka: every message whose produce was acknowledged (acks=all) is readable,
at the offset its delivery report named, after the broker restarts on the same data dir.

`OMNIBUS_KILL9_CYCLES=<n>` sets the number of kill cycles (default 3; scripts/crash-campaign.sh
runs 100); `OMNIBUS_KILL9_SEED` replays the kill points. The last line printed is the summary:
`crash summary: test_kill9 [kill -9] cycles=<n> acknowledged=<n> lost=0 ...`."""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter

from confluent_kafka import Producer

from ck import producer_conf, read_partitions
from harness import unique, wait_until


PARTITIONS = 4
CYCLES_DEFAULT = 3
PRODUCE_TIME_MAX_S = 30.0
MESSAGES_PER_CYCLE_MAX = 200_000
# A long run moves to a fresh topic after this many cycles, so that the full read-back after
# every restart stays short and the run time grows linearly with the cycle count.
CYCLES_PER_TOPIC = 20


def cycles() -> int:
    text = os.environ.get("OMNIBUS_KILL9_CYCLES", "").strip()
    if not text:
        return CYCLES_DEFAULT
    if not text.isdigit() or int(text) < 1:
        raise AssertionError(f"OMNIBUS_KILL9_CYCLES={text!r} is not a positive count")
    return int(text)


class Load:
    """A producer thread: acks=all, idempotent, as fast as the broker takes it, until stopped."""

    def __init__(self, bootstrap: str, topic: str, cycle: int):
        # A small local queue keeps the producer close to the broker.
        self.producer = Producer(producer_conf(bootstrap, **{
            "linger.ms": 2, "message.timeout.ms": 15000, "queue.buffering.max.messages": 5000,
        }))
        self.topic = topic
        self.cycle = cycle
        self.reports: list = []  # (error, partition, offset, value)
        self.acked = 0
        self.sent = 0
        self.failure = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"load-{cycle}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _on_delivery(self, error, message) -> None:
        self.reports.append((error, message.partition(), message.offset(), message.value()))
        if error is None:
            self.acked += 1

    def _run(self) -> None:
        try:
            while not self.stopping.is_set() and self.sent < MESSAGES_PER_CYCLE_MAX:
                try:
                    self.producer.produce(self.topic, key=f"k{self.sent % 16}".encode(),
                                          value=f"c{self.cycle}-{self.sent:07d}".encode(),
                                          on_delivery=self._on_delivery)
                    self.sent += 1
                except BufferError:
                    self.producer.poll(0.005)
                self.producer.poll(0)
            # Reports the broker answered before it died still count; the rest never come.
            self.producer.poll(0.5)
            self.producer.purge()
            self.producer.flush(10)
        except Exception as error:  # reported by the test thread
            self.failure = f"producer thread: {error!r}"

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the producer thread did not stop within 30s"


def test_acknowledged_messages_survive_kill_9(broker, bootstrap):
    seed = int(os.environ.get("OMNIBUS_KILL9_SEED", random.randrange(1 << 30)))
    print(f"kill -9 test seed: {seed} (rerun with OMNIBUS_KILL9_SEED={seed})")
    rng = random.Random(seed)
    cycle_count = cycles()
    started = time.monotonic()
    acknowledged_total = failed_total = 0
    delivered: dict[tuple[int, int], bytes] = {}  # (partition, offset) -> value, this topic

    for cycle in range(cycle_count):
        if cycle % CYCLES_PER_TOPIC == 0:
            acknowledged_total += len(delivered)
            delivered = {}
            topic = unique("kill9")
            broker.create_stream(topic, PARTITIONS)
        kill_after = rng.randrange(500, 20000)  # acknowledged messages before the kill
        load = Load(broker.bootstrap, topic, cycle)
        load.start()
        try:
            wait_until(lambda: load.acked >= kill_after or load.failure, PRODUCE_TIME_MAX_S,
                       f"cycle {cycle}: {kill_after} acknowledged messages (have {load.acked})", interval=0.001)
            assert not load.failure, load.failure
            # The producer keeps going: the kill lands with produce requests in flight.
            broker.kill9()
        finally:
            load.stop()
        reports = load.reports

        acked = [(p, o, v) for error, p, o, v in reports if error is None]
        failed_total += len(reports) - len(acked)
        for p, o, v in acked:
            assert (p, o) not in delivered, f"cycle {cycle}: offset {p}/{o} acknowledged twice"
            delivered[(p, o)] = v
        print(f"cycle {cycle}: sent {load.sent}, kill -9 after {kill_after} acknowledged: "
              f"{len(acked)} acknowledged in all, {len(reports) - len(acked)} not")

        # The restart binds new ports (port 0; asking for the old ones again could race with
        # any other process on the machine). Nothing has to reconnect to the old address:
        # each cycle makes its producer and its reader from `broker.bootstrap` afresh.
        broker.start()
        messages = read_partitions(broker.bootstrap, topic, list(range(PARTITIONS)), len(delivered), linger=1.0)
        found = {(m.partition(), m.offset()): m.value() for m in messages}
        lost = [(p, o, v) for (p, o), v in delivered.items() if found.get((p, o)) != v]
        assert not lost, (
            f"after kill -9 #{cycle + 1}: {len(lost)} acknowledged messages are missing or changed, "
            f"e.g. {[(p, o, v, found.get((p, o))) for p, o, v in lost[:5]]}"
        )
        doubled = [v for v, n in Counter(m.value() for m in messages).items() if n > 1]
        assert not doubled, f"idempotent producer, yet stored twice: {doubled[:5]}"
        for p in range(PARTITIONS):
            offsets = sorted(o for q, o in found if q == p)
            assert offsets == list(range(len(offsets))), f"partition {p}: offsets are not dense"
    acknowledged_total += len(delivered)
    # Every cycle asserted that no acknowledged message was lost, so reaching here means 0.
    print(f"crash summary: test_kill9 [kill -9] cycles={cycle_count} acknowledged={acknowledged_total} "
          f"lost=0 unacknowledged={failed_total} seed={seed} "
          f"seconds={time.monotonic() - started:.1f}")
