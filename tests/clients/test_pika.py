"""pika, the AMQP 0-9-1 client for Python, against the AMQP door: the default exchange,
direct/fanout/topic routing (`*` one word, `#` zero or more), publisher confirms, mandatory
returns, nack/requeue (redelivered), reject to a dead-letter exchange with `x-death`, prefetch,
basic.get, properties end to end, and the channel errors a client meets."""

from __future__ import annotations

import base64
import time

import pika
import pika.exceptions
import pytest

from harness import http_json, unique
from pika_support import WAIT_S, assert_empty, connect, consume_one, get_body


def test_the_default_exchange_routes_by_queue_name_and_properties_survive(amqp_url):
    connection = connect(amqp_url)
    channel = connection.channel()
    queue = unique("plain")
    channel.queue_declare(queue, durable=True)
    properties = pika.BasicProperties(
        content_type="application/json",
        correlation_id="corr-1",
        delivery_mode=2,
        headers={"tenant": "acme", "n": 7, "nested": {"a": 1}},
        message_id="m-1",
    )
    channel.basic_publish("", queue, b'{"x": 1}', properties)
    method, got, body = consume_one(channel, queue)
    assert body == b'{"x": 1}'
    assert method.routing_key == queue and method.exchange == ""
    assert got.content_type == "application/json"
    assert got.correlation_id == "corr-1"
    assert got.message_id == "m-1"
    assert got.delivery_mode == 2
    assert got.headers == {"tenant": "acme", "n": 7, "nested": {"a": 1}}
    channel.basic_ack(method.delivery_tag)
    channel.cancel()
    connection.close()


def test_topic_routing_matches_star_as_one_word_and_hash_as_zero_or_more(amqp_url):
    connection = connect(amqp_url)
    channel = connection.channel()
    exchange = unique("topics")
    channel.exchange_declare(exchange, exchange_type="topic")
    one_word, any_words = unique("one"), unique("any")
    for queue, pattern in [(one_word, "order.*"), (any_words, "order.#")]:
        channel.queue_declare(queue)
        channel.queue_bind(queue, exchange, routing_key=pattern)
    for key in ["order", "order.created", "order.created.eu", "user.created"]:
        channel.basic_publish(exchange, key, key.encode())
    assert get_body(channel, one_word) == b"order.created"
    assert_empty(channel, one_word)
    assert [get_body(channel, any_words) for _ in range(3)] == [
        b"order",
        b"order.created",
        b"order.created.eu",
    ]
    assert_empty(channel, any_words)
    connection.close()


def test_fanout_reaches_every_bound_queue_and_direct_only_the_matching_key(amqp_url):
    connection = connect(amqp_url)
    channel = connection.channel()
    fanout, direct = unique("fan"), unique("direct")
    channel.exchange_declare(fanout, exchange_type="fanout")
    channel.exchange_declare(direct, exchange_type="direct")
    first, second = unique("a"), unique("b")
    for queue in (first, second):
        channel.queue_declare(queue)
        channel.queue_bind(queue, fanout)
    channel.queue_bind(first, direct, routing_key="red")
    channel.basic_publish(fanout, "ignored", b"everyone")
    channel.basic_publish(direct, "red", b"red")
    channel.basic_publish(direct, "blue", b"blue")
    assert get_body(channel, first) == b"everyone"
    assert get_body(channel, first) == b"red"
    assert get_body(channel, second) == b"everyone"
    assert_empty(channel, first)
    assert_empty(channel, second)
    channel.queue_unbind(first, direct, routing_key="red")
    channel.basic_publish(direct, "red", b"after unbind")
    assert_empty(channel, first)
    connection.close()


def test_confirms_and_an_unroutable_mandatory_publish(amqp_url):
    connection = connect(amqp_url)
    channel = connection.channel()
    channel.confirm_delivery()
    queue = unique("confirmed")
    channel.queue_declare(queue, durable=True)
    # With confirms on, a blocking publish returns once the broker acked it.
    channel.basic_publish("", queue, b"kept", pika.BasicProperties(delivery_mode=2))
    with pytest.raises(pika.exceptions.UnroutableError):
        channel.basic_publish("", unique("nobody"), b"lost", mandatory=True)
    assert get_body(channel, queue) == b"kept"
    connection.close()


