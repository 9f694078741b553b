"""pika against the AMQP door: what RabbitMQ refuses and what it lets pass, in its words.

Every expected answer here was read from RabbitMQ 3.10 (Debian's) answering the same calls
(scripts/differential/amqp_routing.py and its probes, 2026-12-05): queue arguments checked
in RabbitMQ's order and Erlang-term wording, the flags a quorum queue refuses, `x-match`
checked on headers bindings, unbinding that is idempotent, the default exchange refused
everywhere, the empty routing key as no words for topic patterns, and `-with-x` header
matches."""

from __future__ import annotations

import pika
import pika.exceptions
import pytest

from harness import unique
from pika_support import assert_empty, connect, get_body

VHOST = "in vhost '/'"


def refusal(channel_call):
    """(code, text) of the channel exception `channel_call` meets, or None."""
    try:
        channel_call()
    except pika.exceptions.ChannelClosedByBroker as error:
        return error.reply_code, error.reply_text
    return None


ARGUMENT_CASES = [
    ({"x-message-ttl": -1}, "invalid arg 'x-message-ttl' for queue '{q}' {v}: {{value_negative,-1}}"),
    ({"x-message-ttl": "x"}, "invalid arg 'x-message-ttl' for queue '{q}' {v}: \"expected integer, got longstr\""),
    ({"x-message-ttl": 2**40}, "invalid arg 'x-message-ttl' for queue '{q}' {v}: {{value_too_large,1099511627776}}"),
    ({"x-expires": 0}, "invalid arg 'x-expires' for queue '{q}' {v}: {{value_zero,0}}"),
    ({"x-max-length": True}, "invalid arg 'x-max-length' for queue '{q}' {v}: \"expected integer, got bool\""),
    ({"x-max-priority": 256}, "invalid arg 'x-max-priority' for queue '{q}' {v}: {{max_value_exceeded,256}}"),
    ({"x-overflow": 1}, "invalid arg 'x-overflow' for queue '{q}' {v}: {{unacceptable_type,signedint}}"),
    ({"x-overflow": "lazy"}, "invalid arg 'x-overflow' for queue '{q}' {v}: invalid_overflow"),
    ({"x-dead-letter-exchange": 5}, "invalid type 'signedint' for arg 'x-dead-letter-exchange' in queue '{q}' {v}"),
    ({"x-dead-letter-routing-key": "k"}, "invalid arg 'x-dead-letter-routing-key' for queue '{q}' {v}: routing_key_but_no_dlx_defined"),
    ({"x-queue-type": "x"}, "invalid arg 'x-queue-type' for queue '{q}' {v}: \"unsupported queue type 'x'\""),
    ({"x-queue-mode": "x"}, "invalid arg 'x-queue-mode' for queue '{q}' {v}: \"unsupported queue mode 'x'\""),
    ({"x-single-active-consumer": "yes"}, "invalid arg 'x-single-active-consumer' for queue '{q}' {v}: {{unacceptable_type,longstr}}"),
    ({"x-max-age": "1D"}, "invalid arg 'x-max-age' for queue '{q}' {v} of queue type rabbit_classic_queue"),
    ({"x-queue-type": "quorum", "x-max-priority": 5}, "invalid arg 'x-max-priority' for queue '{q}' {v} of queue type rabbit_quorum_queue"),
    # RabbitMQ's order: the expiry before the length, the dead-letter exchange's type first.
    ({"x-max-length": -1, "x-expires": 0}, "invalid arg 'x-expires' for queue '{q}' {v}: {{value_zero,0}}"),
    ({"x-expires": 0, "x-dead-letter-exchange": 1}, "invalid type 'signedint' for arg 'x-dead-letter-exchange' in queue '{q}' {v}"),
]


@pytest.mark.parametrize("arguments,text", ARGUMENT_CASES)
def test_queue_arguments_are_refused_as_rabbitmq_refuses_them(amqp_url, arguments, text):
    connection = connect(amqp_url)
    channel = connection.channel()
    queue = unique("args")
    got = refusal(lambda: channel.queue_declare(queue, durable=True, arguments=arguments))
    assert got == (406, "PRECONDITION_FAILED - " + text.format(q=queue, v=VHOST))
    connection.close()


