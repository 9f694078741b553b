"""Real clients (pika, blocking and select; py-amqp, kombu's transport) against the AMQP door
for what issue 13 asks and no other suite proves: queue.purge, queue.delete (if-unused,
if-empty), exchange.delete (if-unused), DLX on nack, client acks with `multiple`, reject with
requeue, the amq.topic / amq.match built-ins, every field-table type and content property,
bodies over frame_max, heartbeats, x-death's fields, x-max-length-bytes,
quorum queues with x-delivery-limit, the server properties and kombu's nowait consumes."""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from decimal import Decimal
from urllib.parse import urlparse

import amqp
import pika
import pika.exceptions
import pytest

from harness import unique
from pika_support import WAIT_S, assert_empty, connect, consume_one, get_body, get_message


def message_count(connection, queue):
    return connection.channel().queue_declare(queue, passive=True).method.message_count


def assert_missing(connection, queue=None, exchange=None):
    """A passive declare of the queue (or exchange) closes a fresh channel with 404."""
    channel = connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        if queue is not None:
            channel.queue_declare(queue, passive=True)
        else:
            channel.exchange_declare(exchange, passive=True)
    assert closed.value.reply_code == 404, closed.value


def py_amqp_connection(amqp_url):
    """A py-amqp (kombu's transport) connection to the broker behind `amqp_url`."""
    url = urlparse(amqp_url)
    connection = amqp.Connection(
        host=f"{url.hostname}:{url.port}",
        userid="guest",
        password="guest",
        virtual_host="/",
        connect_timeout=WAIT_S,
    )
    connection.connect()
    return connection


# -- 1. queue.purge ---------------------------------------------------------------------------


def test_queue_purge_answers_the_count_and_empties_the_queue_but_not_what_is_unacked(amqp_url):
    connection = connect(amqp_url)
    channel = connection.channel()
    channel.confirm_delivery()
    queue = unique("purge")
    channel.queue_declare(queue)
    for i in range(5):
        channel.basic_publish("", queue, f"m{i}".encode())
    # One message held unacknowledged: RabbitMQ's purge leaves it alone.
    held, _, body = channel.basic_get(queue)
    assert body == b"m0"
    purged = channel.queue_purge(queue)
    assert purged.method.message_count == 4
    assert message_count(connection, queue) == 0
    reader = connection.channel()
    assert_empty(reader, queue)
    channel.basic_reject(held.delivery_tag, requeue=True)
    method, _, body = get_message(reader, queue)
    assert body == b"m0" and method.redelivered
    assert_empty(reader, queue)
    # Purging an empty queue answers 0.
    assert channel.queue_purge(queue).method.message_count == 0
    connection.close()


# -- 2. queue.delete ----------------------------------------------------------------------------


def test_queue_delete_answers_the_count_and_refuses_if_unused_or_if_empty_with_406(amqp_url):
    connection = connect(amqp_url)
    channel = connection.channel()
    channel.confirm_delivery()

    plain = unique("delete-plain")
    channel.queue_declare(plain)
    for i in range(3):
        channel.basic_publish("", plain, f"m{i}".encode())
    deleted = channel.queue_delete(plain)
    assert deleted.method.message_count == 3
    assert_missing(connection, queue=plain)

    # if_unused with a consumer on the queue: 406 on that channel, the queue stays.
    used = unique("delete-used")
    owner = connection.channel()
    owner.queue_declare(used)
    owner.basic_consume(used, lambda *args: None)
    deleter = connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        deleter.queue_delete(used, if_unused=True)
    assert closed.value.reply_code == 406
    assert "PRECONDITION_FAILED" in closed.value.reply_text
    assert owner.is_open
    connection.channel().queue_declare(used, passive=True)

    # if_empty with messages: 406, the messages stay.
    full = unique("delete-full")
    channel.queue_declare(full)
    channel.basic_publish("", full, b"still here")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        connection.channel().queue_delete(full, if_empty=True)
    assert closed.value.reply_code == 406
    assert "PRECONDITION_FAILED" in closed.value.reply_text
    assert message_count(connection, full) == 1
    assert get_body(connection.channel(), full) == b"still here"
    # Now empty: if_empty deletes it.
    assert connection.channel().queue_delete(full, if_empty=True).method.message_count == 0
    assert_missing(connection, queue=full)

    # With no consumer left, if_unused deletes too.
    owner.close()
    assert connection.channel().queue_delete(used, if_unused=True).method.message_count == 0
    assert_missing(connection, queue=used)
    assert connection.is_open
    connection.close()


