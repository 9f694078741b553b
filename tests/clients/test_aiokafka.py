"""aiokafka against omnibus: idempotent produce with acks=all, consume with a group, commit."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from harness import unique

COUNT = 80


async def produce(bootstrap: str, topic: str) -> dict:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                request_timeout_ms=15000)
    sent = {}
    try:
        await producer.start()
        for i in range(COUNT):
            key, value = f"a-{i % 6}".encode(), f"aiokafka-{i}".encode()
            metadata = await producer.send_and_wait(topic, value, key=key, headers=[("i", str(i).encode())])
            sent[(metadata.partition, metadata.offset)] = (key, value)
    finally:
        await producer.stop()
    return sent


async def consume(bootstrap: str, topic: str, group: str, want: int) -> tuple[dict, dict]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                session_timeout_ms=10000, heartbeat_interval_ms=1000)
    got = {}
    try:
        await consumer.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while len(got) < want and loop.time() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for r in records:
                    assert (r.partition, r.offset) not in got, f"{r.partition}/{r.offset} delivered twice"
                    got[(r.partition, r.offset)] = (r.key, r.value)
        await consumer.commit()
        committed = {}
        for p in range(3):
            committed[p] = await consumer.committed(TopicPartition(topic, p))
    finally:
        await consumer.stop()
    return got, committed


def test_aiokafka_produce_and_group_consume(broker, bootstrap):
    topic = unique("aio")
    group = unique("aio-group")
    broker.create_stream(topic, 3)

    async def scenario():
        sent = await produce(bootstrap, topic)
        got, committed = await consume(bootstrap, topic, group, len(sent))
        return sent, got, committed

    sent, got, committed = asyncio.run(asyncio.wait_for(scenario(), timeout=150))
    assert len(sent) == COUNT
    assert got == sent, f"consumed {len(got)} of {len(sent)}"
    ends = {}
    for p, o in sent:
        ends[p] = max(ends.get(p, 0), o + 1)
    assert {p: committed[p] for p in ends} == ends
