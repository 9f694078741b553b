"""nats-py, the NATS client for Python, against the NATS door: subjects with wildcards, queue
groups, headers, request-reply, no-responders, echo off, the payload bound, and publishes
crossing between NATS and HTTP on a subject a stream captures."""

from __future__ import annotations

import asyncio
import base64

import nats
import nats.errors
import pytest

from harness import http_json, unique

WAIT_S = 5.0


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, timeout=60))


async def assert_quiet(subscription) -> None:
    with pytest.raises(nats.errors.TimeoutError):
        message = await subscription.next_msg(timeout=0.2)
        raise AssertionError(f"unexpected message {message}")


def test_wildcards_match_one_token_and_the_rest(nats_url):
    async def scenario():
        nc = await nats.connect(nats_url)
        prefix = unique("orders")
        one_token = await nc.subscribe(f"{prefix}.*")
        the_rest = await nc.subscribe(f"{prefix}.>")
        await nc.flush()
        await nc.publish(f"{prefix}.created", b"a")
        await nc.publish(f"{prefix}.created.eu", b"b")
        await nc.publish("elsewhere.created", b"c")
        await nc.flush()
        message = await one_token.next_msg(timeout=WAIT_S)
        assert (message.subject, message.data) == (f"{prefix}.created", b"a")
        await assert_quiet(one_token)
        assert (await the_rest.next_msg(timeout=WAIT_S)).data == b"a"
        assert (await the_rest.next_msg(timeout=WAIT_S)).data == b"b"
        await assert_quiet(the_rest)
        await nc.close()

    run(scenario())


def test_a_queue_group_splits_messages_between_members(nats_url):
    async def scenario():
        subject = unique("work")
        first, second, publisher = [await nats.connect(nats_url) for _ in range(3)]
        received = {"first": [], "second": []}

        def collector(name):
            async def handle(message):
                received[name].append(message.data)

            return handle

        await first.subscribe(subject, queue="workers", cb=collector("first"))
        await second.subscribe(subject, queue="workers", cb=collector("second"))
        await first.flush()
        await second.flush()
        for index in range(100):
            await publisher.publish(subject, str(index).encode())
        await publisher.flush()
        deadline = asyncio.get_running_loop().time() + WAIT_S
        while len(received["first"]) + len(received["second"]) < 100:
            assert asyncio.get_running_loop().time() < deadline, received
            await asyncio.sleep(0.02)
        assert len(received["first"]) > 20 and len(received["second"]) > 20, received
        everything = sorted(received["first"] + received["second"])
        assert everything == sorted(str(i).encode() for i in range(100))
        for client in (first, second, publisher):
            await client.close()

    run(scenario())


def test_headers_travel_with_the_message(nats_url):
    async def scenario():
        nc = await nats.connect(nats_url)
        subject = unique("headers")
        subscription = await nc.subscribe(subject)
        await nc.flush()
        await nc.publish(subject, b"body", headers={"Trace-Id": "abc123", "Kind": "test"})
        message = await subscription.next_msg(timeout=WAIT_S)
        assert message.data == b"body"
        assert message.headers == {"Trace-Id": "abc123", "Kind": "test"}
        await nc.close()

    run(scenario())


def test_request_reply_and_no_responders(nats_url):
    async def scenario():
        responder = await nats.connect(nats_url)
        service = unique("user.profile")

        async def answer(message):
            await message.respond(b"profile of " + message.data)

        await responder.subscribe(service, cb=answer)
        await responder.flush()
        client = await nats.connect(nats_url)
        for user in (b"ada", b"grace"):
            response = await client.request(service, user, timeout=WAIT_S)
            assert response.data == b"profile of " + user
        # Nobody subscribes: the server answers with the 503 status at once.
        with pytest.raises(nats.errors.NoRespondersError):
            await client.request(unique("nobody.home"), b"?", timeout=WAIT_S)
        await client.close()
        await responder.close()

    run(scenario())


