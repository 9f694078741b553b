"""kafka-python against omnibus: admin (create/delete topics, add partitions), produce,
consume with a group and commit."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from harness import HttpError, unique, wait_until

TIMEOUT_MS = 15000


@pytest.fixture
def admin(bootstrap):
    client = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="omnibus-clients-admin",
                              request_timeout_ms=TIMEOUT_MS)
    yield client
    client.close()


def partition_count(admin, topic: str) -> int:
    [described] = admin.describe_topics([topic])
    error = described.get("error_code", 0)
    assert not error, f"describe_topics({topic}) error code {error}"
    return len(described["partitions"])


def test_admin_creates_grows_and_deletes_topics(broker, admin):
    first, second = unique("kp-admin-a"), unique("kp-admin-b")
    admin.create_topics([NewTopic(first, num_partitions=2, replication_factor=1),
                         NewTopic(second, num_partitions=1, replication_factor=1)], timeout_ms=TIMEOUT_MS)
    wait_until(lambda: {first, second} <= set(admin.list_topics()), 15, "the new topics to be listed")
    assert partition_count(admin, first) == 2
    assert partition_count(admin, second) == 1
    # A Kafka topic is an Omnibus stream.
    assert broker.partition_count(first) == 2

    with pytest.raises(TopicAlreadyExistsError):
        admin.create_topics([NewTopic(first, num_partitions=2, replication_factor=1)], timeout_ms=TIMEOUT_MS)

    admin.create_partitions({first: 5}, timeout_ms=TIMEOUT_MS)
    wait_until(lambda: partition_count(admin, first) == 5, 15, f"{first} to have 5 partitions")
    assert broker.partition_count(first) == 5

    admin.delete_topics([first, second], timeout_ms=TIMEOUT_MS)
    wait_until(lambda: not ({first, second} & set(admin.list_topics())), 15, "the deleted topics to vanish")
    for name in (first, second):
        with pytest.raises(HttpError) as gone:
            broker.stream_info(name)
        assert gone.value.status == 404


def modified_configs(admin, topic: str) -> dict:
    """The topic's configs that differ from the broker's defaults, as name -> value."""
    described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    return {name: entry["value"] for name, entry in described["topic"][topic].items()}


def test_admin_alters_topic_configs_whole_set_and_incrementally(broker, admin):
    topic = unique("kp-configs")
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1,
                                  topic_configs={"max.message.bytes": "4096"})], timeout_ms=TIMEOUT_MS)
    assert modified_configs(admin, topic) == {"max.message.bytes": "4096"}

    # AlterConfigs (the whole set): kafka-python re-sends the modified keys it read above,
    # since the broker resets whatever the request leaves out.
    result = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                                 configs={"retention.ms": "3600000"})], incremental=False)
    assert result == {"topic": {topic: "OK"}}, result
    assert modified_configs(admin, topic) == {"max.message.bytes": "4096", "retention.ms": "3600000"}

    # IncrementalAlterConfigs, the client's default once the broker offers it.
    result = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                                 configs={"segment.ms": "60000"})])
    assert result == {"topic": {topic: "OK"}}, result
    assert modified_configs(admin, topic) == {
        "max.message.bytes": "4096", "retention.ms": "3600000", "segment.ms": "60000"}
    stream = broker.stream_info(topic)
    assert (stream["retention_ms"], stream["segment_ms"], stream["message_bytes_max"]) == (3600000, 60000, 4096)


def test_producer_then_group_consumer(broker, bootstrap):
    topic = unique("kp-data")
    group = unique("kp-group")
    broker.create_stream(topic, 3)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                             request_timeout_ms=TIMEOUT_MS, client_id="omnibus-clients-producer")
    sent = {}
    try:
        futures = []
        for i in range(120):
            key, value = f"key-{i % 8}".encode(), f"kafka-python-{i}".encode()
            headers = [("n", str(i).encode())]
            futures.append((key, value, headers, producer.send(topic, key=key, value=value, headers=headers)))
        producer.flush(timeout=30)
        for key, value, headers, future in futures:
            metadata = future.get(timeout=30)
            assert metadata.topic == topic and metadata.offset >= 0
            sent[(metadata.partition, metadata.offset)] = (key, value, headers)
    finally:
        producer.close(timeout=10)
    assert len(sent) == 120, "two sends were acknowledged at the same partition and offset"

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             session_timeout_ms=10000, heartbeat_interval_ms=1000,
                             request_timeout_ms=30000, client_id="omnibus-clients-consumer")
    got = {}
    try:
        deadline = time.monotonic() + 60
        while len(got) < len(sent) and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=500).items():
                for r in records:
                    assert (r.partition, r.offset) not in got, f"{r.partition}/{r.offset} delivered twice"
                    got[(r.partition, r.offset)] = (r.key, r.value, list(r.headers))
        assert len(got) == len(sent), f"the group consumed {len(got)} of {len(sent)} messages in 60s"
        assert got == sent
        consumer.commit()
        committed = {p: consumer.committed(TopicPartition(topic, p)) for p in range(3)}
        ends = {}
        for p, o in sent:
            ends[p] = max(ends.get(p, 0), o + 1)
        assert {p: committed[p] for p in ends} == ends, f"committed {committed}, consumed up to {ends}"
    finally:
        consumer.close()

    # The same group again: everything was committed, so nothing comes back.
    again = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                          auto_offset_reset="earliest", enable_auto_commit=False,
                          session_timeout_ms=10000, heartbeat_interval_ms=1000,
                          request_timeout_ms=30000)
    try:
        stray = []
        deadline = time.monotonic() + 20
        while not again.assignment() and time.monotonic() < deadline:
            for records in again.poll(timeout_ms=200).values():
                stray.extend(records)
        assert again.assignment(), "the second consumer never got an assignment"
        quiet_until = time.monotonic() + 2
        while time.monotonic() < quiet_until:
            for records in again.poll(timeout_ms=200).values():
                stray.extend(records)
        assert not stray, f"the group re-delivered {len(stray)} committed messages"
    finally:
        again.close()
