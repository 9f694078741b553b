"""confluent-kafka (librdkafka) against omnibus: idempotent produce with acks=all, consumer
groups (commit, resume, split, rebalance), exactly once per group, per-key order, admin."""

from __future__ import annotations

import base64
import signal
import subprocess
import time
from collections import Counter, defaultdict

import pytest

from confluent_kafka import Consumer, KafkaException, ConsumerGroupState, ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic,
                                  OffsetSpec, ResourceType)

from ck import check_message, commit_sync, consumer_conf, produce_all, producer_conf, read_partitions
from harness import HOST, kafka_debug_conf, unique, wait_until

GROUP_WAIT_S = 60.0


def keyed_messages(phase: str, count: int, keys: int) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs; value = phase-key-seq with seq counting up per key."""
    seq = Counter()
    out = []
    for i in range(count):
        key = f"k{i % keys:02d}"
        out.append((key.encode(), f"{phase}-{key}-{seq[key]:05d}".encode()))
        seq[key] += 1
    return out


def assert_per_key_order(values_in_receive_order: list[bytes]) -> None:
    """Within each key (phase-key-seq), sequence numbers arrive strictly increasing."""
    last = {}
    for value in values_in_receive_order:
        phase, key, seq = value.decode().rsplit("-", 2)
        seq = int(seq)
        previous = last.get((phase, key))
        assert previous is None or seq > previous, (
            f"per-key order broken for {phase}/{key}: {seq} arrived after {previous}"
        )
        last[(phase, key)] = seq


class Member:
    """One group member: consumes, commits synchronously after every non-empty batch, and
    tracks its assignment through the rebalance callbacks."""

    def __init__(self, name: str, bootstrap: str, group: str, topic: str, log: list, **conf):
        self.name = name
        self.consumer = Consumer(consumer_conf(bootstrap, group, **conf))
        # cooperative-sticky rebalances incrementally: callbacks name only the partitions moved.
        self.incremental = "cooperative" in conf.get("partition.assignment.strategy", "")
        self.assignment: set[int] = set()
        self.received: list = []  # (partition, offset, key, value)
        self.log = log  # shared receive order across members: (member, value)
        self.closed = False
        self.consumer.subscribe([topic], on_assign=self._assigned, on_revoke=self._revoked,
                                on_lost=self._revoked)

    def _assigned(self, consumer, partitions):
        given = {tp.partition for tp in partitions}
        if self.incremental:
            self.assignment |= given  # incremental
        else:
            self.assignment = given

    def _revoked(self, consumer, partitions):
        self.assignment -= {tp.partition for tp in partitions}

    def poll(self, timeout: float = 0.2) -> int:
        got = 0
        for message in self.consumer.consume(num_messages=200, timeout=timeout):
            if not check_message(message):
                continue
            assert message.partition() in self.assignment, (
                f"{self.name} got a record from partition {message.partition()} "
                f"outside its assignment {sorted(self.assignment)}"
            )
            self.received.append((message.partition(), message.offset(), message.key(), message.value()))
            self.log.append((self.name, message.value()))
            got += 1
        if got:
            commit_sync(self.consumer)
        return got

    def values(self, phase: str = "") -> list[bytes]:
        return [r[3] for r in self.received if r[3].decode().startswith(phase)]

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.consumer.close()


def poll_until(members: list[Member], condition, what: str, timeout: float = GROUP_WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            state = ", ".join(
                f"{m.name}: assignment={sorted(m.assignment)} received={len(m.received)}" for m in members
            )
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} ({state})")
        for m in members:
            m.poll()


def linger(members: list[Member], seconds: float) -> None:
    """Keeps polling a while, so that duplicates or strays would show up."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for m in members:
            m.poll()


# ---------------------------------------------------------------------------------------------


