"""Shared pieces of the real-client suites: a running `omnibus serve`, HTTP helpers, bounded waits.

Only 127.0.0.1 is used. Every wait has a deadline. The broker is killed when its owner is done
with it, whatever happened.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
LISTENERS_FILE = "listeners.json"
# Every listener binds port 0 and the broker reports where it listens: a port probed free and
# then passed in can be taken by a parallel test before the broker binds it.
LISTEN_ANY_PORT = f"{HOST}:0"
READY_TIMEOUT_S = 30.0
HTTP_TIMEOUT_S = 15.0
LOG_TAIL_BYTES = 16 * 1024


def broker_binary() -> Path:
    """The `omnibus` binary: $OMNIBUS_BIN, else the cargo target dir's debug build."""
    explicit = os.environ.get("OMNIBUS_BIN")
    if explicit:
        return Path(explicit).absolute()
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    if not target.is_absolute():
        target = REPO / target
    return target / "debug" / "omnibus"


def read_listeners(data_dir: Path, pid: int) -> Optional[dict]:
    """`<data_dir>/listeners.json` as written by the broker process `pid`, or None while the
    file is missing or left behind by an earlier (killed) process on the same data dir."""
    try:
        listeners = json.loads((data_dir / LISTENERS_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return listeners if listeners.get("pid") == pid else None


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def unique(prefix: str) -> str:
    """A topic/group name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05):
    """Polls `predicate` until it returns something truthy; fails with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class HttpError(Exception):
    def __init__(self, status: int, body: str):
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


def stop_workers(processes: list, folder: Path, grace_s: float) -> None:
    """Stops worker processes started each in its own process group: SIGTERM to every one
    still running, `grace_s` for all of them to go (a warm shutdown is not under test), then
    SIGKILL; then prints the tail of each `worker-*.log` in `folder`."""
    running = [p for p in processes if p.poll() is None]
    for process in running:
        os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for process in running:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)
    for log in sorted(folder.glob("worker-*.log")):
        print(f"--- {log.name} ---\n" + log.read_text(errors="replace")[-3000:])


def http_json(method: str, url: str, body: Any = None, timeout: float = HTTP_TIMEOUT_S) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read().decode()
    except urllib.error.HTTPError as error:
        raise HttpError(error.code, error.read().decode(errors="replace")) from None
    return json.loads(text) if text else None


def kafka_debug_conf() -> dict:
    """librdkafka debug contexts from $OMNIBUS_KAFKA_DEBUG (e.g. `protocol,broker`)."""
    debug = os.environ.get("OMNIBUS_KAFKA_DEBUG")
    return {"debug": debug} if debug else {}


NO_KAFKA = (
    "this omnibus binary has no Kafka listener: `omnibus serve --help` does not offer "
    "--kafka-listen (the Kafka front door is not built yet)"
)


def kafka_listener_built(binary: Path) -> bool:
    return "--kafka-listen" in serve_help(binary)


NO_NATS = (
    "this omnibus binary has no NATS listener: `omnibus serve --help` does not offer "
    "--nats-listen"
)


def nats_listener_built(binary: Path) -> bool:
    return "--nats-listen" in serve_help(binary)


NO_AMQP = (
    "this omnibus binary has no AMQP listener: `omnibus serve --help` does not offer "
    "--amqp-listen"
)


def amqp_listener_built(binary: Path) -> bool:
    return "--amqp-listen" in serve_help(binary)


NO_REDIS = (
    "this omnibus binary has no Redis listener: `omnibus serve --help` does not offer "
    "--redis-listen"
)


def redis_listener_built(binary: Path) -> bool:
    return "--redis-listen" in serve_help(binary)


def serve_help(binary: Path) -> str:
    return subprocess.run(
        [str(binary), "serve", "--help"], capture_output=True, text=True, timeout=30
    ).stdout


class BrokerStartError(Exception):
    pass


_RUNNING: set = set()  # brokers not yet killed, for the exit hook below


@atexit.register
def _kill_leftovers() -> None:
    """An interrupted run (Ctrl-C, SIGTERM from an outer timeout) leaves no broker behind."""
    for broker in list(_RUNNING):
        broker.kill9()


class Broker:
    """One `omnibus serve` on a data dir of its own, on loopback ports it picks itself.

    Every start binds port 0 and learns its addresses from `<data_dir>/listeners.json`, so a
    start after `kill9()` listens on new ports: clients made before a restart must be made
    again with the new `bootstrap` / `http`. Each start writes a log file of its own;
    `log_tail()` shows the latest ones.
    """

    def __init__(self, workdir: Path):
        self.binary = broker_binary()
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process: Optional[subprocess.Popen] = None
        self.http_port: Optional[int] = None
        self.kafka_port: Optional[int] = None
        self.nats_port: Optional[int] = None
        self.amqp_port: Optional[int] = None
        self.redis_port: Optional[int] = None
        self.logs: list[Path] = []
        self.starts = 0
        self.has_kafka = self.binary.exists() and kafka_listener_built(self.binary)
        self.has_nats = self.binary.exists() and nats_listener_built(self.binary)
        self.has_amqp = self.binary.exists() and amqp_listener_built(self.binary)
        self.has_redis = self.binary.exists() and redis_listener_built(self.binary)

    # -- addresses -----------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        if not self.has_kafka:
            raise AssertionError(NO_KAFKA)
        return f"{HOST}:{self.kafka_port}"

    @property
    def nats_url(self) -> str:
        if not self.has_nats:
            raise AssertionError(NO_NATS)
        return f"nats://{HOST}:{self.nats_port}"

    @property
    def amqp_url(self) -> str:
        if not self.has_amqp:
            raise AssertionError(NO_AMQP)
        return f"amqp://guest:guest@{HOST}:{self.amqp_port}/%2F"

    @property
    def redis_url(self) -> str:
        if not self.has_redis:
            raise AssertionError(NO_REDIS)
        return f"redis://{HOST}:{self.redis_port}/0"

    @property
    def http(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        assert self.process is None, "the broker is already running"
        if not self.binary.exists():
            raise BrokerStartError(
                f"no broker binary at {self.binary}: run `cargo build -p omnibus-server` "
                "(or set OMNIBUS_BIN)"
            )
        try:
            self._start_once()
        except BrokerStartError as error:
            raise BrokerStartError(f"{error}\n{self.log_tail()}") from None

    def _start_once(self) -> None:
        self.starts += 1
        self.http_port = self.kafka_port = self.nats_port = self.amqp_port = None
        self.redis_port = None
        log_path = self.workdir / f"omnibus-{self.starts}.log"
        self.logs.append(log_path)
        env = {k: v for k, v in os.environ.items() if not k.startswith("OMNIBUS_")}
        if os.environ.get("OMNIBUS_LOG"):
            env["OMNIBUS_LOG"] = os.environ["OMNIBUS_LOG"]
        command = [
            str(self.binary),
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--http-listen",
            LISTEN_ANY_PORT,
        ]
        if self.has_kafka:
            command += ["--kafka-listen", LISTEN_ANY_PORT]
        # Always named: the default, 127.0.0.1:4222, would collide between parallel brokers.
        if self.has_nats:
            command += ["--nats-listen", LISTEN_ANY_PORT]
        # Likewise for AMQP's default, 127.0.0.1:5672.
        if self.has_amqp:
            command += ["--amqp-listen", LISTEN_ANY_PORT]
        # Off by default (a real Redis may own 6379): turned on, on a port of its own.
        if self.has_redis:
            command += ["--redis-listen", LISTEN_ANY_PORT]
        with open(log_path, "ab") as log:
            log.write(("$ " + " ".join(command) + "\n").encode())
            log.flush()
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                cwd=self.workdir,
                start_new_session=True,
            )
        _RUNNING.add(self)
        deadline = time.monotonic() + READY_TIMEOUT_S
        listeners = None
        health = False
        kafka = not self.has_kafka
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                self.process = None
                raise BrokerStartError(f"`omnibus serve` exited with status {code} while starting")
            if listeners is None:
                # Written by this process (its pid) just before the ready line; a file left
                # by a killed broker on the same data dir names another pid.
                listeners = read_listeners(self.data_dir, self.process.pid)
                if listeners is not None:
                    self.http_port = port_of(listeners["http"])
                    self.kafka_port = port_of(listeners["kafka"])
                    if self.has_nats:
                        self.nats_port = port_of(listeners["nats"])
                    if self.has_amqp:
                        self.amqp_port = port_of(listeners["amqp"])
                    if self.has_redis:
                        self.redis_port = port_of(listeners["redis"])
            if listeners is not None and not health:
                try:
                    with urllib.request.urlopen(f"{self.http}/health", timeout=2) as response:
                        health = response.status == 200
                except (urllib.error.URLError, OSError):
                    pass
            if health and not kafka:
                try:
                    socket.create_connection((HOST, self.kafka_port), timeout=2).close()
                    kafka = True
                except OSError:
                    pass
            if health and kafka:
                return
            time.sleep(0.05)
        self.kill9()
        raise BrokerStartError(
            f"`omnibus serve` not ready within {READY_TIMEOUT_S:.0f}s "
            f"({LISTENERS_FILE} written: {listeners is not None}, /health 200: {health}, "
            f"Kafka port accepting: {kafka})"
        )

    def kill9(self) -> None:
        """SIGKILL, no goodbye; waits until the process is gone."""
        process, self.process = self.process, None
        _RUNNING.discard(self)
        if process is None:
            return
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)

    def restart(self) -> None:
        """kill -9, then start again on the same data dir, on new ports (see the class doc)."""
        self.kill9()
        self.start()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # -- logs ----------------------------------------------------------------------------------

    @staticmethod
    def _read_log(path: Path) -> str:
        try:
            return path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, starts: int = 2) -> str:
        parts = []
        for path in self.logs[-starts:]:
            text = self._read_log(path)
            if len(text) > LOG_TAIL_BYTES:
                text = "[...]\n" + text[-LOG_TAIL_BYTES:]
            parts.append(f"--- {path.name} ---\n{text}")
        return "\n".join(parts)

    # -- HTTP API --------------------------------------------------------------------------------

    def create_stream(self, name: str, partitions: int) -> dict:
        return http_json("POST", f"{self.http}/v1/streams", {"name": name, "partitions": partitions})

    def stream_info(self, name: str) -> dict:
        return http_json("GET", f"{self.http}/v1/streams/{name}")

    def partition_count(self, name: str) -> int:
        """The stream's partition count, as the HTTP API reports it."""
        return self.stream_info(name)["partitions"]

    def publish(self, stream: str, records: list[dict]) -> list[dict]:
        """POST records; returns their [{partition, offset}] in order (after fsync)."""
        answer = http_json("POST", f"{self.http}/v1/streams/{stream}/records", {"records": records})
        return answer["records"]

    def read_partition(self, stream: str, partition: int, timeout: float = 30.0) -> list[dict]:
        """Every record of one partition up to its high watermark, via the HTTP API."""
        records: list[dict] = []
        offset = 0
        deadline = time.monotonic() + timeout
        while True:
            page = http_json(
                "GET",
                f"{self.http}/v1/streams/{stream}/partitions/{partition}/records"
                f"?offset={offset}&max_records=1000",
            )
            for record in page["records"]:
                if record["offset"] >= offset:
                    records.append(record)
            offset = max(offset, page["next_offset"])
            if offset >= page["high_watermark"] or not page["records"]:
                return records
            if time.monotonic() > deadline:
                raise AssertionError(f"reading {stream}/{partition} over HTTP took over {timeout}s")

    def cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
        """Runs `omnibus ARGS --server <http>` and returns the finished process."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("OMNIBUS_")}
        return subprocess.run(
            [str(self.binary), *args, "--server", self.http],
            capture_output=True,
            timeout=timeout,
            env=env,
            stdin=subprocess.DEVNULL,
        )


NODE_DIR = Path(__file__).parent / "node"


def run_node_suite(script: str, package: str, env: dict, scenarios: int) -> None:
    """Runs `node --test node/<script>` (node's own test runner) with `env` added, and fails
    with its report unless every one of its `scenarios` passed. `package` is the client the
    script imports, installed by scripts/client-tests.sh (npm ci)."""
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / package).is_dir():
        pytest.fail("node and tests/clients/node/node_modules are needed: run scripts/client-tests.sh",
                    pytrace=False)
    result = subprocess.run(
        [node, "--test", "--test-reporter=spec", script],
        cwd=NODE_DIR,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    # Every scenario ran (a file that failed to load would report none).
    assert f"# pass {scenarios}" in report or f"ℹ pass {scenarios}" in report, report