def test_arguments_rabbitmq_takes_pass(amqp_url):
    connection = connect(amqp_url)
    channel = connection.channel()
    for arguments in [
        {"x-max-priority": 255},
        {"x-message-ttl": 0},
        {"x-queue-mode": "lazy"},
        {"x-overflow": "reject-publish-dlx"},
        {"x-unknown": "whatever"},
        {"x-queue-type": "quorum", "x-delivery-limit": 5},
    ]:
        queue = unique("fine")
        channel.queue_declare(queue, durable=True, arguments=arguments)
        channel.queue_delete(queue)
    connection.close()


@pytest.mark.parametrize(
    "flags,prop",
    [
        ({"durable": False}, "non-durable"),
        ({"durable": True, "exclusive": True}, "exclusive-owner"),
        ({"durable": False, "exclusive": True, "auto_delete": True}, "auto-delete"),
    ],
)
def test_a_quorum_queue_refuses_what_it_cannot_be(amqp_url, flags, prop):
    connection = connect(amqp_url)
    channel = connection.channel()
    queue = unique("quorum")
    got = refusal(lambda: channel.queue_declare(queue, arguments={"x-queue-type": "quorum"}, **flags))
    assert got == (406, f"PRECONDITION_FAILED - invalid property '{prop}' for queue '{queue}' {VHOST}")
    connection.close()


def test_a_lone_value_in_an_inequivalent_redeclaration_is_shown_with_its_type(amqp_url):
    connection = connect(amqp_url)
    channel = connection.channel()
    queue = unique("typed")
    channel.queue_declare(queue, durable=True, arguments={"x-max-length": 10})
    got = refusal(lambda: channel.queue_declare(queue, durable=True))
    assert got == (
        406,
        f"PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue '{queue}' {VHOST}: "
        "received none but current is the value '10' of type 'signedint'",
    )
    channel = connection.channel()
    other = unique("typed")
    channel.queue_declare(other, durable=True)
    # A type left out is classic: declaring it classic is no difference.
    channel.queue_declare(other, durable=True, arguments={"x-queue-type": "classic"})
    got = refusal(lambda: channel.queue_declare(other, durable=True, arguments={"x-queue-type": "quorum"}))
    assert got == (
        406,
        f"PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue '{other}' {VHOST}: "
        "received the value 'quorum' of type 'longstr' but current is none",
    )
    channel = connection.channel()
    channel.queue_delete(queue)
    channel.queue_delete(other)
    connection.close()


def test_unbinding_is_idempotent_and_binding_names_the_missing_exchange_first(amqp_url):
    connection = connect(amqp_url)
    channel = connection.channel()
    queue, exchange = unique("unbind"), unique("unbind-x")
    channel.queue_declare(queue)
    channel.exchange_declare(exchange, "direct")
    # Nothing to remove, or an end that does not exist: RabbitMQ answers unbind-ok.
    channel.queue_unbind(queue, exchange, "never-bound")
    channel.queue_unbind("no-such-queue", exchange, "k")
    channel.queue_unbind(queue, "no-such-exchange", "k")
    channel.exchange_unbind(exchange, "no-such-exchange", "k")
    channel.exchange_unbind("no-such-exchange", exchange, "k")
    got = refusal(lambda: channel.queue_bind("no-such-queue", "no-such-exchange", "k"))
    assert got == (404, f"NOT_FOUND - no exchange 'no-such-exchange' {VHOST}")
    channel = connection.channel()
    got = refusal(lambda: channel.queue_unbind(queue, "", queue))
    assert got == (403, "ACCESS_REFUSED - operation not permitted on the default exchange")
    channel = connection.channel()
    channel.queue_delete(queue)
    channel.exchange_delete(exchange)
    connection.close()


def test_the_default_and_system_exchanges_are_refused_in_rabbitmqs_words(amqp_url):
    connection = connect(amqp_url)
    channel = connection.channel()
    default = (403, "ACCESS_REFUSED - operation not permitted on the default exchange")
    assert refusal(lambda: channel.exchange_declare("", "direct")) == default
    channel = connection.channel()
    assert refusal(lambda: channel.exchange_declare("", "direct", passive=True)) == default
    channel = connection.channel()
    assert refusal(lambda: channel.exchange_delete("")) == default
    channel = connection.channel()
    assert refusal(lambda: channel.exchange_delete("amq.topic")) == (
        403,
        f"ACCESS_REFUSED - deletion of system exchange 'amq.topic' {VHOST} not allowed",
    )
    channel = connection.channel()
    queue = "amq.mine"
    assert refusal(lambda: channel.queue_declare(queue)) == (
        403,
        f"ACCESS_REFUSED - queue name '{queue}' contains reserved prefix 'amq.*'",
    )
    channel = connection.channel()
    exchange = unique("alt")
    assert refusal(lambda: channel.exchange_declare(exchange, "direct", arguments={"alternate-exchange": 5})) == (
        406,
        f"PRECONDITION_FAILED - invalid type 'signedint' for arg 'alternate-exchange' in exchange '{exchange}' {VHOST}",
    )
    connection.close()