def test_admin_lists_topics_with_partitions_and_leaders(broker, bootstrap):
    from_http = unique("admin-http")
    broker.create_stream(from_http, 3)
    from_admin = unique("admin-kafka")
    admin = AdminClient({"bootstrap.servers": bootstrap, **kafka_debug_conf()})
    futures = admin.create_topics([NewTopic(from_admin, num_partitions=2, replication_factor=1)],
                                  operation_timeout=10, request_timeout=15)
    futures[from_admin].result(timeout=20)

    metadata = admin.list_topics(timeout=15)
    assert from_http in metadata.topics, f"topics listed: {sorted(metadata.topics)}"
    assert from_admin in metadata.topics, f"topics listed: {sorted(metadata.topics)}"
    brokers = {b.id: (b.host, b.port) for b in metadata.brokers.values()}
    assert (HOST, broker.kafka_port) in brokers.values(), f"brokers advertised: {brokers}"
    for name, count in ((from_http, 3), (from_admin, 2)):
        topic = metadata.topics[name]
        assert topic.error is None, f"{name}: {topic.error}"
        assert sorted(topic.partitions) == list(range(count))
        for p in topic.partitions.values():
            assert p.error is None, f"{name}[{p.id}]: {p.error}"
            assert p.leader in brokers, f"{name}[{p.id}] leader {p.leader} is not a listed broker"
    # The topic made through Kafka is a stream for HTTP too.
    assert broker.partition_count(from_admin) == 2
    # One topic by name.
    one = admin.list_topics(topic=from_http, timeout=15)
    assert list(one.topics) == [from_http]


def test_admin_changes_topic_configs_incrementally_and_the_stream_follows(broker, bootstrap):
    topic = unique("configs")
    broker.create_stream(topic, 1)
    admin = AdminClient({"bootstrap.servers": bootstrap, **kafka_debug_conf()})

    def described() -> dict:
        [future] = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)]).values()
        return {name: entry.value for name, entry in future.result(timeout=20).items()}

    default_retention = described()["retention.ms"]
    change = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "60000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("segment.bytes", "1048576", incremental_operation=AlterConfigOpType.SET),
    ])
    [future] = admin.incremental_alter_configs([change]).values()
    future.result(timeout=20)
    configs = described()
    assert (configs["retention.ms"], configs["segment.bytes"]) == ("60000", "1048576")
    stream = broker.stream_info(topic)
    assert (stream["retention_ms"], stream["segment_bytes"]) == (60000, 1048576)

    reset = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
    ])
    [future] = admin.incremental_alter_configs([reset]).values()
    future.result(timeout=20)
    configs = described()
    assert configs["retention.ms"] == default_retention
    assert configs["segment.bytes"] == "1048576"

    refused = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SET),
    ])
    [future] = admin.incremental_alter_configs([refused]).values()
    with pytest.raises(KafkaException) as error:
        future.result(timeout=20)
    assert "compact" in str(error.value)


def test_idempotent_acks_all_produce_keeps_per_key_order(broker, bootstrap):
    topic = unique("idem")
    broker.create_stream(topic, 3)
    messages = keyed_messages("p", 600, keys=12)
    producer = Producer(producer_conf(bootstrap))
    result = produce_all(producer, topic, messages)

    positions = Counter((d.partition, d.offset) for d in result.deliveries)
    assert max(positions.values()) == 1, "two deliveries reported the same partition and offset"
    by_key = defaultdict(list)
    for d in result.deliveries:
        by_key[d.key].append(d)
    for key, deliveries in by_key.items():
        assert len({d.partition for d in deliveries}) == 1, f"key {key!r} spread over partitions"
        ordered = sorted(deliveries, key=lambda d: d.value)  # value carries the per-key seq
        offsets = [d.offset for d in ordered]
        assert offsets == sorted(offsets), f"key {key!r}: offsets not in send order: {offsets}"
    assert len({d.partition for d in result.deliveries}) > 1

    # Read back: exactly these messages, once each, at the reported offsets.
    got = read_partitions(bootstrap, topic, [0, 1, 2], len(messages), linger=1.0)
    assert Counter(m.value() for m in got) == Counter(v for _, v in messages)
    reported = {(d.partition, d.offset): (d.key, d.value) for d in result.deliveries}
    for m in got:
        assert reported[(m.partition(), m.offset())] == (m.key(), m.value())
    assert_per_key_order([m.value() for m in sorted(got, key=lambda m: (m.partition(), m.offset()))])