# -- 3. exchange.delete -------------------------------------------------------------------------


def test_exchange_delete_removes_it_with_its_bindings_and_if_unused_refuses_a_bound_one(amqp_url):
    connection = connect(amqp_url)
    channel = connection.channel()

    lone = unique("lone-exchange")
    channel.exchange_declare(lone, exchange_type="fanout")
    channel.exchange_delete(lone)
    assert_missing(connection, exchange=lone)

    bound = unique("bound-exchange")
    queue = unique("bound-queue")
    channel.exchange_declare(bound, exchange_type="direct")
    channel.queue_declare(queue)
    channel.queue_bind(queue, bound, routing_key="k")
    # A source of bindings is in use: 406 on that channel, the exchange and binding stay.
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        connection.channel().exchange_delete(bound, if_unused=True)
    assert closed.value.reply_code == 406
    assert "PRECONDITION_FAILED" in closed.value.reply_text
    channel.basic_publish(bound, "k", b"still bound")
    assert get_body(channel, queue) == b"still bound"

    # A plain delete goes, with its bindings: declared again, it routes nowhere.
    channel.exchange_delete(bound)
    assert_missing(connection, exchange=bound)
    channel.exchange_declare(bound, exchange_type="direct")
    channel.confirm_delivery()
    with pytest.raises(pika.exceptions.UnroutableError):
        channel.basic_publish(bound, "k", b"no binding left", mandatory=True)
    assert_empty(channel, queue)
    connection.close()


# -- 4. basic.nack without requeue → DLX ---------------------------------------------------------


def test_a_nack_without_requeue_goes_to_the_dead_letter_exchange_as_rejected(amqp_url):
    connection = connect(amqp_url)
    channel = connection.channel()
    dlx, dead, work = unique("dlx"), unique("dead"), unique("work")
    channel.exchange_declare(dlx, exchange_type="fanout")
    channel.queue_declare(dead)
    channel.queue_bind(dead, dlx)
    channel.queue_declare(work, arguments={"x-dead-letter-exchange": dlx})
    channel.basic_publish("", work, b"nacked", pika.BasicProperties(message_id="n-1"))
    method, _, _ = consume_one(channel, work)
    channel.basic_nack(method.delivery_tag, requeue=False)
    channel.cancel()
    method, properties, body = consume_one(channel, dead)
    assert body == b"nacked"
    assert properties.message_id == "n-1"
    assert method.exchange == dlx and method.routing_key == work
    [death] = properties.headers["x-death"]
    assert death["reason"] == "rejected"
    assert death["queue"] == work
    assert death["count"] == 1
    assert properties.headers["x-first-death-reason"] == "rejected"
    channel.basic_ack(method.delivery_tag)
    channel.cancel()
    assert_empty(channel, work)
    connection.close()


# -- 5. basic.ack multiple ------------------------------------------------------------------------


def test_an_ack_with_multiple_acknowledges_every_earlier_delivery(amqp_url):
    connection = connect(amqp_url)
    channel = connection.channel()
    queue = unique("ack-multiple")
    channel.queue_declare(queue)
    for i in range(5):
        channel.basic_publish("", queue, f"m{i}".encode())
    channel.basic_qos(prefetch_count=10)
    received = []
    channel.basic_consume(queue, lambda ch, method, props, body: received.append((method, body)))
    deadline = time.monotonic() + WAIT_S
    while len(received) < 5 and time.monotonic() < deadline:
        connection.process_data_events(time_limit=0.1)
    assert [body for _, body in received] == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    # One ack, multiple=True, for the third delivery: the first three are settled.
    channel.basic_ack(received[2][0].delivery_tag, multiple=True)
    connection.close()

    connection = connect(amqp_url)
    channel = connection.channel()
    again = [get_message(channel, queue) for _ in range(2)]
    assert sorted(body for _, _, body in again) == [b"m3", b"m4"]
    assert all(method.redelivered for method, _, _ in again)
    assert_empty(channel, queue)
    connection.close()