def test_echo_off_keeps_a_client_from_its_own_messages(nats_url):
    async def scenario():
        subject = unique("room")
        quiet = await nats.connect(nats_url, no_echo=True)
        other = await nats.connect(nats_url)
        own = await quiet.subscribe(subject)
        theirs = await other.subscribe(subject)
        await quiet.flush()
        await other.flush()
        await quiet.publish(subject, b"from quiet")
        await quiet.flush()
        await other.publish(subject, b"from other")
        await other.flush()
        assert (await own.next_msg(timeout=WAIT_S)).data == b"from other"
        await assert_quiet(own)
        # In either order: nats-py's flush() writes its PING straight to the socket, ahead of
        # publishes still in its own buffer, so "from quiet" may reach the server later.
        received = {(await theirs.next_msg(timeout=WAIT_S)).data for _ in range(2)}
        assert received == {b"from quiet", b"from other"}
        await quiet.close()
        await other.close()

    run(scenario())


def test_a_payload_over_max_payload_is_refused(nats_url):
    async def scenario():
        nc = await nats.connect(nats_url)
        assert nc.max_payload == 1024 * 1024
        with pytest.raises(nats.errors.MaxPayloadError):
            await nc.publish(unique("big"), b"x" * (nc.max_payload + 1))
        subscription = await nc.subscribe("still.fine")
        await nc.publish("still.fine", b"ok")
        assert (await subscription.next_msg(timeout=WAIT_S)).data == b"ok"
        await nc.close()

    run(scenario())


def test_publishes_cross_between_http_and_nats_on_a_captured_subject(nats_url, http):
    stream = unique("captured")
    http_json("POST", f"{http}/v1/streams", {"name": stream, "subjects": [f"{stream}.>"]})

    async def scenario():
        nc = await nats.connect(nats_url)
        subscription = await nc.subscribe(f"{stream}.*")
        await nc.flush()
        await asyncio.to_thread(
            http_json,
            "POST",
            f"{http}/v1/subjects/{stream}.paid/records",
            {"value": "from http", "headers": {"source": "web"}},
        )
        message = await subscription.next_msg(timeout=WAIT_S)
        assert (message.subject, message.data) == (f"{stream}.paid", b"from http")
        assert message.headers == {"source": "web"}
        await nc.publish(f"{stream}.created", b"from nats")
        message = await subscription.next_msg(timeout=WAIT_S)
        assert message.data == b"from nats"
        await nc.close()

    run(scenario())
    fetched = http_json("GET", f"{http}/v1/streams/{stream}/partitions/0/records?offset=0")
    stored = [(record["subject"], record.get("value") or base64.b64decode(record["value_base64"]).decode())
              for record in fetched["records"]]
    assert stored == [(f"{stream}.paid", "from http"), (f"{stream}.created", "from nats")]


def test_kafka_and_nats_cross_on_a_stream(nats_url, broker, bootstrap):
    """A Kafka produce reaches NATS subscribers of the topic's name once it is acknowledged,
    and a NATS publish to the subject the stream captures is consumed by Kafka."""
    from confluent_kafka import Producer

    from ck import produce_all, producer_conf, read_partitions

    topic = unique("kafka-nats")
    broker.create_stream(topic, 1)

    async def scenario():
        nc = await nats.connect(nats_url)
        subscription = await nc.subscribe(topic)
        await nc.flush()
        producer = Producer(producer_conf(bootstrap))
        await asyncio.to_thread(
            produce_all, producer, topic, [(b"k", b"from kafka", [("source", b"kafka")])]
        )
        message = await subscription.next_msg(timeout=WAIT_S)
        assert (message.subject, message.data) == (topic, b"from kafka")
        assert message.headers == {"source": "kafka"}
        await nc.publish(topic, b"from nats")
        await nc.flush()
        await nc.close()

    run(scenario())
    values = [record.value() for record in read_partitions(bootstrap, topic, [0], 2)]
    assert values == [b"from kafka", b"from nats"]
