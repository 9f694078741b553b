"""pika against the AMQP door's dead-letter paths that run without any consumer: the
"delay line" (a queue with x-message-ttl whose dead letters go back to a work queue, with
nobody reading it), per-message expiration, and what x-death says about them."""

from __future__ import annotations

import time

import pika
import pika.exceptions
import pytest

from harness import unique
from pika_support import assert_empty, connect, get_message


def message_count(channel, queue):
    return channel.queue_declare(queue, passive=True).method.message_count


def test_a_ttl_queue_nobody_reads_dead_letters_its_messages_into_the_work_queue_in_order(amqp_url):
    connection = connect(amqp_url)
    channel = connection.channel()
    channel.confirm_delivery()
    work, wait = unique("work"), unique("wait")
    channel.queue_declare(work, durable=True)
    channel.queue_declare(
        wait,
        durable=True,
        arguments={
            "x-message-ttl": 500,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": work,
        },
    )
    published = time.monotonic()
    for i in range(3):
        channel.basic_publish("", wait, f"retry-{i}".encode(), pika.BasicProperties(delivery_mode=2))
    assert message_count(channel, wait) == 3
    bodies = []
    for _ in range(3):
        method, properties, body = get_message(channel, work)
        bodies.append(body)
        [death] = properties.headers["x-death"]
        assert (death["reason"], death["queue"], death["count"]) == ("expired", wait, 1)
    waited = time.monotonic() - published
    assert bodies == [b"retry-0", b"retry-1", b"retry-2"]
    assert 0.45 <= waited < 4.0, waited
    assert message_count(channel, wait) == 0
    assert_empty(channel, work)
    connection.close()


def test_a_per_message_expiration_dead_letters_only_that_message(amqp_url):
    connection = connect(amqp_url)
    channel = connection.channel()
    channel.confirm_delivery()
    parked, dead = unique("parked"), unique("dead")
    channel.queue_declare(dead)
    channel.queue_declare(
        parked,
        arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dead},
    )
    channel.basic_publish("", parked, b"short-lived", pika.BasicProperties(expiration="200"))
    channel.basic_publish("", parked, b"kept", pika.BasicProperties())
    _, properties, body = get_message(channel, dead)
    assert body == b"short-lived"
    [death] = properties.headers["x-death"]
    assert (death["reason"], death["queue"], death["original-expiration"]) == ("expired", parked, "200")
    # An expired message's `expiration` is removed (RabbitMQ does so that it does not
    # expire again wherever it is dead-lettered to).
    assert properties.expiration is None
    assert message_count(channel, parked) == 1
    assert get_message(channel, parked)[2] == b"kept"
    connection.close()


def test_a_retry_loop_keeps_every_death_in_x_death_with_counts_as_rabbitmq(amqp_url):
    """The usual retry loop: `work` dead-letters rejects into `retry`, whose TTL dead-letters
    them back into `work`. After two rounds x-death holds one entry per (queue, reason),
    newest first, each with count 2 and the exchange and routing keys of its first death."""
    connection = connect(amqp_url)
    channel = connection.channel()
    channel.confirm_delivery()
    entry, work, retry = unique("entry"), unique("work"), unique("retry")
    channel.exchange_declare(entry, exchange_type="direct")
    channel.queue_declare(
        work, arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": retry}
    )
    channel.queue_bind(work, entry, routing_key="job")
    channel.queue_declare(
        retry,
        arguments={
            "x-message-ttl": 100,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": work,
        },
    )
    channel.basic_publish(entry, "job", b"flaky", pika.BasicProperties(headers={"own": "kept"}))
    for _ in range(2):
        method, _, _ = get_message(channel, work, auto_ack=False)
        channel.basic_reject(method.delivery_tag, requeue=False)
    method, properties, body = get_message(channel, work)
    assert body == b"flaky"
    headers = properties.headers
    assert headers["own"] == "kept"
    summary = [(d["queue"], d["reason"], d["count"]) for d in headers["x-death"]]
    assert summary == [(retry, "expired", 2), (work, "rejected", 2)]
    retry_death, work_death = headers["x-death"]
    assert (work_death["exchange"], work_death["routing-keys"]) == (entry, ["job"])
    assert (retry_death["exchange"], retry_death["routing-keys"]) == ("", [retry])
    assert work_death["time"] <= retry_death["time"]
    assert headers["x-first-death-queue"] == work
    assert headers["x-first-death-reason"] == "rejected"
    assert headers["x-first-death-exchange"] == entry
    connection.close()


def test_reject_publish_dlx_nacks_the_publish_and_dead_letters_the_refused_message(amqp_url):
    connection = connect(amqp_url)
    channel = connection.channel()
    channel.confirm_delivery()
    bounded, overflowed = unique("bounded"), unique("overflowed")
    channel.queue_declare(overflowed)
    arguments = {
        "x-max-length": 2,
        "x-overflow": "reject-publish-dlx",
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": overflowed,
    }
    channel.queue_declare(bounded, arguments=arguments)
    channel.basic_publish("", bounded, b"first")
    channel.basic_publish("", bounded, b"second")
    with pytest.raises(pika.exceptions.NackError):
        channel.basic_publish("", bounded, b"third")
    _, properties, body = get_message(channel, overflowed)
    assert body == b"third"
    [death] = properties.headers["x-death"]
    assert (death["reason"], death["queue"], death["count"]) == ("maxlen", bounded, 1)
    assert message_count(channel, bounded) == 2
    assert [get_message(channel, bounded)[2] for _ in range(2)] == [b"first", b"second"]
    # Re-declared with the same arguments: equivalent.
    channel.queue_declare(bounded, arguments=arguments)
    connection.close()


def test_an_x_death_the_publisher_sent_is_counted_on_and_gains_no_first_death_headers(amqp_url):
    # What RabbitMQ 3.10 answers (read from it): the matching entry's count rises by one,
    # whatever integer type it came as, and x-first-death-* come only with a first x-death.
    connection = connect(amqp_url)
    channel = connection.channel()
    retry, dead = unique("retry"), unique("dead")
    channel.queue_declare(dead)
    channel.queue_declare(retry, arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dead})
    earlier = [{"count": 3, "reason": "rejected", "queue": retry, "exchange": "", "routing-keys": [retry]}]
    channel.basic_publish("", retry, b"again", pika.BasicProperties(headers={"x-death": earlier}))
    method, _, _ = get_message(channel, retry, auto_ack=False)
    channel.basic_nack(method.delivery_tag, requeue=False)
    _, properties, body = get_message(channel, dead)
    assert body == b"again"
    headers = properties.headers
    assert [(d["queue"], d["reason"], d["count"]) for d in headers["x-death"]] == [(retry, "rejected", 4)]
    assert not any(name.startswith("x-first-death") for name in headers)
    channel.queue_delete(retry)
    channel.queue_delete(dead)
    connection.close()