def test_a_nack_with_requeue_is_redelivered_and_reject_goes_to_the_dead_letter_exchange(amqp_url):
    connection = connect(amqp_url)
    channel = connection.channel()
    dlx, dead, work = unique("dlx"), unique("dead"), unique("work")
    channel.exchange_declare(dlx, exchange_type="direct")
    channel.queue_declare(dead)
    channel.queue_bind(dead, dlx, routing_key="failed")
    channel.queue_declare(
        work,
        arguments={"x-dead-letter-exchange": dlx, "x-dead-letter-routing-key": "failed"},
    )
    channel.basic_publish("", work, b"job")
    method, _, _ = consume_one(channel, work)
    assert not method.redelivered
    channel.basic_nack(method.delivery_tag, requeue=True)
    method, _, body = consume_one(channel, work)
    assert method.redelivered and body == b"job"
    channel.basic_reject(method.delivery_tag, requeue=False)
    channel.cancel()
    method, properties, body = consume_one(channel, dead)
    assert body == b"job"
    assert method.exchange == dlx and method.routing_key == "failed"
    death = properties.headers["x-death"][0]
    assert death["reason"] == "rejected"
    assert death["queue"] == work
    assert death["count"] == 1
    assert properties.headers["x-first-death-queue"] == work
    channel.basic_ack(method.delivery_tag)
    connection.close()


def test_prefetch_holds_back_deliveries_until_acks(amqp_url):
    connection = connect(amqp_url)
    channel = connection.channel()
    queue = unique("prefetch")
    channel.queue_declare(queue)
    for i in range(4):
        channel.basic_publish("", queue, f"m{i}".encode())
    channel.basic_qos(prefetch_count=1)
    received = []
    channel.basic_consume(queue, lambda ch, method, props, body: received.append((method, body)))
    connection.process_data_events(time_limit=1.0)
    assert [body for _, body in received] == [b"m0"]
    channel.basic_ack(received[0][0].delivery_tag)
    connection.process_data_events(time_limit=1.0)
    assert [body for _, body in received] == [b"m0", b"m1"]
    connection.close()


def test_a_requeue_past_max_length_drops_the_head_as_rabbitmq_does(amqp_url):
    # RabbitMQ 3.10 (Debian) gives the same answers: the requeued m1 goes back to the head
    # and the default overflow (drop-head) drops it.
    connection = connect(amqp_url)
    channel = connection.channel()
    channel.confirm_delivery()
    queue = unique("maxlen-requeue")
    channel.queue_declare(queue, arguments={"x-max-length": 2})
    for body in (b"m1", b"m2"):
        channel.basic_publish("", queue, body)
    method, _, body = channel.basic_get(queue)
    assert body == b"m1"
    channel.basic_publish("", queue, b"m3")
    channel.basic_reject(method.delivery_tag, requeue=True)
    left = []
    while (got := channel.basic_get(queue, auto_ack=True))[0] is not None:
        left.append((got[2], got[0].redelivered))
    assert left == [(b"m2", False), (b"m3", False)]
    connection.close()


def test_priorities_are_capped_at_x_max_priority_and_ignored_without_it(amqp_url):
    # The orders RabbitMQ 3.10 (Debian) gives for the same publishes: a queue declared without
    # x-max-priority is first in, first out; above the maximum a priority counts as it.
    connection = connect(amqp_url)
    channel = connection.channel()
    channel.confirm_delivery()
    expected = {
        None: ["m0p0", "m1p5", "m2p1", "m3p3", "m4p2", "m5p9"],
        2: ["m1p5", "m3p3", "m4p2", "m5p9", "m2p1", "m0p0"],
        9: ["m5p9", "m1p5", "m3p3", "m4p2", "m2p1", "m0p0"],
    }
    for maximum, order in expected.items():
        queue = unique(f"priority-{maximum}")
        arguments = {} if maximum is None else {"x-max-priority": maximum}
        channel.queue_declare(queue, arguments=arguments)
        for index, priority in enumerate([0, 5, 1, 3, 2, 9]):
            properties = pika.BasicProperties(priority=priority)
            channel.basic_publish("", queue, f"m{index}p{priority}".encode(), properties)
        got = []
        while (message := channel.basic_get(queue, auto_ack=True))[0] is not None:
            got.append(message[2].decode())
        assert got == order, f"x-max-priority {maximum}"
    connection.close()