# -- 6. basic.reject with requeue ---------------------------------------------------------------


def test_a_reject_with_requeue_is_delivered_again_flagged_redelivered(amqp_url):
    connection = connect(amqp_url)
    channel = connection.channel()
    queue = unique("reject-requeue")
    channel.queue_declare(queue)
    channel.basic_publish("", queue, b"again")
    method, _, body = consume_one(channel, queue)
    assert body == b"again" and not method.redelivered
    channel.basic_reject(method.delivery_tag, requeue=True)
    method, _, body = consume_one(channel, queue)
    assert body == b"again" and method.redelivered
    channel.basic_ack(method.delivery_tag)
    channel.cancel()
    assert_empty(channel, queue)
    connection.close()


# -- 7. amq.topic and amq.match -----------------------------------------------------------------


def test_the_amq_topic_and_amq_match_built_ins_route_without_being_declared(amqp_url):
    connection = connect(amqp_url)
    channel = connection.channel()
    one_word, any_words = unique("amq-topic-one"), unique("amq-topic-any")
    prefix = unique("stock")
    for queue, pattern in [(one_word, f"{prefix}.*.nyse"), (any_words, f"{prefix}.#")]:
        channel.queue_declare(queue)
        channel.queue_bind(queue, "amq.topic", routing_key=pattern)
    for key in [f"{prefix}.ibm.nyse", f"{prefix}.ibm.ny.nyse", f"{prefix}", "other.ibm.nyse"]:
        channel.basic_publish("amq.topic", key, key.encode())
    assert get_body(channel, one_word) == f"{prefix}.ibm.nyse".encode()
    assert_empty(channel, one_word)
    assert [get_body(channel, any_words) for _ in range(3)] == [
        f"{prefix}.ibm.nyse".encode(),
        f"{prefix}.ibm.ny.nyse".encode(),
        prefix.encode(),
    ]
    assert_empty(channel, any_words)

    every, either = unique("amq-match-all"), unique("amq-match-any")
    tag = unique("tag")
    channel.queue_declare(every)
    channel.queue_declare(either)
    channel.queue_bind(every, "amq.match", arguments={"x-match": "all", "tag": tag, "kind": "report"})
    channel.queue_bind(either, "amq.match", arguments={"x-match": "any", "tag": tag, "kind": "report"})
    channel.basic_publish("amq.match", "", b"both", pika.BasicProperties(headers={"tag": tag, "kind": "report"}))
    channel.basic_publish("amq.match", "", b"one", pika.BasicProperties(headers={"tag": tag}))
    channel.basic_publish("amq.match", "", b"none", pika.BasicProperties(headers={"tag": "x", "kind": "y"}))
    assert get_body(channel, every) == b"both"
    assert_empty(channel, every)
    assert [get_body(channel, either), get_body(channel, either)] == [b"both", b"one"]
    assert_empty(channel, either)
    connection.close()


# -- 8. field-table types -----------------------------------------------------------------------


