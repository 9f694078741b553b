"""kill -9 through Kafka: every message whose produce was acknowledged (acks=all) is readable,
at the offset its delivery report named, after the broker restarts on the same data dir."""

from __future__ import annotations

import os
import random
import threading
from collections import Counter

from confluent_kafka import Producer

from ck import producer_conf, read_partitions
from harness import unique, wait_until

PARTITIONS = 4
CYCLES = 3
PRODUCE_TIME_MAX_S = 30.0
MESSAGES_PER_CYCLE_MAX = 200_000


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
    topic = unique("kill9")
    broker.create_stream(topic, PARTITIONS)
    delivered: dict[tuple[int, int], bytes] = {}  # (partition, offset) -> value, over all cycles
    failed_total = 0

    for cycle in range(CYCLES):
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

        broker.start(keep_ports=True)
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
    print(f"{len(delivered)} acknowledged messages survived {CYCLES} kill -9s ({failed_total} unacknowledged)")