def test_a_byte_prefetch_window_is_refused_as_rabbitmq_refuses_it(amqp_url):
    connection = connect(amqp_url)
    channel = connection.channel()
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as closed:
        channel.basic_qos(prefetch_size=4096, prefetch_count=10)
    assert closed.value.reply_code == 540
    assert closed.value.reply_text == "NOT_IMPLEMENTED - prefetch_size!=0 (4096)"


def test_basic_get_and_the_errors_a_client_meets(amqp_url):
    connection = connect(amqp_url)
    channel = connection.channel()
    queue = unique("pull")
    channel.queue_declare(queue)
    channel.basic_publish("", queue, b"one")
    method, _, body = channel.basic_get(queue)
    assert body == b"one" and method.message_count == 0
    channel.basic_ack(method.delivery_tag)
    assert channel.basic_get(queue) == (None, None, None)
    # A passive declare of a missing queue: 404 closes that channel only.
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        channel.queue_declare(unique("missing"), passive=True)
    assert closed.value.reply_code == 404
    other = connection.channel()
    # Acking a tag never delivered: 406 PRECONDITION_FAILED, again on that channel only.
    other.basic_ack(42)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        other.queue_declare(queue, passive=True)
    assert closed.value.reply_code == 406
    # A stream queue is refused clearly.
    third = connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        third.queue_declare(unique("stream"), durable=True, arguments={"x-queue-type": "stream"})
    assert closed.value.reply_code == 406
    assert connection.is_open
    connection.channel().queue_declare(queue, passive=True)
    connection.close()


