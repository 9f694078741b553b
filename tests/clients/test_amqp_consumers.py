"""pika against the AMQP door: how a queue's messages are shared among its consumers, and what
a consumer hears when its queue is deleted — as RabbitMQ 3.10 does it (the orders below were
read from it, and scripts/differential/amqp_consumers.py compares seeded sequences)."""

from __future__ import annotations

import time

import pika

from harness import unique
from pika_support import connect

SETTLE_S = 0.2


def drain(connection, seconds=SETTLE_S):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        connection.process_data_events(time_limit=0.02)


def test_messages_go_round_robin_among_consumers_as_they_trickle_in(amqp_url):
    connection = connect(amqp_url)
    admin = connection.channel()
    queue = unique("workers")
    admin.queue_declare(queue)
    got = {"a": [], "b": []}
    channels = []
    for name in ["a", "b"]:
        channel = connection.channel()
        channel.basic_consume(queue, lambda c, m, p, body, name=name: got[name].append(body), auto_ack=True)
        channels.append(channel)
    for n in range(1, 7):
        admin.basic_publish("", queue, f"m{n}".encode())
        drain(connection, 0.05)
    drain(connection)
    assert got == {"a": [b"m1", b"m3", b"m5"], "b": [b"m2", b"m4", b"m6"]}
    admin.queue_delete(queue)
    connection.close()


def test_a_consumer_without_credit_is_skipped_and_one_freed_by_an_ack_queues_up_behind(amqp_url):
    connection = connect(amqp_url)
    admin = connection.channel()
    queue = unique("fair")
    admin.queue_declare(queue)
    got = {"a": [], "b": [], "c": []}
    channels = {}
    for name in ["a", "b", "c"]:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=1)
        channel.basic_consume(queue, lambda c, m, p, body, name=name: got[name].append((body, m.delivery_tag)))
        channels[name] = channel
    for n in range(1, 5):
        admin.basic_publish("", queue, f"m{n}".encode())
        drain(connection, 0.05)
    drain(connection)
    # Each holds one unacknowledged message: m4 waits.
    assert {name: [body for body, _ in bodies] for name, bodies in got.items()} == {
        "a": [b"m1"], "b": [b"m2"], "c": [b"m3"]}
    # b acks first, then a: b is next in line for m4 and the one after.
    channels["b"].basic_ack(got["b"][0][1])
    drain(connection)
    channels["a"].basic_ack(got["a"][0][1])
    drain(connection)
    admin.basic_publish("", queue, b"m5")
    drain(connection)
    assert [body for body, _ in got["b"]] == [b"m2", b"m4"]
    assert [body for body, _ in got["a"]] == [b"m1", b"m5"]
    admin.queue_delete(queue)
    connection.close()


def test_deleting_a_queue_cancels_its_consumers_even_when_declared_again_at_once(amqp_url):
    connection = connect(amqp_url)
    admin = connection.channel()
    queue = unique("gone")
    admin.queue_declare(queue)
    cancelled, got = [], []
    channel = connection.channel()
    channel.basic_qos(prefetch_count=1)
    channel.add_on_cancel_callback(lambda frame: cancelled.append(frame.method.consumer_tag))
    tag = channel.basic_consume(queue, lambda c, m, p, body: got.append((body, m.delivery_tag)))
    admin.basic_publish("", queue, b"held")
    admin.basic_publish("", queue, b"waiting")
    drain(connection)
    # The consumer holds its one message (no credit left) when the queue goes.
    assert [body for body, _ in got] == [b"held"]
    admin.queue_delete(queue)
    admin.queue_declare(queue)
    admin.basic_publish("", queue, b"for the new queue")
    drain(connection)
    assert cancelled == [tag]
    # The old delivery's ack settles nothing in the new queue of that name.
    channel.basic_ack(got[0][1])
    drain(connection)
    method, _, body = admin.basic_get(queue, auto_ack=True)
    assert body == b"for the new queue"
    assert [body for body, _ in got] == [b"held"]
    admin.queue_delete(queue)
    connection.close()
