"""nats-py's JetStream API against the NATS door: streams, publish with PubAck and dedup, pull
consumers with fetch, ack, nak with a delay, term and in-progress, consumer info, and the
same records read across doors (a JetStream stream is an Omnibus stream)."""

from __future__ import annotations

import asyncio
import base64
import time

import nats
import nats.errors
import nats.js.errors
import pytest

from harness import http_json, unique

WAIT_S = 5.0


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, timeout=60))


async def connect_with_stream(nats_url):
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    name = unique("ORDERS")
    await js.add_stream(name=name, subjects=[f"{name}.>"])
    return nc, js, name


def test_add_stream_publish_dedup_and_stream_info(nats_url):
    async def scenario():
        nc, js, name = await connect_with_stream(nats_url)
        first = await js.publish(f"{name}.new", b"a", headers={"Nats-Msg-Id": "one"})
        again = await js.publish(f"{name}.new", b"a", headers={"Nats-Msg-Id": "one"})
        second = await js.publish(f"{name}.new", b"b")
        assert (first.stream, first.seq, first.duplicate) == (name, 1, None)
        assert (again.seq, again.duplicate) == (1, True)
        assert second.seq == 2
        info = await js.stream_info(name)
        assert info.config.subjects == [f"{name}.>"]
        assert (info.state.messages, info.state.first_seq, info.state.last_seq) == (2, 1, 2)
        with pytest.raises(nats.js.errors.APIError) as wrong:
            await js.publish(f"{name}.new", b"c", headers={"Nats-Expected-Last-Sequence": "1"})
        assert wrong.value.err_code == 10071
        message = await js.get_msg(name, 2)
        assert message.data == b"b"
        with pytest.raises(nats.js.errors.NotFoundError):
            await js.stream_info(unique("missing"))
        # No stream captures the subject and nobody subscribes: no responders.
        with pytest.raises(nats.js.errors.NoStreamResponseError):
            await js.publish(unique("nowhere"), b"x")
        assert await js.delete_stream(name)
        await nc.close()

    run(scenario())


def test_pull_subscribe_fetch_ack_nak_term_and_in_progress(nats_url):
    async def scenario():
        nc, js, name = await connect_with_stream(nats_url)
        for value in (b"m0", b"m1", b"m2"):
            await js.publish(f"{name}.new", value)
        subscription = await js.pull_subscribe(f"{name}.>", durable="worker", stream=name)
        messages = await subscription.fetch(3, timeout=2)
        assert [m.data for m in messages] == [b"m0", b"m1", b"m2"]
        assert messages[0].metadata.sequence.stream == 1
        assert messages[0].metadata.num_delivered == 1
        await messages[0].ack_sync()
        await messages[1].nak(delay=0.3)
        await messages[2].term()
        await messages[1].in_progress()
        # Settled acks reach the server before the consumer info is asked for.
        await nc.flush()
        info = await js.consumer_info(name, "worker")
        assert info.ack_floor.stream_seq == 1
        with pytest.raises(nats.errors.TimeoutError):
            await subscription.fetch(1, timeout=0.1)
        again = await subscription.fetch(1, timeout=3)
        assert [m.data for m in again] == [b"m1"]
        assert again[0].metadata.num_delivered == 2
        await again[0].ack_sync()
        info = await js.consumer_info(name, "worker")
        assert (info.num_ack_pending, info.num_pending) == (0, 0)
        assert info.ack_floor.stream_seq == 3
        with pytest.raises(nats.errors.TimeoutError):
            await subscription.fetch(1, timeout=0.3)
        await nc.close()

    run(scenario())


def test_an_unacknowledged_message_comes_back_after_the_ack_wait(nats_url):
    async def scenario():
        nc, js, name = await connect_with_stream(nats_url)
        await js.publish(f"{name}.new", b"slow")
        subscription = await js.pull_subscribe(
            f"{name}.>",
            durable="worker",
            stream=name,
            config=nats.js.api.ConsumerConfig(ack_wait=0.3),
        )
        first = await subscription.fetch(1, timeout=2)
        started = time.monotonic()
        again = await subscription.fetch(1, timeout=3)
        assert time.monotonic() - started >= 0.2
        assert again[0].data == b"slow"
        assert again[0].metadata.num_delivered == 2
        assert first[0].metadata.sequence.stream == again[0].metadata.sequence.stream
        await again[0].ack_sync()
        await nc.close()

    run(scenario())


def test_jetstream_and_http_read_each_others_records(nats_url, http):
    async def scenario():
        nc, js, name = await connect_with_stream(nats_url)
        await js.publish(f"{name}.from-nats", b"over nats")
        await asyncio.to_thread(
            http_json, "POST", f"{http}/v1/subjects/{name}.from-http/records", {"value": "over http"}
        )
        subscription = await js.pull_subscribe(f"{name}.>", durable="reader", stream=name)
        messages = await subscription.fetch(2, timeout=2)
        assert [(m.subject, m.data) for m in messages] == [
            (f"{name}.from-nats", b"over nats"),
            (f"{name}.from-http", b"over http"),
        ]
        for message in messages:
            await message.ack_sync()
        await nc.close()
        return name

    name = run(scenario())
    fetched = http_json("GET", f"{http}/v1/streams/{name}/partitions/0/records?offset=0")
    stored = [
        (record["subject"], record.get("value") or base64.b64decode(record["value_base64"]).decode())
        for record in fetched["records"]
    ]
    assert stored == [(f"{name}.from-nats", "over nats"), (f"{name}.from-http", "over http")]


def test_push_subscribe_and_ordered_consumer(nats_url):
    async def scenario():
        nc, js, name = await connect_with_stream(nats_url)
        for value in (b"m0", b"m1", b"m2"):
            await js.publish(f"{name}.new", value)
        pushed = await js.subscribe(f"{name}.>", durable="pusher", stream=name)
        for expected in (b"m0", b"m1", b"m2"):
            message = await pushed.next_msg(timeout=WAIT_S)
            assert message.data == expected
            await message.ack_sync()
        await js.publish(f"{name}.new", b"m3")
        message = await pushed.next_msg(timeout=WAIT_S)
        assert (message.data, message.metadata.sequence.stream) == (b"m3", 4)
        await message.ack_sync()
        info = await js.consumer_info(name, "pusher")
        assert (info.num_ack_pending, info.ack_floor.stream_seq) == (0, 4)

        ordered = await js.subscribe(f"{name}.>", ordered_consumer=True)
        received = [(await ordered.next_msg(timeout=WAIT_S)).data for _ in range(4)]
        assert received == [b"m0", b"m1", b"m2", b"m3"]
        await nc.close()

    run(scenario())
