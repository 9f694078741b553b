"""confluent-kafka (librdkafka) helpers shared by the suites. Every wait is bounded."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition

from harness import kafka_debug_conf


def producer_conf(bootstrap: str, **extra) -> dict:
    conf = {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "message.timeout.ms": 30000,
        "socket.timeout.ms": 10000,
        "broker.address.family": "v4",
    }
    conf.update(kafka_debug_conf())
    conf.update(extra)
    return conf


def consumer_conf(bootstrap: str, group: Optional[str] = None, **extra) -> dict:
    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": group or "omnibus-clients-unused",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 1000,
        "socket.timeout.ms": 10000,
        "broker.address.family": "v4",
    }
    conf.update(kafka_debug_conf())
    conf.update(extra)
    return conf


@dataclass
class Delivery:
    key: Optional[bytes]
    value: Optional[bytes]
    partition: int
    offset: int
    error: Optional[KafkaError]


@dataclass
class ProduceResult:
    deliveries: list[Delivery] = field(default_factory=list)

    @property
    def failed(self) -> list[Delivery]:
        return [d for d in self.deliveries if d.error is not None]

    @property
    def delivered(self) -> list[Delivery]:
        return [d for d in self.deliveries if d.error is None]


def produce_all(
    producer: Producer,
    topic: str,
    messages: list[tuple],
    timeout: float = 60.0,
) -> ProduceResult:
    """Produces (key, value[, headers]) tuples; waits for every delivery report.

    Fails the test unless every message got a report within `timeout` and every report is a
    success with a real offset.
    """
    result = ProduceResult()

    def on_delivery(error, message):
        result.deliveries.append(
            Delivery(
                key=message.key(),
                value=message.value(),
                partition=message.partition(),
                offset=message.offset() if error is None else -1,
                error=error,
            )
        )

    deadline = time.monotonic() + timeout
    for item in messages:
        key, value = item[0], item[1]
        headers = item[2] if len(item) > 2 else None
        while True:
            try:
                producer.produce(topic, value=value, key=key, headers=headers, on_delivery=on_delivery)
                break
            except BufferError:
                if time.monotonic() > deadline:
                    raise AssertionError("the producer's queue stayed full: the broker is not acknowledging")
                producer.poll(0.1)
        producer.poll(0)
    remaining = producer.flush(max(0.0, deadline - time.monotonic()))
    assert remaining == 0, (
        f"{remaining} of {len(messages)} messages still had no delivery report after {timeout:.0f}s"
    )
    assert len(result.deliveries) == len(messages)
    failed = result.failed
    assert not failed, f"{len(failed)} deliveries failed, first: {failed[0].error}"
    for d in result.deliveries:
        assert d.offset >= 0, f"delivery report without an offset: {d}"
    return result


def read_partitions(
    bootstrap: str,
    topic: str,
    partitions: list[int],
    expected: int,
    timeout: float = 60.0,
    linger: float = 0.0,
    **conf,
) -> list:
    """Reads with assign() (no group) from the beginning of `partitions` until `expected`
    messages arrived (then `linger` seconds more, to catch extras); returns the messages."""
    consumer = Consumer(consumer_conf(bootstrap, **conf))
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < expected and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=500, timeout=0.5):
                if check_message(message):
                    got.append(message)
        extra_deadline = time.monotonic() + linger
        while time.monotonic() < extra_deadline:
            for message in consumer.consume(num_messages=500, timeout=0.2):
                if check_message(message):
                    got.append(message)
        assert len(got) >= expected, (
            f"read {len(got)} of {expected} messages from {topic} {partitions} within {timeout:.0f}s"
        )
        return got
    finally:
        consumer.close()


def check_message(message) -> bool:
    """True for a record; fails on a consumer error event; False for a partition EOF event."""
    error = message.error()
    if error is None:
        return True
    if error.code() == KafkaError._PARTITION_EOF:
        return False
    raise AssertionError(f"consumer error on {message.topic()} [{message.partition()}]: {error}")


def commit_sync(consumer: Consumer) -> None:
    """Synchronous commit of everything consumed so far."""
    try:
        consumer.commit(asynchronous=False)
    except KafkaException as exception:
        if exception.args[0].code() != KafkaError._NO_OFFSET:
            raise