def test_every_field_table_type_pika_sends_comes_back_as_sent(amqp_url):
    """pika writes S, x (bytes), t, l/L (every int), D, T, F, A and V; it cannot write a float
    (the next test sends `d` with py-amqp)."""
    headers = {
        "string": "text é",
        "bytes": b"\x00\x01\xfe\xff",
        "true": True,
        "false": False,
        "small": 7,
        "negative": -5,
        "big": 2**40,
        "big_negative": -(2**40),
        "decimal": Decimal("3.14"),
        "negative_decimal": Decimal("-12.5"),
        "none": None,
        "when": datetime(2024, 2, 29, 12, 34, 56),
        "list": [1, "two", True, None, Decimal("0.5"), [3], {"k": "v"}],
        "table": {"inner": {"deep": "x", "n": -1}, "flag": False},
    }
    connection = connect(amqp_url)
    channel = connection.channel()
    queue = unique("fields")
    channel.queue_declare(queue)
    channel.basic_publish("", queue, b"typed", pika.BasicProperties(headers=headers))
    method, properties, body = consume_one(channel, queue)
    assert body == b"typed"
    assert properties.headers == headers
    assert type(properties.headers["bytes"]) is bytes
    assert type(properties.headers["decimal"]) is Decimal
    assert type(properties.headers["when"]) is datetime
    assert properties.headers["true"] is True and properties.headers["false"] is False
    channel.basic_ack(method.delivery_tag)
    channel.cancel()
    # Through basic.get too.
    channel.basic_publish("", queue, b"typed", pika.BasicProperties(headers=headers))
    _, properties, _ = get_message(channel, queue)
    assert properties.headers == headers
    connection.close()


def test_a_double_and_the_other_types_py_amqp_sends_come_back_as_sent(amqp_url):
    headers = {
        "double": 2.5,
        "negative_double": -1.0e-300,
        "int": -7,
        "long": -(2**40),
        "decimal": Decimal("-3.25"),
        "bool": True,
        "none": None,
        "when": datetime(2001, 9, 9, 1, 46, 40),
        "array": [1.5, "s", {"t": 2}],
        "table": {"d": 0.125},
    }
    connection = py_amqp_connection(amqp_url)
    try:
        channel = connection.channel()
        queue = unique("doubles")
        channel.queue_declare(queue)
        channel.confirm_select()
        channel.basic_publish(amqp.Message(b"floating", application_headers=headers), exchange="", routing_key=queue)
        deadline = time.monotonic() + WAIT_S
        message = channel.basic_get(queue, no_ack=True)
        while message is None and time.monotonic() < deadline:
            time.sleep(0.02)
            message = channel.basic_get(queue, no_ack=True)
        assert message is not None, "nothing arrived"
        assert message.body == b"floating"
        got = message.properties["application_headers"]
        assert got == headers
        assert type(got["double"]) is float and type(got["table"]["d"]) is float
    finally:
        connection.close()


# -- 9. content properties ----------------------------------------------------------------------


def test_a_user_id_other_than_the_logged_in_user_closes_the_channel_with_406(amqp_url):
    # RabbitMQ checks `user_id` against the authenticated user, so consumers can trust it.
    connection = connect(amqp_url)
    channel = connection.channel()
    channel.confirm_delivery()
    queue = unique("user-id")
    channel.queue_declare(queue)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        channel.basic_publish("", queue, b"forged", pika.BasicProperties(user_id="admin"))
    assert closed.value.reply_code == 406
    assert "user_id property set to 'admin' but authenticated user was 'guest'" in closed.value.reply_text
    channel = connection.channel()
    channel.basic_publish("", queue, b"mine", pika.BasicProperties(user_id="guest"))
    method, properties, body = get_message(channel, queue)
    assert body == b"mine" and properties.user_id == "guest"
    assert_empty(channel, queue)
    connection.close()


def test_a_message_over_the_record_limit_closes_the_channel_with_406_and_one_under_it_arrives(amqp_url):
    # The queue's stream keeps at most 1 MiB per record (body, properties and routing key);
    # RabbitMQ answers a message over its max_message_size with 406, so does the door, before
    # the body is stored.
    connection = connect(amqp_url)
    channel = connection.channel()
    channel.confirm_delivery()
    queue = unique("record-limit")
    channel.queue_declare(queue)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        channel.basic_publish("", queue, b"x" * (1024 * 1024))
    assert closed.value.reply_code == 406
    assert "is larger than the queue's record limit 1048576" in closed.value.reply_text
    channel = connection.channel()
    channel.confirm_delivery()
    body = b"y" * (1024 * 1024 - 4096)
    channel.basic_publish("", queue, body, pika.BasicProperties(headers={"big": "yes"}))
    assert get_body(channel, queue) == body
    assert_empty(channel, queue)
    connection.close()


