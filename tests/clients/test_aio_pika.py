"""aio-pika, the asyncio AMQP 0-9-1 client for Python (over aiormq and pamqp: a second,
independent implementation of the protocol beside pika), against the AMQP door: robust
connections, publisher confirms (aio-pika confirms by default), topic routing, the queue
iterator with prefetch, nack with requeue, dead-lettering with `x-death`, RPC over direct
reply-to, transactions, and a message crossing to the HTTP door."""

from __future__ import annotations

import asyncio
import base64

import aio_pika
import aio_pika.exceptions
import pamqp.commands
import pytest

from harness import http_json, unique

WAIT_S = 5.0


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, timeout=60))


async def next_message(queue: aio_pika.abc.AbstractQueue) -> aio_pika.abc.AbstractIncomingMessage:
    """The next message from a consumer on `queue`, within WAIT_S."""
    async with queue.iterator(timeout=WAIT_S) as messages:
        async for message in messages:
            return message
    raise AssertionError(f"nothing arrived on {queue.name}")


def test_a_topic_exchange_routes_confirmed_publishes_with_their_properties(amqp_url):
    async def scenario():
        connection = await aio_pika.connect_robust(amqp_url)
        async with connection:
            channel = await connection.channel()  # publisher confirms on by default
            exchange = await channel.declare_exchange(unique("events"), aio_pika.ExchangeType.TOPIC)
            eu = await channel.declare_queue(unique("eu"), durable=True)
            everything = await channel.declare_queue(unique("all"), durable=True)
            await eu.bind(exchange, "orders.*.eu")
            await everything.bind(exchange, "orders.#")
            confirmation = await exchange.publish(
                aio_pika.Message(
                    b"created",
                    content_type="text/plain",
                    correlation_id="c-1",
                    headers={"tenant": "acme", "n": 3},
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key="orders.created.eu",
            )
            # The broker confirmed it (basic.ack, not basic.nack).
            assert isinstance(confirmation, pamqp.commands.Basic.Ack), confirmation
            await exchange.publish(aio_pika.Message(b"us"), routing_key="orders.created.us")

            message = await eu.get(timeout=WAIT_S)
            assert message.body == b"created"
            assert message.content_type == "text/plain"
            assert message.correlation_id == "c-1"
            assert message.headers["tenant"] == "acme"
            assert message.headers["n"] == 3
            assert message.routing_key == "orders.created.eu"
            assert message.exchange == exchange.name
            await message.ack()
            assert await eu.get(fail=False) is None
            bodies = []
            for _ in range(2):
                got = await everything.get(timeout=WAIT_S)
                bodies.append(got.body)
                await got.ack()
            assert bodies == [b"created", b"us"]

    run(scenario())


def test_prefetch_bounds_what_a_consumer_holds_and_a_nack_requeues_redelivered(amqp_url):
    async def scenario():
        connection = await aio_pika.connect_robust(amqp_url)
        async with connection:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=2)
            queue = await channel.declare_queue(unique("work"), durable=True)
            for index in range(5):
                await channel.default_exchange.publish(
                    aio_pika.Message(str(index).encode()), routing_key=queue.name
                )
            held: list[aio_pika.abc.AbstractIncomingMessage] = []
            arrived = asyncio.Event()

            async def on_message(message):
                held.append(message)
                arrived.set()

            tag = await queue.consume(on_message)
            await asyncio.wait_for(arrived.wait(), WAIT_S)
            await asyncio.sleep(0.3)
            assert len(held) == 2, f"prefetch 2 held {len(held)}"
            first = held[0]
            await first.nack(requeue=True)
            await asyncio.sleep(0.3)
            assert len(held) == 3, "one settled, one more delivered"
            # The requeued message went back to the head of the queue: it is the next one
            # delivered, flagged redelivered.
            again = held[2]
            assert (again.body, again.redelivered) == (first.body, True)
            await queue.cancel(tag)
            for message in held[1:]:
                await message.ack()
            remaining = []
            while (message := await queue.get(fail=False, timeout=WAIT_S)) is not None:
                remaining.append(message.body)
                await message.ack()
            assert sorted(remaining + [m.body for m in held[1:]]) == [b"0", b"1", b"2", b"3", b"4"]

    run(scenario())


