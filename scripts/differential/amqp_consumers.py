"""Seeded AMQP 0-9-1 consumer sequences sent to RabbitMQ and to Omnibus's AMQP door, side by side.

Not part of CI (RabbitMQ is heavy to install and start there); run by hand when consumers,
prefetch or acknowledgements change. Each seed opens up to three channels on one connection,
each with its own prefetch, and runs a random mix of consumes (exclusive or not, auto-ack or
not), cancels, publishes, acks (one or `multiple`), nacks and rejects (requeue or not),
recovers, channel closes, purges and deletes of the consumed queue. After each step the
connection is drained for a moment, and every delivery (which consumer, body, redelivered,
delivery tag) and every broker-sent basic.cancel is recorded, so who got what, in which
order, must match.

    # RabbitMQ from Debian on loopback (as scripts/bench-peers.sh starts it), Omnibus beside it:
    python scripts/differential/amqp_consumers.py RABBIT_PORT OMNIBUS_AMQP_PORT FIRST COUNT LENGTH [v]

Differences it shows that are known (docs/amqp.md, "Delivery, prefetch, acknowledgement"),
about one seed in seven at LENGTH 40 (2026-12-05):
- many messages requeued at once (recover, a channel closed) are shared in runs of
  `ready / eligible` here, one by one there;
- when one ack frees several consumers, or a requeue races the credit it frees, which
  consumer takes the next message can differ; so can delivery tags when two consumers share
  a channel (the interleaving on that channel);
- RabbitMQ lets a stale delivery tag of a deleted queue settle (and free credit in) a new
  queue of the same name; Omnibus settles nothing with it.
Run on a quiet machine: SETTLE_S bounds how long each step's deliveries are waited for.
"""
import random, time
import pika

from compare import compare

SETTLE_S = 0.12


def run(port, seed, length):
    r = random.Random(seed)
    params = pika.ConnectionParameters("127.0.0.1", port, heartbeat=0)
    conn = pika.BlockingConnection(params)
    out = []
    events = []
    admin = conn.channel()
    q = "cq"
    admin.queue_delete(q)
    admin.queue_declare(q)
    channels = {}
    consumers = {}  # tag -> channel index
    held = {}  # channel index -> delivery tags not yet settled (manual ack consumers)

    def settle():
        deadline = time.monotonic() + SETTLE_S
        while time.monotonic() < deadline:
            conn.process_data_events(time_limit=0.02)
        # Per consumer in arrival order; how deliveries to different consumers interleave
        # on the connection is timing, not semantics.
        got = sorted(events, key=lambda event: str(event[0]))
        events.clear()
        return got

    def channel(i):
        if i not in channels or channels[i].is_closed:
            ch = conn.channel()
            prefetch = r.choice([0, 1, 2, 3])
            ch.basic_qos(prefetch_count=prefetch)
            out.append(("qos", i, prefetch))
            ch.add_on_cancel_callback(lambda frame, i=i: events.append(("cancelled", i)))
            channels[i] = ch
            held[i] = []
        return channels[i]

    n = 0
    for step in range(length):
        op = r.choice(["consume"] * 2 + ["pub"] * 5 + ["ack"] * 3 + ["nack", "reject", "cancel",
                                                                     "recover", "close", "purge", "delete"])
        i = r.randrange(3)
        try:
            if op == "consume":
                ch = channel(i)
                auto = r.random() < 0.25
                exclusive = r.random() < 0.15
                label = f"c{step}"

                def deliver(c, m, p, b, label=label, i=i, auto=auto):
                    events.append((label, b.decode(), m.redelivered, m.delivery_tag))
                    if not auto:
                        held[i].append(m.delivery_tag)

                tag = ch.basic_consume(q, deliver, auto_ack=auto, exclusive=exclusive, consumer_tag=label)
                consumers[tag] = i
                out.append((step, op, i, auto, exclusive, settle()))
            elif op == "pub":
                for _ in range(r.randrange(1, 4)):
                    n += 1
                    admin.basic_publish("", q, f"m{n}".encode())
                out.append((step, op, n, settle()))
            elif op in ("ack", "nack", "reject"):
                if i not in channels or channels[i].is_closed or not held[i]:
                    continue
                ch = channels[i]
                tags = sorted(held[i])
                tag = r.choice(tags)
                multiple = op != "reject" and r.random() < 0.3
                requeue = r.random() < 0.6
                if op == "ack":
                    ch.basic_ack(tag, multiple=multiple)
                elif op == "nack":
                    ch.basic_nack(tag, multiple=multiple, requeue=requeue)
                else:
                    ch.basic_reject(tag, requeue=requeue)
                held[i] = [t for t in held[i] if not (t == tag or (multiple and t < tag))]
                out.append((step, op, i, tag, multiple, requeue, settle()))
            elif op == "cancel":
                mine = sorted(t for t, c in consumers.items() if c == i)
                if not mine or channels[i].is_closed:
                    continue
                tag = r.choice(mine)
                channels[i].basic_cancel(tag)
                del consumers[tag]
                out.append((step, op, tag, settle()))
            elif op == "recover":
                if i not in channels or channels[i].is_closed:
                    continue
                channels[i].basic_recover(requeue=True)
                held[i] = []
                out.append((step, op, i, settle()))
            elif op == "close":
                if i not in channels or channels[i].is_closed:
                    continue
                channels[i].close()
                for t in [t for t, c in consumers.items() if c == i]:
                    del consumers[t]
                held[i] = []
                out.append((step, op, i, settle()))
            elif op == "purge":
                time.sleep(0.05)
                d = admin.queue_purge(q)
                out.append((step, op, d.method.message_count, settle()))
            elif op == "delete":
                d = admin.queue_delete(q)
                admin.queue_declare(q)
                # The broker cancels the deleted queue's consumers (consumer_cancel_notify).
                got = settle()
                for t in list(consumers):
                    del consumers[t]
                out.append((step, op, d.method.message_count, sorted(map(str, got))))
        except pika.exceptions.ChannelClosedByBroker as e:
            out.append((step, op, "channel closed", e.reply_code, e.reply_text))
            for t in [t for t, c in consumers.items() if c == i]:
                del consumers[t]
            held[i] = []
            if admin.is_closed:
                admin = conn.channel()
    try:
        admin.queue_delete(q)
    except Exception:
        pass
    conn.close()
    return out


compare(run, peer="rabbitmq", stop_after=20)
