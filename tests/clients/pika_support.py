"""pika helpers shared by the AMQP suites (test_pika.py, test_amqp_coverage.py): a blocking
connection, a message by basic.get or by consume with a bounded wait, and "nothing there"."""

from __future__ import annotations

import time

import pika

WAIT_S = 5.0


def connect(amqp_url, **options):
    """A blocking connection; `options` set pika connection parameters (heartbeat=1, …)."""
    parameters = pika.URLParameters(amqp_url)
    for name, value in options.items():
        setattr(parameters, name, value)
    return pika.BlockingConnection(parameters)


def get_message(channel, queue, timeout=WAIT_S, auto_ack=True):
    """The next message via basic.get (acked unless `auto_ack` is False): (method, properties,
    body), waiting up to `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        method, properties, body = channel.basic_get(queue, auto_ack=auto_ack)
        if method is not None:
            return method, properties, body
        time.sleep(0.02)
    raise AssertionError(f"nothing arrived on {queue} within {timeout} s")


def get_body(channel, queue, timeout=WAIT_S):
    """The next message's body via basic.get (acked), waiting up to `timeout`."""
    return get_message(channel, queue, timeout)[2]


def assert_empty(channel, queue):
    method, _, body = channel.basic_get(queue, auto_ack=True)
    assert method is None, f"unexpected message {body!r} on {queue}"


def consume_one(channel, queue, auto_ack=False):
    for method, properties, body in channel.consume(queue, auto_ack=auto_ack, inactivity_timeout=WAIT_S):
        assert method is not None, f"no delivery on {queue} within {WAIT_S} s"
        return method, properties, body
    raise AssertionError("the consumer ended")