def test_every_content_property_comes_back_as_published(amqp_url):
    properties = pika.BasicProperties(
        content_type="application/json",
        content_encoding="gzip",
        headers={"tenant": "acme"},
        delivery_mode=2,
        priority=7,
        correlation_id="corr-9",
        reply_to="replies",
        expiration="60000",
        message_id="msg-9",
        timestamp=1_700_000_000,
        type="order.created",
        user_id="guest",
        app_id="billing",
    )
    names = [
        "content_type", "content_encoding", "headers", "delivery_mode", "priority",
        "correlation_id", "reply_to", "expiration", "message_id", "timestamp", "type",
        "user_id", "app_id",
    ]
    connection = connect(amqp_url)
    channel = connection.channel()
    channel.confirm_delivery()
    queue = unique("properties")
    channel.queue_declare(queue, durable=True)
    channel.basic_publish("", queue, b"consumed", properties)
    channel.basic_publish("", queue, b"got", properties)
    method, got, body = consume_one(channel, queue)
    assert body == b"consumed"
    assert {name: getattr(got, name) for name in names} == {name: getattr(properties, name) for name in names}
    channel.basic_ack(method.delivery_tag)
    channel.cancel()
    _, got, body = get_message(channel, queue)
    assert body == b"got"
    assert {name: getattr(got, name) for name in names} == {name: getattr(properties, name) for name in names}
    connection.close()


# -- 10. bodies over frame_max --------------------------------------------------------------------


def test_bodies_larger_than_frame_max_arrive_intact(amqp_url):
    connection = connect(amqp_url)
    frame_max = connection._impl.params.frame_max
    assert frame_max == 131072
    channel = connection.channel()
    channel.confirm_delivery()
    queue = unique("large")
    channel.queue_declare(queue)
    payload = frame_max - 8  # a body frame's payload: frame_max less header and end
    sizes = [payload, payload + 1, 2 * payload, 300 * 1024, 900 * 1024 + 3]
    bodies = [os.urandom(size) for size in sizes]
    for body in bodies:
        channel.basic_publish("", queue, body)
    for expected in bodies[:3]:
        method, _, body = consume_one(channel, queue)
        assert len(body) == len(expected) and body == expected
        channel.basic_ack(method.delivery_tag)
    channel.cancel()
    for expected in bodies[3:]:
        body = get_body(channel, queue)
        assert len(body) == len(expected) and body == expected
    connection.close()


# -- 11. heartbeats ------------------------------------------------------------------------------


def test_a_one_second_heartbeat_keeps_an_idle_pika_connection_alive(amqp_url):
    connection = connect(amqp_url, heartbeat=1)
    assert connection._impl.params.heartbeat == 1  # negotiated down from the broker's 60
    channel = connection.channel()
    queue = unique("heartbeat")
    channel.queue_declare(queue)
    # Idle for longer than the broker's dead-peer limit (two intervals): only heartbeats flow.
    connection.sleep(3.5)
    checker = connection._impl._heartbeat_checker
    assert checker._heartbeat_frames_received >= 2, "the broker sent no heartbeats"
    assert checker._heartbeat_frames_sent >= 2
    assert connection.is_open
    channel.basic_publish("", queue, b"still alive")
    assert get_body(channel, queue) == b"still alive"
    connection.close()


# -- 12. pika SelectConnection -------------------------------------------------------------------


