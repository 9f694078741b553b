"""Seeded JetStream consumer sequences sent to nats-server and to Omnibus's NATS door, side by side.

Not part of CI (timing-sensitive: a no_wait pull races the server's own bookkeeping); run by
hand when the JetStream door or the engine's consumers change. Each seed makes one stream
(limits retention, sometimes max_msgs 5) and one or two durable pull consumers (explicit ack,
max_deliver -1, 2 or 3), then runs a random mix of publishes, no_wait pulls, +ACK / -NAK /
+TERM / +WPI on delivered messages, CONSUMER.INFO (num_pending, num_ack_pending,
num_redelivered, delivered and ack floor stream sequences) and STREAM.INFO; every answer must
match.

    nats-server -p 14299 -js -sd /tmp/js-store &   # Debian's nats-server, JetStream on
    FILTER_P=0 python scripts/differential/jetstream_sequences.py nats://127.0.0.1:14299 nats://127.0.0.1:4222 FIRST COUNT LENGTH [v]

Known differences (docs/nats.md): with filtered consumers (FILTER_P > 0) num_pending is an upper
bound here; nats-server redelivers nacked messages in the order they were nacked, Omnibus in
stream order; after max_deliver, or after the limits removed messages that were never
delivered, nats-server's ack floor stays where its last ack left it.
"""
import asyncio, json, random, time
import nats

from compare import compare_async

STREAM = "FZ"
import os
FILTER_P = float(os.environ.get("FILTER_P", "0.3"))

async def run_seed(url, seed, length):
    r = random.Random(seed)
    nc = await nats.connect(url)
    out = []
    try:
        async def api(call, body=None):
            data = b"" if body is None else json.dumps(body).encode()
            reply = await nc.request(f"$JS.API.{call}", data, timeout=5)
            return json.loads(reply.data)
        await api(f"STREAM.DELETE.{STREAM}")
        retention = "limits"
        max_msgs = r.choice([-1, -1, 5])
        discard = "old"
        cfg = {"name": STREAM, "subjects": ["fz.>"], "retention": retention, "max_msgs": max_msgs, "discard": discard}
        out.append(("create", e(await api(f"STREAM.CREATE.{STREAM}", cfg))))
        consumers = ["c1", "c2"] if retention != "workqueue" else ["c1"]
        for c in consumers:
            ccfg = {"durable_name": c, "ack_policy": "explicit", "max_deliver": r.choice([-1, 2, 3]), "ack_wait": 30_000_000_000}
            if r.random() < FILTER_P and retention != "workqueue":
                ccfg["filter_subject"] = "fz.a"
            out.append(("consumer", c, e(await api(f"CONSUMER.CREATE.{STREAM}.{c}", {"stream_name": STREAM, "config": ccfg}))))
        js = nc.jetstream()
        held = {c: [] for c in consumers}  # outstanding deliveries: (stream seq, reply subject)
        n = 0
        for step in range(length):
            op = r.choice(["pub"] * 4 + ["fetch"] * 3 + ["ack", "nak", "term", "wpi", "info", "sinfo"])
            c = r.choice(consumers)
            if op == "pub":
                n += 1
                subj = r.choice(["fz.a", "fz.b"])
                try:
                    ack = await js.publish(subj, f"m{n}".encode())
                    out.append((step, "pub", ack.seq))
                except Exception as ex:
                    out.append((step, "pub", type(ex).__name__, str(ex)[:60]))
            elif op == "fetch":
                batch = r.randrange(1, 4)
                inbox = nc.new_inbox()
                sub = await nc.subscribe(inbox)
                await nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.{STREAM}.{c}", json.dumps({"batch": batch, "no_wait": True}).encode(), reply=inbox)
                got = []
                deadline = time.monotonic() + 1.0
                while (left := deadline - time.monotonic()) > 0:
                    try:
                        m = await sub.next_msg(timeout=left)
                    except nats.errors.TimeoutError:
                        got.append("timeout"); break
                    if m.headers and m.headers.get("Status"):
                        got.append(("status", m.headers.get("Status")))
                        break
                    tokens = m.reply.split(".")
                    delivered, sseq = (int(tokens[4]), int(tokens[5])) if len(tokens) == 9 else (int(tokens[6]), int(tokens[7]))
                    got.append((m.data.decode(), delivered, sseq))
                    held[c].append((sseq, m.reply))
                    if len(got) == batch:
                        break
                await sub.unsubscribe()
                out.append((step, "fetch", c, batch, got))
            elif op in ("ack", "nak", "term", "wpi"):
                if not held[c]:
                    continue
                held[c].sort()
                i = r.randrange(len(held[c]))
                sseq, reply = held[c][i]
                word = {"ack": b"+ACK", "nak": b"-NAK", "term": b"+TERM", "wpi": b"+WPI"}[op]
                await nc.publish(reply, word)
                await nc.flush()
                if op != "wpi":
                    held[c].pop(i)
                out.append((step, op, c, sseq))
            elif op == "info":
                i = await api(f"CONSUMER.INFO.{STREAM}.{c}")
                if "error" in i:
                    out.append((step, "cinfo", c, e(i)))
                else:
                    out.append((step, "cinfo", c, i["num_pending"], i["num_ack_pending"], i["num_redelivered"],
                                i["delivered"]["stream_seq"], i["ack_floor"]["stream_seq"]))
            elif op == "sinfo":
                i = await api(f"STREAM.INFO.{STREAM}")
                st = i.get("state", {})
                out.append((step, "sinfo", st.get("messages"), st.get("first_seq"), st.get("last_seq")))
            elif op == "del":
                seq = r.randrange(1, n + 2)
                out.append((step, "del", seq, e(await api(f"STREAM.MSG.DELETE.{STREAM}", {"seq": seq}))))
        return out
    finally:
        await nc.close()

def e(answer):
    if "error" in answer:
        return ("error", answer["error"].get("err_code"))
    return ("ok", answer.get("success"))

asyncio.run(compare_async(run_seed, peer="nats-server"))
