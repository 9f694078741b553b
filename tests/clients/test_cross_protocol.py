"""A Kafka topic is an Omnibus stream: what Kafka writes, HTTP and the CLI read, and back.

An AMQP queue is an engine queue, which is a stream of the same name with one partition
(docs/amqp.md, docs/queues.md), and a Kafka topic and a JetStream stream are Omnibus streams
(docs/kafka.md, docs/nats.md): so what AMQP publishes into a queue, Kafka and a JetStream
consumer read, without taking it from the queue. The other way, a Kafka produce to the
queue's topic and a NATS publish on its name (core or JetStream) are enqueued into the queue
(engine/src/queue/bridged.rs), so pika consumes them."""

from __future__ import annotations

import asyncio
import base64
import time
from collections import Counter

import nats
import pika
from confluent_kafka import Producer

from ck import produce_all, producer_conf, read_partitions
from harness import unique

PARTITIONS = 3


def http_bytes(record: dict, name: str):
    """A fetched record's key or value as bytes (None when absent)."""
    if name in record and record[name] is not None:
        return record[name].encode()
    if f"{name}_base64" in record:
        return base64.b64decode(record[f"{name}_base64"])
    return None


def http_headers(record: dict) -> dict:
    headers = {k: v.encode() for k, v in (record.get("headers") or {}).items()}
    for k, v in (record.get("headers_base64") or {}).items():
        headers[k] = base64.b64decode(v)
    return headers


def test_kafka_produce_is_readable_over_http_and_cli(broker, bootstrap):
    topic = unique("k2h")
    broker.create_stream(topic, PARTITIONS)
    messages = [
        (
            f"key-{i % 7}".encode(),
            f"kafka-to-http-{i}".encode(),
            [("source", b"confluent-kafka"), ("seq", str(i).encode())],
        )
        for i in range(60)
    ]
    binary = (b"\x01\x02\xff", b"\x00\xff\xfe\x80binary", [("bin", b"\xff\x00")])
    messages.append(binary)

    producer = Producer(producer_conf(bootstrap))
    result = produce_all(producer, topic, messages)

    # HTTP: every delivered message sits at the partition and offset its report named.
    stored = {}
    for p in range(PARTITIONS):
        for record in broker.read_partition(topic, p):
            stored[(p, record["offset"])] = record
    assert len(stored) == len(messages), (
        f"HTTP shows {len(stored)} records in {topic}, Kafka delivered {len(messages)}"
    )
    sent = {m[1]: m for m in messages}
    for d in result.deliveries:
        record = stored.get((d.partition, d.offset))
        assert record is not None, f"delivered at {d.partition}/{d.offset} but HTTP has nothing there"
        key, value, headers = sent[d.value]
        assert http_bytes(record, "value") == value
        assert http_bytes(record, "key") == key
        assert http_headers(record) == dict(headers), f"headers of {value!r} at {d.partition}/{d.offset}"
    assert broker.partition_count(topic) == PARTITIONS

    # CLI: `omnibus consume` prints every value once.
    done = broker.cli("consume", topic, "--count", str(len(messages)))
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    lines = done.stdout.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    assert len(lines) == len(messages), f"`omnibus consume` printed {len(lines)} lines"
    counts = Counter(lines)
    for key, value, _ in messages[:-1]:
        assert counts[value] == 1, f"`omnibus consume` printed {value!r} {counts[value]} times"


def test_http_publish_is_consumed_by_kafka_with_keys_values_headers(broker, bootstrap):
    topic = unique("h2k")
    broker.create_stream(topic, PARTITIONS)
    records = [
        {
            "key": f"user-{i % 5}",
            "value": f"http-to-kafka-{i}",
            "headers": {"trace-id": f"t{i:04d}", "content-type": "text/plain"},
        }
        for i in range(40)
    ]
    records.append({"key_base64": base64.b64encode(b"\xfe\x01").decode(),
                    "value_base64": base64.b64encode(b"\x00\x9f\xffraw").decode(),
                    "headers": {"kind": "binary"}})
    positions = broker.publish(topic, records)
    assert len(positions) == len(records)

    messages = read_partitions(bootstrap, topic, list(range(PARTITIONS)), len(records), linger=1.0)
    assert len(messages) == len(records), f"Kafka read {len(messages)} records, HTTP published {len(records)}"
    by_position = {(m.partition(), m.offset()): m for m in messages}
    for record, position in zip(records, positions):
        message = by_position.get((position["partition"], position["offset"]))
        assert message is not None, f"HTTP put a record at {position}, Kafka has none there"
        key = record["key"].encode() if "key" in record else base64.b64decode(record["key_base64"])
        value = record["value"].encode() if "value" in record else base64.b64decode(record["value_base64"])
        assert message.key() == key
        assert message.value() == value
        headers = [(k, v.encode()) for k, v in record["headers"].items()]
        assert (message.headers() or []) == headers, f"headers of {value!r}"
        assert message.topic() == topic


def test_a_key_lands_on_the_same_partition_through_kafka_and_http(broker, bootstrap):
    """HTTP partitions by key with Kafka's murmur2; so does a producer using murmur2."""
    topic = unique("keys")
    broker.create_stream(topic, 4)
    keys = [f"customer-{i}" for i in range(24)]
    producer = Producer(producer_conf(bootstrap, partitioner="murmur2_random"))
    result = produce_all(producer, topic, [(k.encode(), b"via-kafka") for k in keys])
    kafka_partition = {d.key.decode(): d.partition for d in result.deliveries}
    positions = broker.publish(topic, [{"key": k, "value": "via-http"} for k in keys])
    http_partition = {k: pos["partition"] for k, pos in zip(keys, positions)}
    assert http_partition == kafka_partition
    assert len(set(http_partition.values())) > 1, "24 keys should spread over several partitions"


