"""A Kafka topic is an Omnibus stream: what Kafka writes, HTTP and the CLI read, and back."""

from __future__ import annotations

import base64
from collections import Counter

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
