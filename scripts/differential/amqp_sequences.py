"""Seeded AMQP 0-9-1 sequences sent to RabbitMQ and to Omnibus's AMQP door, side by side.

Not part of CI (RabbitMQ is heavy to install and start there); run by hand when the AMQP door or
the queues change. Each seed declares one queue (sometimes with x-max-length, x-overflow
reject-publish, or x-max-priority), then runs a random mix of publishes (with confirms, and
priorities on a priority queue), basic.get with and without ack, ack/nack/reject (multiple,
requeue), basic.recover, passive declares (message counts), purges, channel re-opens (requeue
on close) and short consumers with a prefetch; every answer must match.

    # RabbitMQ from Debian on loopback (as scripts/bench-peers.sh starts it), Omnibus beside it:
    python scripts/differential/amqp_sequences.py RABBIT_PORT OMNIBUS_AMQP_PORT FIRST COUNT LENGTH [v]

Differences it shows that are known and kept (docs/amqp.md): drop-head on a priority queue
drops the oldest message here, RabbitMQ the highest-priority one; the order of redeliveries
after several requeues can differ. RabbitMQ applies a reject or a channel close a moment
after answering, so the script waits a little before it counts.
"""
import random, time
import pika

from compare import compare

def run(port, seed, length):
    r = random.Random(seed)
    conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port, heartbeat=0))
    out = []
    ch = conn.channel()
    q = "fq"
    try: ch.queue_delete(q)
    except Exception: ch = conn.channel()
    args = {}
    if r.random() < 0.4:
        args["x-max-length"] = r.randrange(1, 5)
        if r.random() < 0.5:
            args["x-overflow"] = "reject-publish"
    prio = r.random() < 0.4
    if prio and "x-max-length" in args:
        prio = False
    if prio:
        args["x-max-priority"] = 5
    ch.queue_declare(q, arguments=args)
    r.random()
    ch.confirm_delivery()
    confirms = True
    out.append(("declare", args, confirms))
    held = []
    n = 0
    for step in range(length):
        op = r.choice(["pub"] * 4 + ["get"] * 3 + ["getna", "ack", "nack", "reject", "recover", "count", "purge", "reopen", "consume"])
        try:
            if op == "pub":
                n += 1
                priority = r.randrange(0, 7)
                props = pika.BasicProperties(priority=priority) if prio else None
                try:
                    ch.basic_publish("", q, f"m{n}".encode(), properties=props)
                    out.append((step, "pub", n, "ok", priority if prio else None))
                except pika.exceptions.NackError:
                    out.append((step, "pub", n, "nacked"))
            elif op in ("get", "getna"):
                m, props, body = ch.basic_get(q, auto_ack=(op == "getna"))
                if m is None:
                    out.append((step, op, None))
                else:
                    out.append((step, op, body.decode(), m.delivery_tag, m.redelivered, m.message_count))
                    if op == "get":
                        held.append(m.delivery_tag)
            elif op in ("ack", "nack", "reject"):
                if not held:
                    continue
                held.sort()
                tag = r.choice(held)
                multiple = op != "reject" and r.random() < 0.3
                requeue = r.random() < 0.6
                if op == "ack":
                    ch.basic_ack(tag, multiple=multiple)
                elif op == "nack":
                    ch.basic_nack(tag, multiple=multiple, requeue=requeue)
                else:
                    ch.basic_reject(tag, requeue=requeue)
                held = [t for t in held if not (t == tag or (multiple and t < tag))]
                out.append((step, op, tag, multiple, requeue))
            elif op == "consume":
                c2 = conn.channel()
                k = r.randrange(1, 4)
                c2.basic_qos(prefetch_count=k)
                got = []
                tag = c2.basic_consume(q, lambda c, m, p, b: got.append((b.decode(), m.delivery_tag, m.redelivered)))
                t0 = time.monotonic()
                while time.monotonic() - t0 < 0.15:
                    conn.process_data_events(time_limit=0.02)
                acks = r.randrange(0, 4)
                for body, dtag, _ in got[:acks]:
                    c2.basic_ack(dtag)
                t0 = time.monotonic()
                while time.monotonic() - t0 < 0.3:
                    conn.process_data_events(time_limit=0.02)
                c2.basic_cancel(tag)
                c2.close()
                time.sleep(0.1)
                out.append((step, "consume", k, got, acks))
            elif op == "recover":
                ch.basic_recover(requeue=True)
                time.sleep(0.05)
                held = []
                out.append((step, "recover"))
            elif op == "count":
                time.sleep(0.05)
                d = ch.queue_declare(q, passive=True)
                out.append((step, "count", d.method.message_count, d.method.consumer_count))
            elif op == "purge":
                time.sleep(0.05)
                d = ch.queue_purge(q)
                out.append((step, "purge", d.method.message_count))
            elif op == "reopen":
                ch.close()
                time.sleep(0.05)
                ch = conn.channel()
                if confirms:
                    ch.confirm_delivery()
                held = []
                out.append((step, "reopen"))
        except pika.exceptions.ChannelClosedByBroker as e:
            out.append((step, op, "channel closed", e.reply_code, e.reply_text[:50]))
            ch = conn.channel()
            if confirms:
                ch.confirm_delivery()
            held = []
    try: ch.queue_delete(q)
    except Exception: pass
    conn.close()
    return out

compare(run, peer="rabbitmq")