def test_group_commits_and_a_restarted_consumer_resumes_after_the_commit(broker, bootstrap):
    topic = unique("resume")
    group = unique("g-resume")
    broker.create_stream(topic, 3)
    producer = Producer(producer_conf(bootstrap))
    first = keyed_messages("a", 150, keys=9)
    produce_all(producer, topic, first)

    log: list = []
    c1 = Member("c1", bootstrap, group, topic, log)
    try:
        poll_until([c1], lambda: len(c1.received) >= len(first), f"c1 to consume {len(first)} messages")
        linger([c1], 1.0)
        assert Counter(c1.values()) == Counter(v for _, v in first), "first consumer: not exactly once"
        committed = c1.consumer.committed([TopicPartition(topic, p) for p in range(3)], timeout=15)
        ends = defaultdict(int)
        for p, offset, _, _ in c1.received:
            ends[p] = max(ends[p], offset + 1)
        committed_at = {tp.partition: tp.offset for tp in committed}
        for tp in committed:
            assert tp.error is None, f"OffsetFetch for partition {tp.partition}: {tp.error}"
        for p, end in ends.items():
            assert committed_at.get(p) == end, (
                f"committed offsets {committed_at}, but the group consumed up to {dict(ends)}"
            )
    finally:
        c1.close()

    second = keyed_messages("b", 90, keys=9)
    produce_all(producer, topic, second)

    c2 = Member("c2", bootstrap, group, topic, log)
    try:
        poll_until([c2], lambda: len(c2.received) >= len(second), f"c2 to consume {len(second)} new messages")
        linger([c2], 2.0)
    finally:
        c2.close()
    again = [v for v in c2.values() if v.startswith(b"a-")]
    assert not again, f"the restarted consumer re-read {len(again)} committed messages, e.g. {again[:3]}"
    assert Counter(c2.values()) == Counter(v for _, v in second)
    assert_per_key_order([v for _, v in log])


@pytest.mark.parametrize("assignor", ["range", "cooperative-sticky"])
def test_two_consumers_split_partitions_and_rebalance_when_one_leaves(broker, bootstrap, assignor):
    partitions = 4
    topic = unique("split")
    group = unique("g-split")
    broker.create_stream(topic, partitions)
    everything = set(range(partitions))
    log: list = []
    strategy = {"partition.assignment.strategy": assignor}
    c1 = Member("c1", bootstrap, group, topic, log, **strategy)
    c2 = Member("c2", bootstrap, group, topic, log, **strategy)
    members = [c1, c2]
    try:
        poll_until(
            members,
            lambda: c1.assignment and c2.assignment and not (c1.assignment & c2.assignment)
            and (c1.assignment | c2.assignment) == everything,
            "both members to get a share of the partitions",
        )
        split = (set(c1.assignment), set(c2.assignment))

        producer = Producer(producer_conf(bootstrap))
        first = keyed_messages("a", 400, keys=40)
        result = produce_all(producer, topic, first)
        assert {d.partition for d in result.deliveries} == everything

        poll_until(members, lambda: len(log) >= len(first), f"the group to consume {len(first)} messages")
        assert (c1.assignment, c2.assignment) == split, "the assignment changed with no member change"
        for m in members:
            assert m.received, f"{m.name} got nothing"
            assert {r[0] for r in m.received} <= m.assignment
        assert not set(c1.values()) & set(c2.values()), "both members got the same message"
        assert Counter(c1.values() + c2.values()) == Counter(v for _, v in first)

        # c2 leaves: c1 takes over every partition and gets the rest, nothing twice.
        c2_count = len(c2.received)
        c2.close()
        second = keyed_messages("b", 200, keys=40)
        produce_all(producer, topic, second)
        poll_until([c1], lambda: c1.assignment == everything and len(c1.values("b-")) >= len(second),
                   "c1 to take over all partitions and consume the new messages")
        linger([c1], 2.0)
        assert len(c2.received) == c2_count
        assert c1.assignment == everything
        all_values = Counter(c1.values() + c2.values())
        expected = Counter(v for _, v in first + second)
        duplicates = [v for v, n in all_values.items() if n > 1]
        assert not duplicates, f"{len(duplicates)} messages delivered twice in one group, e.g. {duplicates[:3]}"
        assert all_values == expected
        assert_per_key_order([v for _, v in log])
    finally:
        for m in members:
            m.close()


