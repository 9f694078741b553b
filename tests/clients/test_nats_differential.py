"""The NATS door side by side with nats-server from Debian (JetStream on, a temporary store):
the same JetStream API calls and pull requests go to both through nats-py, and what a client
acts on must be the same — error codes, the stream's subjects and limits, a pull's messages
and its status replies. Fields that hold times, ids or server details are set aside. And the
same raw protocol lines, as someone typing into telnet sends them, must get the same lines
back (`+OK`s counted, as their place among a connection's own messages may differ).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import nats
import pytest

READY_TIMEOUT_S = 15.0

# The JetStream API calls, in order, on a fresh server each: (subject, request body).
CALLS = [
    ("STREAM.CREATE.APP", {"name": "APP", "subjects": ["app.>"]}),
    # A service ensuring its stream at each start: the same config again.
    ("STREAM.CREATE.APP", {"name": "APP", "subjects": ["app.>"]}),
    ("STREAM.CREATE.APP", {"name": "APP", "subjects": ["other.>"]}),
    ("STREAM.CREATE.MORE", {"name": "MORE", "subjects": ["app.eu"]}),
    ("STREAM.CREATE.BAD", {"name": "OTHER", "subjects": ["x"]}),
    ("STREAM.CREATE.LIMITS", {"name": "LIMITS", "subjects": ["limits"], "max_msgs": 10,
                              "max_age": 3_600_000_000_000, "retention": "workqueue"}),
    ("STREAM.UPDATE.APP", {"name": "APP", "subjects": ["app.>", "returns.>"]}),
    ("STREAM.UPDATE.APP", {"name": "APP", "subjects": ["app.>", "limits"]}),
    ("STREAM.UPDATE.NOPE", {"name": "NOPE", "subjects": ["n"]}),
    ("STREAM.INFO.NOPE", None),
    ("CONSUMER.CREATE.APP.d1", {"stream_name": "APP",
                                "config": {"durable_name": "d1", "ack_policy": "explicit"}}),
    ("CONSUMER.CREATE.APP.d1", {"stream_name": "APP",
                                "config": {"durable_name": "d1", "ack_policy": "explicit"}}),
    ("CONSUMER.CREATE.APP.typo", {"stream_name": "APP", "config": {
        "durable_name": "typo", "ack_policy": "explicit", "filter_subject": "invoices.>"}}),
    ("CONSUMER.CREATE.APP.from", {"stream_name": "APP", "config": {
        "durable_name": "from", "ack_policy": "explicit", "deliver_policy": "by_start_sequence"}}),
    ("CONSUMER.CREATE.NOPE.d", {"stream_name": "NOPE",
                                "config": {"durable_name": "d", "ack_policy": "explicit"}}),
    ("CONSUMER.INFO.APP.nope", None),
    ("CONSUMER.DELETE.APP.nope", None),
    ("STREAM.PURGE.APP", None),
    ("STREAM.DELETE.NOPE", None),
]

# Pull requests on consumer d1 of APP after three messages: (request body, seconds to listen).
PULLS = [
    ({"batch": 2}, 0.5),
    ({"batch": 5, "no_wait": True}, 0.5),
    ({"batch": 5, "no_wait": True}, 0.5),
    ({"batch": 1, "expires": 200_000_000}, 0.6),
    # no_wait with expires waits like any request (nats-py's fetch sends it).
    ({"batch": 5, "no_wait": True, "expires": 200_000_000}, 0.6),
    (None, 0.5),
    ({"batch": 2, "max_bytes": 1}, 0.5),
]


# Raw sessions (after the server's INFO), each ending in PING or in an error that closes.
RAW_SESSIONS = [
    # Verbose unless CONNECT turns it off; no CONNECT at all is allowed without auth.
    b"SUB foo 1\r\nPUB foo 2\r\nhi\r\nPING\r\n",
    b"CONNECT {}\r\nSUB foo 1\r\nPUB foo 2\r\nhi\r\nUNSUB 1\r\nPUB foo 2\r\nho\r\nPING\r\n",
    b"CONNECT {\"pedantic\":true}\r\nSUB foo 1\r\nPUB foo 2\r\nhi\r\nPING\r\n",
    b"CONNECT {\"verbose\":false}\r\nSUB foo 1\r\nPUB foo 2\r\nhi\r\nPING\r\n",
    # Auto-unsubscribe after one message; an unknown sid; a duplicate sid.
    b"CONNECT {}\r\nSUB x 5\r\nUNSUB 5 1\r\nPUB x 1\r\na\r\nPUB x 1\r\nb\r\nPING\r\n",
    b"CONNECT {}\r\nUNSUB 99\r\nSUB a 1\r\nSUB a 1\r\nPUB a 1\r\nx\r\nPING\r\n",
    # Lower case, extra spaces, a queue group.
    b"connect {}\r\nsub x  q  5\r\npub x  1\r\na\r\nping\r\n",
    b"CONNECT {\"verbose\":true,\"echo\":false}\r\nSUB e 1\r\nPUB e 1\r\nx\r\nPING\r\n",
    b"CONNECT {\"headers\":true}\r\nSUB h 1\r\nHPUB h 18 20\r\nNATS/1.0\r\nA: b\r\n\r\nhi\r\nPING\r\n",
    b"CONNECT {}\r\nSUB a..b 1\r\nSUB ok 2\r\nPONG\r\nPING\r\n",
    b"CONNECT {}\r\nFOO\r\nPING\r\n",
    b"CONNECT {}\r\nPUB x 3\r\nabcdef\r\nPING\r\n",
    # Messages routed before an UNSUB are written before it takes effect.
    b"CONNECT {\"verbose\":false}\r\nSUB u 1\r\nPUB u 1\r\na\r\nUNSUB 1\r\nPUB u 1\r\nb\r\nPING\r\n",
    # `*` and `>` inside a longer token are literal characters; a reply may be a wildcard.
    b"CONNECT {\"verbose\":false}\r\nSUB a.b* 1\r\nSUB a.* 2\r\nPUB a.b* 1\r\nx\r\nPUB a.bc 1\r\ny\r\nPING\r\n",
    b"CONNECT {\"verbose\":false}\r\nSUB >x.y 1\r\nPUB >x.y 1\r\nz\r\nPING\r\n",
    b"CONNECT {\"verbose\":false}\r\nSUB r 1\r\nPUB r inbox.* 1\r\nq\r\nPUB r inbox.> 1\r\nq\r\nPING\r\n",
]


def raw_session(url: str, data: bytes) -> tuple[int, list[bytes]]:
    """Sends `data` after the INFO line; returns how many `+OK` came back and the other
    lines in order (`<closed>` where the server closed)."""
    host, port = url.removeprefix("nats://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        received = b""
        while not received.endswith(b"\r\n"):
            received += connection.recv(4096)
        connection.sendall(data)
        received = b""
        deadline = time.monotonic() + 5
        while not received.endswith(b"PONG\r\n") and time.monotonic() < deadline:
            chunk = connection.recv(4096)
            if not chunk:
                received += b"<closed>"
                break
            received += chunk
    lines = received.split(b"\r\n")
    return lines.count(b"+OK"), [line for line in lines if line and line != b"+OK"]


def essentials(answer: dict) -> dict:
    """What a client acts on in an API answer."""
    if "error" in answer:
        return {"error": answer["error"].get("err_code"), "code": answer["error"].get("code")}
    kept = {"type": answer.get("type")}
    config = answer.get("config") or {}
    for field in ("name", "subjects", "max_age", "max_msgs", "retention", "durable_name",
                  "ack_policy", "filter_subject"):
        if field in config:
            kept[field] = config[field]
    for field in ("success", "purged", "stream_name", "name"):
        if field in answer:
            kept[field] = answer[field]
    return kept


async def exchange(url: str) -> tuple[list, list]:
    nc = await nats.connect(url)
    try:
        answers = []
        for call, body in CALLS:
            data = b"" if body is None else json.dumps(body).encode()
            reply = await nc.request(f"$JS.API.{call}", data, timeout=5)
            answers.append((call, essentials(json.loads(reply.data))))
        js = nc.jetstream()
        for index in range(3):
            await js.publish("app.new", f"m{index}".encode())
        pulls = []
        for body, listen_s in PULLS:
            inbox = nc.new_inbox()
            subscription = await nc.subscribe(inbox)
            payload = b"" if body is None else json.dumps(body).encode()
            await nc.publish("$JS.API.CONSUMER.MSG.NEXT.APP.d1", payload, reply=inbox)
            got = []
            deadline = time.monotonic() + listen_s
            while (left := deadline - time.monotonic()) > 0:
                try:
                    message = await subscription.next_msg(timeout=left)
                except nats.errors.TimeoutError:
                    break
                headers = message.headers or {}
                got.append((message.data.decode(), headers.get("Status"), headers.get("Description")))
                if not headers and message.reply:
                    await nc.publish(message.reply, b"+ACK")
            await subscription.unsubscribe()
            pulls.append((body, got))
        return answers, pulls
    finally:
        await nc.close()


@pytest.fixture(scope="module")
def nats_server():
    """nats-server with JetStream on a port it picks (written to a ports file), killed when
    the module is done."""
    binary = shutil.which("nats-server")
    if binary is None:
        pytest.fail("nats-server is not installed (scripts/client-tests.sh installs it)",
                    pytrace=False)
    workdir = Path(tempfile.mkdtemp(prefix="omnibus-nats-peer-"))
    process = subprocess.Popen(
        [binary, "-a", "127.0.0.1", "-p", "-1", "-js", "-sd", str(workdir / "store"),
         "--ports_file_dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        ports = None
        while ports is None:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("nats-server did not start", pytrace=False)
            for path in workdir.glob("*.ports"):
                try:
                    ports = json.loads(path.read_text())
                except ValueError:
                    pass
            time.sleep(0.05)
        yield ports["nats"][0]
    finally:
        process.kill()
        process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def test_jetstream_api_and_pulls_answer_as_nats_server_does(nats_server, nats_url):
    expected_answers, expected_pulls = asyncio.run(asyncio.wait_for(exchange(nats_server), 60))
    answers, pulls = asyncio.run(asyncio.wait_for(exchange(nats_url), 60))
    for (call, expected), (_, answered) in zip(expected_answers, answers):
        assert answered == expected, f"{call}: nats-server {expected}, omnibus {answered}"
    for (body, expected), (_, answered) in zip(expected_pulls, pulls):
        assert answered == expected, f"pull {body}: nats-server {expected}, omnibus {answered}"


def test_raw_protocol_lines_answer_as_nats_server_does(nats_server, nats_url):
    for data in RAW_SESSIONS:
        expected = raw_session(nats_server, data)
        answered = raw_session(nats_url, data)
        assert answered == expected, f"{data!r}: nats-server {expected}, omnibus {answered}"