def test_an_exclusive_queue_is_locked_to_its_connection_and_goes_with_it(amqp_url):
    owner = connect(amqp_url)
    channel = owner.channel()
    declared = channel.queue_declare("", exclusive=True)
    queue = declared.method.queue
    assert queue.startswith("amq.gen-")
    intruder = connect(amqp_url)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        intruder.channel().basic_consume(queue, lambda *args: None)
    assert closed.value.reply_code == 405
    owner.close()
    deadline = time.monotonic() + WAIT_S
    while True:
        probe = intruder.channel()
        try:
            probe.queue_declare(queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker as gone:
            if gone.reply_code == 404:
                break
            assert gone.reply_code == 405, gone
        assert time.monotonic() < deadline, "the exclusive queue outlived its connection"
        time.sleep(0.05)
    intruder.close()


def test_redeclarations_are_compared_as_rabbitmq_compares_them(amqp_url):
    """A queue or exchange declared again with other flags or arguments: 406 with RabbitMQ's
    wording, on that channel only; a passive declare of a missing one: 404."""
    connection = connect(amqp_url)
    queue = unique("redeclared")
    arguments = {"x-max-length": 10, "x-max-priority": 5}
    connection.channel().queue_declare(queue, durable=True, arguments=arguments)
    connection.channel().queue_declare(queue, durable=True, arguments=arguments)
    refusals = [
        (dict(durable=True, arguments={"x-max-length": 20, "x-max-priority": 5}),
         f"inequivalent arg 'x-max-length' for queue '{queue}' in vhost '/': received '20' but current is '10'"),
        (dict(durable=False, arguments=arguments),
         f"inequivalent arg 'durable' for queue '{queue}' in vhost '/': received 'false' but current is 'true'"),
        (dict(durable=True, arguments={"x-max-length": 10}),
         f"inequivalent arg 'x-max-priority' for queue '{queue}' in vhost '/': received none but current is the value '5' of type 'signedint'"),
    ]
    for options, text in refusals:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
            connection.channel().queue_declare(queue, **options)
        assert closed.value.reply_code == 406
        assert text in closed.value.reply_text, closed.value.reply_text
    exchange = unique("redeclared-exchange")
    connection.channel().exchange_declare(exchange, "direct", durable=True)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        connection.channel().exchange_declare(exchange, "topic", durable=True)
    assert closed.value.reply_code == 406
    assert (
        f"inequivalent arg 'type' for exchange '{exchange}' in vhost '/': received 'topic' but current is 'direct'"
        in closed.value.reply_text
    ), closed.value.reply_text
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        connection.channel().exchange_declare(unique("absent"), "direct", passive=True)
    assert closed.value.reply_code == 404
    # A bind to an exchange that is not there, worded as RabbitMQ words it.
    absent = unique("absent")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        connection.channel().queue_bind(queue, absent, "k")
    assert closed.value.reply_code == 404
    assert closed.value.reply_text == f"NOT_FOUND - no exchange '{absent}' in vhost '/'"
    assert connection.is_open
    connection.close()


def test_a_headers_exchange_matches_all_or_any(amqp_url):
    connection = connect(amqp_url)
    channel = connection.channel()
    exchange = unique("headers")
    channel.exchange_declare(exchange, exchange_type="headers")
    every, either = unique("all"), unique("any")
    channel.queue_declare(every)
    channel.queue_declare(either)
    channel.queue_bind(every, exchange, arguments={"x-match": "all", "format": "pdf", "type": "report"})
    channel.queue_bind(either, exchange, arguments={"x-match": "any", "format": "pdf", "type": "report"})
    channel.basic_publish(exchange, "", b"both", pika.BasicProperties(headers={"format": "pdf", "type": "report"}))
    channel.basic_publish(exchange, "", b"one", pika.BasicProperties(headers={"format": "pdf"}))
    channel.basic_publish(exchange, "", b"none", pika.BasicProperties(headers={"format": "zip"}))
    assert get_body(channel, every) == b"both"
    assert_empty(channel, every)
    assert [get_body(channel, either), get_body(channel, either)] == [b"both", b"one"]
    assert_empty(channel, either)
    connection.close()


def test_a_message_crosses_between_amqp_and_the_http_queue_api(broker, amqp_url, http):
    connection = connect(amqp_url)
    channel = connection.channel()
    queue = unique("crossing")
    channel.queue_declare(queue, durable=True)
    channel.basic_publish("", queue, b"from amqp", pika.BasicProperties(headers={"k": "v"}))
    received = http_json("POST", f"{http}/v1/queues/{queue}/receive", {"worker": "w", "wait_ms": 5000})
    [message] = received["messages"]
    value = message.get("value")
    if value is None:
        value = base64.b64decode(message["value_base64"]).decode()
    assert value == "from amqp"
    http_json("POST", f"{http}/v1/queues/{queue}/messages/{message['id']}/ack", {"attempt": message["attempt"]})
    http_json(
        "POST",
        f"{http}/v1/queues/{queue}/messages",
        {"value_base64": base64.b64encode(b"from http").decode(), "headers": {"origin": "http"}},
    )
    method, properties, body = channel.basic_get(queue, auto_ack=True)
    assert body == b"from http"
    assert properties.headers == {"origin": "http"}
    connection.close()


def test_confirmed_persistent_messages_survive_kill_9(broker, amqp_url):
    connection = connect(amqp_url)
    channel = connection.channel()
    channel.confirm_delivery()
    queue = unique("durable")
    channel.queue_declare(queue, durable=True)
    bodies = [f"m{i}".encode() for i in range(50)]
    for body in bodies:
        # Returns once the broker confirmed it, after the fsync.
        channel.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2))
    broker.kill9()
    broker.start()
    connection = connect(broker.amqp_url)
    channel = connection.channel()
    declared = channel.queue_declare(queue, passive=True)
    assert declared.method.message_count == len(bodies)
    assert [get_body(channel, queue) for _ in bodies] == bodies
    connection.close()


def test_non_durable_queues_round_trip_and_are_gone_after_kill_9_while_durable_ones_stay(broker, amqp_url):
    connection = connect(amqp_url)
    channel = connection.channel()
    channel.confirm_delivery()
    transient_queue = unique("nondurable")
    durable_queue = unique("durable")
    channel.queue_declare(transient_queue)  # durable=False, as pika's tutorials declare
    channel.queue_declare(durable_queue, durable=True)
    # A non-durable queue confirms (without an fsync) and delivers like any other.
    channel.basic_publish("", transient_queue, b"transient", pika.BasicProperties(delivery_mode=1))
    channel.basic_publish("", transient_queue, b"persistent", pika.BasicProperties(delivery_mode=2))
    method, _, body = consume_one(channel, transient_queue)
    assert body == b"transient"
    channel.basic_ack(method.delivery_tag)
    # A durable queue fsyncs both delivery modes before their confirm: both survive.
    channel.basic_publish("", durable_queue, b"transient", pika.BasicProperties(delivery_mode=1))
    channel.basic_publish("", durable_queue, b"persistent", pika.BasicProperties(delivery_mode=2))
    broker.kill9()
    broker.start()
    connection = connect(broker.amqp_url)
    channel = connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        channel.queue_declare(transient_queue, passive=True)
    assert closed.value.reply_code == 404
    channel = connection.channel()
    assert [get_body(channel, durable_queue) for _ in range(2)] == [b"transient", b"persistent"]
    connection.close()