def test_pika_select_connection_declares_publishes_with_a_confirm_and_consumes(amqp_url):
    queue = unique("select")
    state = {"confirms": [], "bodies": [], "error": None, "timed_out": False, "closed": False}

    def fail(reason):
        state["error"] = reason
        connection.ioloop.stop()

    def on_open(conn):
        conn.channel(on_open_callback=on_channel)

    def on_channel(channel):
        state["channel"] = channel
        channel.confirm_delivery(on_confirm, callback=lambda _: channel.queue_declare(queue, callback=on_declared))

    def on_declared(frame):
        channel = state["channel"]
        channel.basic_consume(queue, on_message)
        channel.basic_publish("", queue, b"selected", pika.BasicProperties(message_id="sel-1"))

    def on_confirm(frame):
        state["confirms"].append(type(frame.method).__name__)
        maybe_close()

    def on_message(channel, method, properties, body):
        state["bodies"].append((body, properties.message_id))
        channel.basic_ack(method.delivery_tag)
        maybe_close()

    def maybe_close():
        if state["confirms"] and state["bodies"]:
            connection.close()

    def on_closed(conn, reason):
        state["closed"] = True
        state["close_reason"] = reason
        conn.ioloop.stop()

    def on_timeout():
        state["timed_out"] = True
        connection.ioloop.stop()

    connection = pika.SelectConnection(
        pika.URLParameters(amqp_url),
        on_open_callback=on_open,
        on_open_error_callback=lambda conn, error: fail(f"open failed: {error!r}"),
        on_close_callback=on_closed,
    )
    timer = connection.ioloop.call_later(10, on_timeout)
    try:
        connection.ioloop.start()
    finally:
        connection.ioloop.remove_timeout(timer)
        if not state["closed"] and connection.is_open:
            connection.close()
    assert not state["timed_out"], f"the select connection did not finish in 10 s: {state}"
    assert state["error"] is None, state["error"]
    assert state["confirms"] == ["Ack"]
    assert state["bodies"] == [(b"selected", "sel-1")]
    assert state["closed"]
    assert isinstance(state["close_reason"], pika.exceptions.ConnectionClosedByClient)


# -- 13. x-death fields ---------------------------------------------------------------------------


def test_x_death_names_the_queue_reason_time_exchange_and_routing_keys(amqp_url):
    """Published to `entry` with key `k`, routed to `work`, rejected: the dead letter carries
    one x-death entry with every field RabbitMQ writes, and the x-first-death-* headers.
    (Deaths in a retry loop, with counts: test_amqp_dead_letters.py.)"""
    connection = connect(amqp_url)
    channel = connection.channel()
    entry, dlx = unique("entry"), unique("dlx")
    work, final = unique("work"), unique("final")
    channel.exchange_declare(entry, exchange_type="direct")
    channel.exchange_declare(dlx, exchange_type="direct")
    channel.queue_declare(
        work, arguments={"x-dead-letter-exchange": dlx, "x-dead-letter-routing-key": "dead"}
    )
    channel.queue_bind(work, entry, routing_key="k")
    channel.queue_declare(final)
    channel.queue_bind(final, dlx, routing_key="dead")
    channel.basic_publish(entry, "k", b"dead", pika.BasicProperties(headers={"own": "kept"}))
    method, _, _ = get_message(channel, work, auto_ack=False)
    rejected_at = datetime.now(timezone.utc).replace(tzinfo=None)
    channel.basic_reject(method.delivery_tag, requeue=False)

    method, properties, body = get_message(channel, final)
    assert body == b"dead"
    assert method.exchange == dlx and method.routing_key == "dead"
    headers = properties.headers
    assert headers["own"] == "kept"
    [death] = headers["x-death"]
    assert death["count"] == 1 and isinstance(death["count"], int)
    assert death["reason"] == "rejected"
    assert death["queue"] == work
    assert isinstance(death["time"], datetime)
    assert abs((death["time"] - rejected_at).total_seconds()) < 30, death["time"]
    assert death["exchange"] == entry
    assert death["routing-keys"] == ["k"]
    assert headers["x-first-death-exchange"] == entry
    assert headers["x-first-death-queue"] == work
    assert headers["x-first-death-reason"] == "rejected"
    connection.close()


# -- 14. x-max-length-bytes ----------------------------------------------------------------------


def test_x_max_length_bytes_drops_the_oldest_when_the_bodies_exceed_it(amqp_url):
    connection = connect(amqp_url)
    channel = connection.channel()
    channel.confirm_delivery()
    queue = unique("max-bytes")
    channel.queue_declare(queue, arguments={"x-max-length-bytes": 20_000})
    # Bodies alone count, as in RabbitMQ: two 10 kB bodies fill 20 kB exactly (properties and
    # routing key do not count); the third would make 30 kB, so the oldest goes (drop-head,
    # the default), and the publish is still confirmed.
    bodies = [bytes([ord(letter)]) * 10_000 for letter in "abc"]
    for body in bodies:
        channel.basic_publish("", queue, body)
    assert message_count(connection, queue) == 2
    assert [get_body(channel, queue), get_body(channel, queue)] == bodies[1:]
    assert_empty(channel, queue)
    connection.close()