def amqp_publish_confirmed(amqp_url: str, queue: str, bodies: list[bytes]) -> None:
    """Declares a durable `queue` and publishes `bodies` to it with confirms (each publish
    returns once it is stored)."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        channel.queue_declare(queue, durable=True)
        channel.confirm_delivery()
        for body in bodies:
            channel.basic_publish(
                "", queue, body, pika.BasicProperties(content_type="text/plain", headers={"origin": "pika"})
            )
    finally:
        connection.close()


def amqp_get_all(amqp_url: str, queue: str) -> list[bytes]:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        bodies = []
        while True:
            method, _, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return bodies
            bodies.append(body)
    finally:
        connection.close()


def test_amqp_publish_is_read_over_kafka_and_stays_in_the_queue(broker, amqp_url, bootstrap):
    # Letters, digits and '-' only: the queue's engine name, and so the topic, is the same.
    queue = unique("a2k")
    bodies = [f"amqp-to-kafka-{i}".encode() for i in range(20)]
    amqp_publish_confirmed(amqp_url, queue, bodies)

    messages = read_partitions(bootstrap, queue, [0], len(bodies), linger=1.0)
    assert [m.value() for m in messages] == bodies, "Kafka reads the queue's stream in publish order"
    assert [m.offset() for m in messages] == list(range(len(bodies)))
    for message in messages:
        headers = dict(message.headers() or [])
        assert headers.get("omnibus.routing_key") == queue.encode()
        assert "amqp.properties" in headers, "the AMQP properties travel as a header"
        assert message.topic() == queue

    # A Kafka fetch reads the stream; it does not take the messages from the AMQP queue.
    assert amqp_get_all(amqp_url, queue) == bodies


def test_amqp_publish_is_fetched_by_a_jetstream_consumer(broker, amqp_url, nats_url):
    queue = unique("a2n")
    bodies = [f"amqp-to-nats-{i}".encode() for i in range(5)]
    amqp_publish_confirmed(amqp_url, queue, bodies)

    async def scenario():
        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            info = await js.stream_info(queue)
            assert info.state.messages == len(bodies)
            subscription = await js.pull_subscribe("", durable="reader", stream=queue)
            got = []
            while len(got) < len(bodies):
                batch = await subscription.fetch(len(bodies) - len(got), timeout=5)
                for message in batch:
                    await message.ack()
                got.extend(batch)
            return got
        finally:
            await nc.close()

    got = asyncio.run(asyncio.wait_for(scenario(), timeout=60))
    assert [m.data for m in got] == bodies
    # The queue's stream has no subjects of its own: its records carry its name.
    assert {m.subject for m in got} == {queue}
    # JetStream sequence = Omnibus offset + 1.
    assert [m.metadata.sequence.stream for m in got] == list(range(1, len(bodies) + 1))
    assert all(m.headers and m.headers.get("omnibus.routing_key") == queue for m in got)
    # The JetStream consumer's acks settle its own deliveries, not the AMQP queue's.
    assert amqp_get_all(amqp_url, queue) == bodies


def amqp_get_messages(amqp_url: str, queue: str, count: int, timeout: float = 10.0) -> list:
    """`count` messages from `queue` by basic.get (acked): (method, properties, body)."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < count:
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                assert time.monotonic() < deadline, f"{len(got)} of {count} arrived on {queue}"
                time.sleep(0.02)
                continue
            got.append((method, properties, body))
        assert channel.basic_get(queue, auto_ack=True)[0] is None, "more than were sent"
        return got
    finally:
        connection.close()


def amqp_declare(amqp_url: str, queue: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        connection.channel().queue_declare(queue, durable=True)
    finally:
        connection.close()


def test_a_kafka_produce_to_a_queues_topic_is_consumed_over_amqp(broker, amqp_url, bootstrap):
    queue = unique("k2a")
    amqp_declare(amqp_url, queue)
    producer = Producer(producer_conf(bootstrap))
    sent = [(f"key-{i}".encode(), f"kafka-to-amqp-{i}".encode(), [("trace", f"t{i}".encode())]) for i in range(10)]
    result = produce_all(producer, queue, sent)
    assert [d.offset for d in result.deliveries] == list(range(10))
    got = amqp_get_messages(amqp_url, queue, len(sent))
    assert [body for _, _, body in got] == [value for _, value, _ in sent]
    for i, (method, properties, _) in enumerate(got):
        assert (method.exchange, method.routing_key) == ("", queue), "as if published to the queue by name"
        assert properties.headers["trace"] == f"t{i}"
    # Taken from the queue: a second consumer finds nothing.
    assert amqp_get_all(amqp_url, queue) == []


def test_a_nats_publish_on_a_queues_name_is_consumed_over_amqp(broker, amqp_url, nats_url):
    queue = unique("n2a")
    amqp_declare(amqp_url, queue)

    async def scenario():
        nc = await nats.connect(nats_url)
        try:
            await nc.publish(queue, b"core-1", headers={"origin": "nats"})
            await nc.publish(queue, b"core-2")
            await nc.flush()
            ack = await nc.jetstream().publish(queue, b"jetstream-3")
            return ack
        finally:
            await nc.close()

    ack = asyncio.run(asyncio.wait_for(scenario(), timeout=30))
    # A JetStream publish is acknowledged with its place in the queue's stream.
    assert (ack.stream, ack.seq) == (queue, 3)
    got = amqp_get_messages(amqp_url, queue, 3)
    assert [body for _, _, body in got] == [b"core-1", b"core-2", b"jetstream-3"]
    assert got[0][1].headers["origin"] == "nats"
