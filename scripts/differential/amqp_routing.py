"""Seeded AMQP 0-9-1 routing sequences sent to RabbitMQ and to Omnibus's AMQP door, side by side.

Not part of CI (RabbitMQ is heavy to install and start there); run by hand when exchanges,
bindings or the AMQP door's errors change. Each seed builds a random topology — direct,
fanout, topic and headers exchanges (some with an alternate exchange, some internal),
queues, queue and exchange-to-exchange bindings with topic patterns and header matches —
then runs a random mix of publishes (mandatory or not, with headers), unbinds, deletes,
redeclares (some inequivalent), binds to what does not exist and publishes to missing
exchanges. After every publish each queue is drained with basic.get, so where a message
landed is compared, and every channel close (code and text) and basic.return must match.

    # RabbitMQ from Debian on loopback (as scripts/bench-peers.sh starts it), Omnibus beside it:
    python scripts/differential/amqp_routing.py RABBIT_PORT OMNIBUS_AMQP_PORT FIRST COUNT LENGTH [v]
"""
import random
import pika

from compare import compare

WORDS = ["a", "b", "c"]
TYPES = ["direct", "fanout", "topic", "headers"]
MATCH = ["all", "any", "all-with-x", "any-with-x"]


def key(r):
    n = r.choice([0, 1, 1, 2, 2, 3])
    return ".".join(r.choice(WORDS + [""] if r.random() < 0.1 else WORDS) for _ in range(n))


def pattern(r):
    n = r.choice([0, 1, 1, 2, 2, 3])
    return ".".join(r.choice(WORDS + ["*", "#"]) for _ in range(n))


def headers(r):
    h = {}
    for name in ("h1", "h2", "x-h"):
        if r.random() < 0.5:
            h[name] = r.choice(["v", "w", 1, 2])
    return h


def run(port, seed, length):
    r = random.Random(seed)
    conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port, heartbeat=0))
    out = []
    ch = conn.channel()
    exchanges = [f"rx{i}" for i in range(4)]
    queues = [f"rq{i}" for i in range(4)]
    # Clean what an earlier seed left.
    for e in exchanges:
        ch.exchange_delete(e)
    for q in queues:
        ch.queue_delete(q)
    kinds = {}
    for e in exchanges:
        kinds[e] = r.choice(TYPES)
        args = {}
        if r.random() < 0.3:
            args["alternate-exchange"] = r.choice(exchanges)
        internal = r.random() < 0.1
        ch.exchange_declare(e, kinds[e], durable=False, internal=internal, arguments=args)
        out.append(("exchange", e, kinds[e], args, internal))
    for q in queues:
        ch.queue_declare(q, durable=False)
    ch.confirm_delivery()

    def reopen():
        nonlocal ch
        ch = conn.channel()
        ch.confirm_delivery()

    n = 0
    for step in range(length):
        op = r.choice(["bind"] * 4 + ["pub"] * 6 + ["unbind", "ebind", "redeclare", "delete_x",
                                                   "delete_q", "declare_q", "bad_bind", "bad_pub"])
        try:
            if op in ("bind", "unbind", "ebind"):
                src = r.choice(exchanges + ["amq.topic", "amq.direct", "amq.fanout", "amq.headers"])
                dest = r.choice(exchanges if op == "ebind" else queues)
                kind = kinds.get(src) or src.split(".")[1]
                rk = pattern(r) if kind == "topic" else key(r)
                args = None
                if kind == "headers":
                    args = headers(r)
                    if r.random() < 0.8:
                        args["x-match"] = r.choice(MATCH)
                if op == "ebind":
                    if r.random() < 0.2:
                        ch.exchange_unbind(dest, src, rk, arguments=args)
                    else:
                        ch.exchange_bind(dest, src, rk, arguments=args)
                elif op == "bind":
                    ch.queue_bind(dest, src, rk, arguments=args)
                else:
                    ch.queue_unbind(dest, src, rk, arguments=args)
                out.append((step, op, src, dest, rk, args))
            elif op == "pub":
                n += 1
                ex = r.choice(exchanges + ["", "amq.topic", "amq.fanout", "amq.headers"])
                rk = r.choice(queues) if ex == "" and r.random() < 0.7 else key(r)
                props = pika.BasicProperties(headers=headers(r) or None)
                mandatory = r.random() < 0.5
                try:
                    ch.basic_publish(ex, rk, f"m{n}".encode(), properties=props, mandatory=mandatory)
                    result = "ok"
                except pika.exceptions.UnroutableError:
                    result = "returned"
                except pika.exceptions.NackError:
                    result = "nacked"
                landed = []
                for q in queues:
                    while True:
                        m, _, body = ch.basic_get(q, auto_ack=True)
                        if m is None:
                            break
                        landed.append((q, body.decode(), m.exchange, m.routing_key))
                out.append((step, "pub", ex, rk, props.headers, mandatory, result, landed))
            elif op == "redeclare":
                e = r.choice(exchanges)
                kind = kinds[e] if r.random() < 0.6 else r.choice(TYPES)
                ch.exchange_declare(e, kind, durable=False)
                kinds[e] = kind
                out.append((step, op, e, kind))
            elif op == "delete_x":
                e = r.choice(exchanges)
                ch.exchange_delete(e, if_unused=r.random() < 0.3)
                kinds[e] = r.choice(TYPES)
                ch.exchange_declare(e, kinds[e], durable=False)
                out.append((step, op, e, kinds[e]))
            elif op == "delete_q":
                q = r.choice(queues)
                d = ch.queue_delete(q)
                out.append((step, op, q, d.method.message_count))
            elif op == "declare_q":
                q = r.choice(queues)
                d = ch.queue_declare(q, durable=False)
                out.append((step, op, q, d.method.message_count))
            elif op == "bad_bind":
                which = r.randrange(3)
                if which == 0:
                    ch.queue_bind("nosuchq", r.choice(exchanges), "a")
                elif which == 1:
                    ch.queue_bind(r.choice(queues), "nosuchx", "a")
                else:
                    ch.exchange_bind(r.choice(exchanges), "nosuchx", "a")
                out.append((step, op, which, "ok"))
            elif op == "bad_pub":
                ch.basic_publish("nosuchx", "a", b"x")
                out.append((step, op, "ok"))
        except pika.exceptions.ChannelClosedByBroker as e:
            out.append((step, op, "channel closed", e.reply_code, e.reply_text))
            reopen()
    for e in exchanges:
        ch.exchange_delete(e)
    for q in queues:
        ch.queue_delete(q)
    conn.close()
    return out


compare(run, peer="rabbitmq")