def test_x_match_is_checked_on_headers_bindings(amqp_url):
    connection = connect(amqp_url)
    channel = connection.channel()
    queue = unique("xmatch")
    channel.queue_declare(queue)
    expected = (
        406,
        "PRECONDITION_FAILED - Invalid x-match field value <<\"ALL\">>; expected all, any, all-with-x, or any-with-x",
    )
    assert refusal(lambda: channel.queue_bind(queue, "amq.headers", "", arguments={"x-match": "ALL"})) == expected
    channel = connection.channel()
    assert refusal(lambda: channel.queue_bind(queue, "amq.headers", "", arguments={"x-match": 1})) == (
        406,
        "PRECONDITION_FAILED - Invalid x-match field type signedint (value 1); expected longstr",
    )
    channel = connection.channel()
    # Other exchange types ignore a binding's arguments.
    channel.queue_bind(queue, "amq.direct", queue, arguments={"x-match": "ALL"})
    channel.queue_delete(queue)
    connection.close()


def test_with_x_header_matches_compare_x_headers_and_the_empty_key_is_no_words(amqp_url):
    connection = connect(amqp_url)
    channel = connection.channel()
    exchange = unique("hx")
    channel.exchange_declare(exchange, "headers")
    plain, with_x = unique("plain"), unique("with-x")
    for queue, matching in [(plain, "all"), (with_x, "all-with-x")]:
        channel.queue_declare(queue)
        channel.queue_bind(queue, exchange, "", arguments={"x-match": matching, "x-tenant": "a", "kind": "k"})
    channel.basic_publish(exchange, "", b"one", pika.BasicProperties(headers={"kind": "k"}))
    channel.basic_publish(exchange, "", b"two", pika.BasicProperties(headers={"kind": "k", "x-tenant": "a"}))
    assert [get_body(channel, plain), get_body(channel, plain)] == [b"one", b"two"]
    assert get_body(channel, with_x) == b"two"
    assert_empty(channel, with_x)

    topic = unique("tx")
    channel.exchange_declare(topic, "topic")
    star, empty = unique("star"), unique("empty")
    channel.queue_declare(star)
    channel.queue_declare(empty)
    channel.queue_bind(star, topic, "*")
    channel.queue_bind(empty, topic, "")
    channel.basic_publish(topic, "", b"no words")
    channel.basic_publish(topic, "a", b"one word")
    assert get_body(channel, star) == b"one word"
    assert_empty(channel, star)
    assert get_body(channel, empty) == b"no words"
    assert_empty(channel, empty)
    for queue in [plain, with_x, star, empty]:
        channel.queue_delete(queue)
    channel.exchange_delete(exchange)
    channel.exchange_delete(topic)
    connection.close()


def test_an_exclusive_queue_is_locked_to_other_connections_in_rabbitmqs_words(amqp_url):
    owner, other = connect(amqp_url), connect(amqp_url)
    queue = unique("locked")
    owner.channel().queue_declare(queue, exclusive=True)
    channel = other.channel()
    got = refusal(lambda: channel.basic_get(queue))
    assert got == (
        405,
        f"RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{queue}' {VHOST}. It could "
        "be originally declared on another connection or the exclusive property value does not match "
        "that of the original declaration.",
    )
    owner.close()
    other.close()


def test_recover_without_requeue_is_not_implemented_as_in_rabbitmq(amqp_url):
    connection = connect(amqp_url)
    channel = connection.channel()
    try:
        channel.basic_recover(requeue=False)
    except pika.exceptions.ConnectionClosedByBroker as error:
        assert (error.reply_code, error.reply_text) == (540, "NOT_IMPLEMENTED - requeue=false")
    else:
        raise AssertionError("recover(requeue=False) was accepted")