def test_producing_to_an_unknown_topic_creates_it(broker, bootstrap):
    """Metadata auto-creates a topic when the client allows it (a producer does by default)."""
    topic = unique("auto")
    producer = Producer(producer_conf(bootstrap))
    result = produce_all(producer, topic, [(b"k", b"first message of a new topic")])
    [delivery] = result.deliveries
    assert broker.partition_count(topic) >= 1
    got = read_partitions(bootstrap, topic, [delivery.partition], 1)
    assert [(m.key(), m.value()) for m in got] == [(b"k", b"first message of a new topic")]


def test_a_crashed_member_is_evicted_after_its_session_timeout(broker, bootstrap):
    """A member that dies without LeaveGroup (kcat, SIGKILLed) loses its partitions once its
    session times out; the survivor then consumes everything."""
    partitions = 4
    topic = unique("crash")
    group = unique("g-crash")
    broker.create_stream(topic, partitions)
    everything = set(range(partitions))
    log: list = []
    survivor = Member("survivor", bootstrap, group, topic, log)
    victim = None
    try:
        poll_until([survivor], lambda: survivor.assignment == everything, "the first member's assignment")
        victim = subprocess.Popen(
            ["kcat", "-b", bootstrap, "-X", "broker.address.family=v4", "-X", "session.timeout.ms=6000",
             "-X", "enable.auto.commit=false", "-q", "-G", group, topic],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        poll_until([survivor], lambda: survivor.assignment and survivor.assignment != everything,
                   "the second member (kcat) to take a share")
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        killed_at = time.monotonic()
        messages = keyed_messages("a", 200, keys=20)
        produce_all(Producer(producer_conf(bootstrap)), topic, messages)
        poll_until([survivor], lambda: survivor.assignment == everything and len(survivor.received) >= len(messages),
                   "the survivor to take over the dead member's partitions", timeout=45)
        took = time.monotonic() - killed_at
        linger([survivor], 1.0)
        assert Counter(survivor.values()) == Counter(v for _, v in messages)
        assert took < 40, f"taking over took {took:.0f}s with a 6s session timeout"
    finally:
        if victim is not None and victim.poll() is None:
            victim.kill()
            victim.wait(timeout=10)
        survivor.close()


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compressed_batches_round_trip(broker, bootstrap, codec):
    """Compressed producer batches are stored, served to Kafka consumers, and readable over HTTP."""
    topic = unique(f"codec-{codec}")
    broker.create_stream(topic, 2)
    messages = [(f"k{i % 4}".encode(), (f"{codec} payload {i} " * 20).encode()) for i in range(300)]
    producer = Producer(producer_conf(bootstrap, **{"compression.type": codec, "linger.ms": 20}))
    result = produce_all(producer, topic, messages)
    got = read_partitions(bootstrap, topic, [0, 1], len(messages), linger=0.5)
    assert Counter((m.key(), m.value()) for m in got) == Counter(messages)
    reported = {(d.partition, d.offset): d.value for d in result.deliveries}
    assert {(m.partition(), m.offset()): m.value() for m in got} == reported
    over_http = {}
    for p in range(2):
        for record in broker.read_partition(topic, p):
            value = record["value"].encode() if "value" in record else base64.b64decode(record["value_base64"])
            over_http[(p, record["offset"])] = value
    assert over_http == reported, "the HTTP API serves other values than Kafka stored"


def test_list_offsets_earliest_latest_and_by_timestamp(broker, bootstrap):
    topic = unique("offsets")
    broker.create_stream(topic, 1)
    base = int(time.time() * 1000) - 60_000
    producer = Producer(producer_conf(bootstrap))
    failures = []
    for i in range(10):
        producer.produce(topic, value=f"t{i}".encode(), partition=0, timestamp=base + i * 1000,
                         on_delivery=lambda error, _m: error and failures.append(error))
    assert producer.flush(30) == 0 and not failures, failures

    consumer = Consumer(consumer_conf(bootstrap))
    try:
        tp = TopicPartition(topic, 0)
        assert consumer.get_watermark_offsets(tp, timeout=15) == (0, 10)
        [at] = consumer.offsets_for_times([TopicPartition(topic, 0, base + 4500)], timeout=15)
        assert at.error is None and at.offset == 5, f"first offset at or after t+4.5s: {at}"
        [exact] = consumer.offsets_for_times([TopicPartition(topic, 0, base + 7000)], timeout=15)
        assert exact.offset == 7
        [future] = consumer.offsets_for_times([TopicPartition(topic, 0, base + 3_600_000)], timeout=15)
        assert future.offset == -1, f"a time after the last record: {future} (want -1, the end)"
    finally:
        consumer.close()
    got = read_partitions(bootstrap, topic, [0], 10)
    assert [(m.value(), m.timestamp()[1]) for m in got] == [(f"t{i}".encode(), base + i * 1000) for i in range(10)]


def test_list_offsets_max_timestamp_finds_the_latest_stamped_record(broker, bootstrap):
    topic = unique("max-timestamp")
    broker.create_stream(topic, 1)
    base = int(time.time() * 1000) - 60_000
    producer = Producer(producer_conf(bootstrap))
    failures = []
    for i, delta in enumerate([5, 9, 3, 9, 1]):
        producer.produce(topic, value=f"m{i}".encode(), partition=0, timestamp=base + delta * 1000,
                         on_delivery=lambda error, _m: error and failures.append(error))
        producer.flush(30)
    assert not failures, failures
    admin = AdminClient({"bootstrap.servers": bootstrap, "broker.address.family": "v4"})
    futures = admin.list_offsets({TopicPartition(topic, 0): OffsetSpec.max_timestamp()}, request_timeout=15)
    [(_, future)] = futures.items()
    found = future.result(timeout=15)
    assert (found.offset, found.timestamp) == (1, base + 9000), found


def test_delete_records_moves_the_low_watermark_inside_a_segment(broker, bootstrap):
    topic = unique("delete-records")
    broker.create_stream(topic, 1)
    producer = Producer(producer_conf(bootstrap))
    failures = []
    for i in range(10):
        producer.produce(topic, value=f"d{i}".encode(), partition=0,
                         on_delivery=lambda error, _m: error and failures.append(error))
    assert producer.flush(30) == 0 and not failures, failures

    admin = AdminClient({"bootstrap.servers": bootstrap, "broker.address.family": "v4"})
    futures = admin.delete_records([TopicPartition(topic, 0, 4)], request_timeout=15)
    [(_, future)] = futures.items()
    deleted = future.result(timeout=15)
    assert deleted.low_watermark == 4, deleted
    consumer = Consumer(consumer_conf(bootstrap))
    try:
        assert consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=15) == (4, 10)
    finally:
        consumer.close()
    # A consumer starting from the beginning now starts at the new low watermark.
    got = read_partitions(bootstrap, topic, [0], 6)
    assert [m.value() for m in got] == [f"d{i}".encode() for i in range(4, 10)]
    # Above the high watermark: refused, nothing changes.
    [(_, future)] = admin.delete_records([TopicPartition(topic, 0, 11)], request_timeout=15).items()
    with pytest.raises(KafkaException):
        future.result(timeout=15)