# -- 15. quorum queue with x-delivery-limit ------------------------------------------------------


def test_a_quorum_queue_dead_letters_a_message_after_its_delivery_limit(amqp_url):
    connection = connect(amqp_url)
    channel = connection.channel()
    dlx, dead, work = unique("dlx"), unique("dead"), unique("quorum")
    channel.exchange_declare(dlx, exchange_type="fanout")
    channel.queue_declare(dead)
    channel.queue_bind(dead, dlx)
    limit = 2
    channel.queue_declare(
        work,
        durable=True,
        arguments={"x-queue-type": "quorum", "x-delivery-limit": limit, "x-dead-letter-exchange": dlx},
    )
    channel.basic_publish("", work, b"poison")
    # The first delivery and `limit` redeliveries, each rejected with requeue.
    for attempt in range(limit + 1):
        method, _, body = consume_one(channel, work)
        assert body == b"poison"
        assert method.redelivered == (attempt > 0)
        channel.basic_reject(method.delivery_tag, requeue=True)
    channel.cancel()
    method, properties, body = get_message(channel, dead)
    assert body == b"poison"
    death = properties.headers["x-death"][0]
    assert death["queue"] == work and death["reason"] == "delivery_limit"
    assert_empty(channel, work)
    assert message_count(connection, work) == 0
    connection.close()


# -- 16. server properties ------------------------------------------------------------------------


def test_connection_start_names_the_product_version_and_every_capability(amqp_url):
    connection = connect(amqp_url)
    properties = connection._impl.server_properties
    assert properties["product"] == "Omnibus"
    assert properties["version"] == "3.13.0"
    capabilities = properties["capabilities"]
    for capability in [
        "publisher_confirms",
        "exchange_exchange_bindings",
        "basic.nack",
        "consumer_cancel_notify",
        "connection.blocked",
        "authentication_failure_close",
        "per_consumer_qos",
        "direct_reply_to",
    ]:
        assert capabilities.get(capability) is True, (capability, capabilities)
    assert connection._impl.publisher_confirms and connection._impl.basic_nack
    assert connection._impl.consumer_cancel_notify and connection._impl.exchange_exchange_bindings
    connection.close()


# -- 17. kombu's consume pattern -------------------------------------------------------------------


def test_kombu_style_nowait_consumes_each_receive_their_deliveries(amqp_url):
    """kombu (py-amqp) consumes with tags None1, None2, … and nowait=True for all but the last."""
    connection = py_amqp_connection(amqp_url)
    try:
        channel = connection.channel()
        queues = [unique(f"kombu{i}") for i in range(3)]
        for queue in queues:
            channel.queue_declare(queue)
        received = {}

        def on_message(message):
            tag = message.delivery_info["consumer_tag"]
            received.setdefault(tag, []).append((message.delivery_info["routing_key"], message.body))
            message.channel.basic_ack(message.delivery_tag)

        tags = []
        for i, queue in enumerate(queues):
            tag = channel.basic_consume(
                queue, consumer_tag=f"None{i + 1}", callback=on_message, nowait=i < len(queues) - 1
            )
            tags.append(tag)
        assert tags == ["None1", "None2", "None3"]
        for i, queue in enumerate(queues):
            for n in range(2):
                channel.basic_publish(amqp.Message(f"{i}-{n}".encode()), exchange="", routing_key=queue)
        deadline = time.monotonic() + WAIT_S
        while sum(map(len, received.values())) < 6 and time.monotonic() < deadline:
            try:
                connection.drain_events(timeout=0.2)
            except TimeoutError:
                pass
        assert received == {
            f"None{i + 1}": [(queue, f"{i}-{n}".encode()) for n in range(2)]
            for i, queue in enumerate(queues)
        }
        for tag in tags:
            channel.basic_cancel(tag)
        assert channel.is_open
    finally:
        connection.close()