def test_rpc_with_direct_reply_to_over_a_non_durable_request_queue(amqp_url):
    """RabbitMQ's RPC tutorial: the server consumes `rpc_queue` and answers to `reply_to`
    with the request's correlation id; the client consumes `amq.rabbitmq.reply-to`."""
    server = connect(amqp_url)
    server_channel = server.channel()
    request_queue = unique("rpc_queue")
    server_channel.queue_declare(request_queue)
    server_channel.basic_qos(prefetch_count=1)

    def on_request(channel, method, properties, body):
        channel.basic_publish(
            "",
            properties.reply_to,
            str(int(body) * 2).encode(),
            pika.BasicProperties(correlation_id=properties.correlation_id),
        )
        channel.basic_ack(method.delivery_tag)

    server_channel.basic_consume(request_queue, on_request)
    client = connect(amqp_url)
    client_channel = client.channel()
    replies = {}

    def on_reply(channel, method, properties, body):
        replies[properties.correlation_id] = body

    client_channel.basic_consume("amq.rabbitmq.reply-to", on_reply, auto_ack=True)
    for number in range(20):
        correlation_id = f"call-{number}"
        client_channel.basic_publish(
            "",
            request_queue,
            str(number).encode(),
            pika.BasicProperties(reply_to="amq.rabbitmq.reply-to", correlation_id=correlation_id),
        )
        deadline = time.monotonic() + WAIT_S
        while correlation_id not in replies and time.monotonic() < deadline:
            server.process_data_events(time_limit=0.01)
            client.process_data_events(time_limit=0.01)
        assert replies.get(correlation_id) == str(number * 2).encode(), replies
    client.close()
    server.close()


def test_a_transaction_publishes_and_acks_at_commit_only(amqp_url):
    connection = connect(amqp_url)
    channel = connection.channel()
    queue = unique("tx")
    channel.queue_declare(queue, durable=True)
    channel.tx_select()
    channel.basic_publish("", queue, b"rolled back")
    channel.tx_rollback()
    channel.basic_publish("", queue, b"committed")
    reader = connection.channel()
    assert_empty(reader, queue)
    channel.tx_commit()
    method, _, body = channel.basic_get(queue)
    assert body == b"committed"
    # The ack waits for the commit: after a rollback the delivery is unacknowledged again,
    # and the channel's close requeues it.
    channel.basic_ack(method.delivery_tag)
    channel.tx_rollback()
    channel.close()
    method, _, body = reader.basic_get(queue, auto_ack=True)
    assert body == b"committed" and method.redelivered
    connection.close()


def test_workers_starting_together_declare_their_queue_at_once(amqp_url):
    """Celery or pika workers started together all declare the same new durable queue at
    the same moment; every declaration succeeds and the queue takes messages, as in
    RabbitMQ (they used to race: `541 INTERNAL_ERROR - stream "…" already exists`)."""
    import threading

    queue = unique("together")
    errors, barrier = [], threading.Barrier(8)

    def declare():
        connection = connect(amqp_url)
        try:
            channel = connection.channel()
            barrier.wait(timeout=WAIT_S)
            channel.queue_declare(queue=queue, durable=True)
            channel.basic_publish(exchange="", routing_key=queue, body=b"hello")
        except Exception as error:  # reported below, with the others
            errors.append(error)
        finally:
            if connection.is_open:
                connection.close()

    threads = [threading.Thread(target=declare) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=WAIT_S)
    assert not errors, errors
    connection = connect(amqp_url)
    try:
        declared = connection.channel().queue_declare(queue=queue, durable=True, passive=True)
        assert declared.method.message_count == 8
    finally:
        connection.close()