def test_admin_lists_describes_and_deletes_groups(broker, bootstrap):
    topic = unique("admin-groups")
    group = unique("g-admin")
    broker.create_stream(topic, 2)
    produce_all(Producer(producer_conf(bootstrap)), topic, keyed_messages("a", 30, keys=6))
    admin = AdminClient({"bootstrap.servers": bootstrap, **kafka_debug_conf()})
    log: list = []
    member = Member("m", bootstrap, group, topic, log)
    try:
        poll_until([member], lambda: len(member.received) >= 30, "the member to consume 30 messages")
        listed = admin.list_consumer_groups(request_timeout=15).result(timeout=20)
        assert group in {g.group_id for g in listed.valid}, f"groups listed: {[g.group_id for g in listed.valid]}"
        described = admin.describe_consumer_groups([group], request_timeout=15)[group].result(timeout=20)
        assert described.state == ConsumerGroupState.STABLE, described.state
        assert len(described.members) == 1
        assigned = {(tp.topic, tp.partition) for tp in described.members[0].assignment.topic_partitions}
        assert assigned == {(topic, 0), (topic, 1)}
    finally:
        member.close()

    request = [ConsumerGroupTopicPartitions(group)]
    offsets = admin.list_consumer_group_offsets(request, request_timeout=15)[group].result(timeout=20)
    committed = {tp.partition: tp.offset for tp in offsets.topic_partitions if tp.topic == topic}
    assert sum(committed.values()) == 30, f"committed offsets {committed}"

    admin.delete_consumer_groups([group], request_timeout=15)[group].result(timeout=20)
    listed = admin.list_consumer_groups(request_timeout=15).result(timeout=20)
    assert group not in {g.group_id for g in listed.valid}, "the deleted group is still listed"
    # Its offsets went with it: a new member of that name starts from the beginning again.
    again = Member("again", bootstrap, group, topic, [])
    try:
        poll_until([again], lambda: len(again.received) >= 30, "a member of the deleted group to re-read everything")
    finally:
        again.close()