def test_a_reject_dead_letters_through_the_exchange_with_x_death(amqp_url):
    async def scenario():
        connection = await aio_pika.connect_robust(amqp_url)
        async with connection:
            channel = await connection.channel()
            dlx = await channel.declare_exchange(unique("dlx"), aio_pika.ExchangeType.FANOUT)
            dead = await channel.declare_queue(unique("dead"), durable=True)
            await dead.bind(dlx)
            source = await channel.declare_queue(
                unique("source"), durable=True, arguments={"x-dead-letter-exchange": dlx.name}
            )
            await channel.default_exchange.publish(aio_pika.Message(b"poison"), routing_key=source.name)
            message = await source.get(timeout=WAIT_S)
            await message.reject(requeue=False)
            got = await next_message(dead)
            assert got.body == b"poison"
            death = got.headers["x-death"][0]
            assert death["reason"] == "rejected"
            assert death["queue"] == source.name
            assert death["count"] == 1
            await got.ack()

    run(scenario())


def test_rpc_over_direct_reply_to(amqp_url):
    async def scenario():
        connection = await aio_pika.connect_robust(amqp_url)
        async with connection:
            server_channel = await connection.channel()
            requests = await server_channel.declare_queue(unique("rpc"), durable=True)

            async def serve(message: aio_pika.abc.AbstractIncomingMessage):
                async with message.process():
                    await server_channel.default_exchange.publish(
                        aio_pika.Message(message.body.upper(), correlation_id=message.correlation_id),
                        routing_key=message.reply_to,
                    )

            await requests.consume(serve)
            client_channel = await connection.channel()
            replies = asyncio.Queue()
            reply_queue = aio_pika.Queue(client_channel, "amq.rabbitmq.reply-to", durable=False,
                                         exclusive=False, auto_delete=False, arguments=None,
                                         passive=True)

            async def on_reply(message):
                await replies.put(message)

            await reply_queue.consume(on_reply, no_ack=True)
            for word in (b"ping", b"pong"):
                await client_channel.default_exchange.publish(
                    aio_pika.Message(word, reply_to="amq.rabbitmq.reply-to", correlation_id=word.decode()),
                    routing_key=requests.name,
                )
                reply = await asyncio.wait_for(replies.get(), WAIT_S)
                assert reply.body == word.upper()
                assert reply.correlation_id == word.decode()

    run(scenario())


def test_a_transaction_publishes_at_commit_only(amqp_url):
    async def scenario():
        connection = await aio_pika.connect_robust(amqp_url)
        async with connection:
            reader = await connection.channel()
            queue = await reader.declare_queue(unique("tx"), durable=True)
            channel = await connection.channel(publisher_confirms=False)
            transaction = channel.transaction()
            await transaction.select()
            await channel.default_exchange.publish(aio_pika.Message(b"dropped"), routing_key=queue.name)
            await transaction.rollback()
            assert await queue.get(fail=False) is None
            await channel.default_exchange.publish(aio_pika.Message(b"kept"), routing_key=queue.name)
            assert await queue.get(fail=False) is None
            await transaction.commit()
            message = await queue.get(timeout=WAIT_S)
            assert message.body == b"kept"
            await message.ack()

    run(scenario())


def test_a_missing_exchange_closes_only_the_channel(amqp_url):
    async def scenario():
        connection = await aio_pika.connect_robust(amqp_url)
        async with connection:
            channel = await connection.channel()
            with pytest.raises(aio_pika.exceptions.ChannelNotFoundEntity):
                await channel.get_exchange(unique("missing"), ensure=True)
            # The connection is fine: another channel works.
            other = await connection.channel()
            queue = await other.declare_queue(unique("after"), durable=True)
            await other.default_exchange.publish(aio_pika.Message(b"ok"), routing_key=queue.name)
            message = await queue.get(timeout=WAIT_S)
            assert message.body == b"ok"
            await message.ack()

    run(scenario())


def test_a_message_published_with_aio_pika_is_read_over_http(amqp_url, http):
    async def scenario():
        connection = await aio_pika.connect_robust(amqp_url)
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(unique("cross"), durable=True)
            await channel.default_exchange.publish(aio_pika.Message(b"to-http"), routing_key=queue.name)
            return queue.name

    name = run(scenario())
    answer = http_json("POST", f"{http}/v1/queues/{name}/receive", {"worker": "w", "wait_ms": 5000})
    [message] = answer["messages"]
    value = message.get("value")
    if value is None:
        value = base64.b64decode(message["value_base64"]).decode()
    assert value == "to-http"