def test_admin_deletes_group_offsets_except_for_topics_members_still_read(broker, bootstrap):
    """OffsetDelete, sent by kafka-python's admin client (confluent-kafka's Python admin has no
    call for it) while a confluent-kafka member reads the topic, then after it left."""
    from kafka import TopicPartition as KpTopicPartition
    from kafka.admin import KafkaAdminClient
    from kafka.errors import GroupSubscribedToTopicError, NoError

    topic = unique("offset-delete")
    group = unique("g-offsets")
    broker.create_stream(topic, 2)
    produce_all(Producer(producer_conf(bootstrap)), topic, keyed_messages("d", 30, keys=6))
    admin = AdminClient({"bootstrap.servers": bootstrap, **kafka_debug_conf()})
    deleter = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    first = [KpTopicPartition(topic, 0)]

    def committed() -> dict:
        request = [ConsumerGroupTopicPartitions(group)]
        offsets = admin.list_consumer_group_offsets(request, request_timeout=15)[group].result(timeout=20)
        return {tp.partition: tp.offset for tp in offsets.topic_partitions if tp.topic == topic and tp.offset >= 0}

    member = Member("m", bootstrap, group, topic, [])
    try:
        poll_until([member], lambda: len(member.received) >= 30, "the member to consume 30 messages")
        assert sum(committed().values()) == 30
        # A live member subscribes to the topic: its offsets stay.
        refused = deleter.delete_group_offsets(group, first)
        assert refused == {first[0]: GroupSubscribedToTopicError}, refused
    finally:
        member.close()
    assert sum(committed().values()) == 30

    # Once the group is empty (the member's LeaveGroup has landed), the partition's offset
    # goes and the other stays.
    wait_until(lambda: deleter.delete_group_offsets(group, first) == {first[0]: NoError}, 15,
               "the offset delete to be accepted once the group is empty")
    deleter.close()
    left = committed()
    assert 0 not in left and left.get(1, 0) > 0, left
