"""Shared pieces of the real-client suites: a running `omnibus serve`, HTTP helpers, bounded waits.

Only 127.0.0.1 is used. Every wait has a deadline. The broker is killed when its owner is done
with it, whatever happened.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Callable, Optional

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
READY_LINE = "omnibus ready:"
READY_TIMEOUT_S = 30.0
HTTP_TIMEOUT_S = 15.0
START_ATTEMPTS = 4
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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


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
    help_text = subprocess.run(
        [str(binary), "serve", "--help"], capture_output=True, text=True, timeout=30
    ).stdout
    return "--kafka-listen" in help_text


class BrokerStartError(Exception):
    pass


_RUNNING: set = set()  # brokers not yet killed, for the exit hook below


@atexit.register
def _kill_leftovers() -> None:
    """An interrupted run (Ctrl-C, SIGTERM from an outer timeout) leaves no broker behind."""
    for broker in list(_RUNNING):
        broker.kill9()


class Broker:
    """One `omnibus serve` on a data dir of its own, with loopback ports of its own.

    `restart()` keeps the data dir and (when it can) the ports; `kill9()` is SIGKILL.
    Each start writes a log file of its own; `log_tail()` shows the latest ones.
    """

    def __init__(self, workdir: Path):
        self.binary = broker_binary()
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process: Optional[subprocess.Popen] = None
        self.http_port: Optional[int] = None
        self.kafka_port: Optional[int] = None
        self.logs: list[Path] = []
        self.starts = 0
        self.has_kafka = self.binary.exists() and kafka_listener_built(self.binary)

    # -- addresses -----------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        if not self.has_kafka:
            raise AssertionError(NO_KAFKA)
        return f"{HOST}:{self.kafka_port}"

    @property
    def http(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self, keep_ports: bool = False) -> None:
        assert self.process is None, "the broker is already running"
        if not self.binary.exists():
            raise BrokerStartError(
                f"no broker binary at {self.binary}: run `cargo build -p omnibus-server` "
                "(or set OMNIBUS_BIN)"
            )
        failures = []
        for attempt in range(START_ATTEMPTS):
            if not (keep_ports and attempt == 0 and self.http_port and self.kafka_port):
                self.http_port, self.kafka_port = free_port(), free_port()
                while self.kafka_port == self.http_port:
                    self.kafka_port = free_port()
            try:
                self._start_once()
                return
            except BrokerStartError as error:
                failures.append(str(error))
                text = self._read_log(self.logs[-1]) if self.logs else ""
                # A port taken between our probe and the broker's bind: try other ports.
                if "in use" in text.lower() or "cannot listen" in text.lower():
                    continue
                break
        raise BrokerStartError("; ".join(failures) + "\n" + self.log_tail())

    def _start_once(self) -> None:
        self.starts += 1
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
            f"{HOST}:{self.http_port}",
        ]
        if self.has_kafka:
            command += ["--kafka-listen", f"{HOST}:{self.kafka_port}"]
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
        ready_line = health = False
        kafka = not self.has_kafka
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                self.process = None
                raise BrokerStartError(f"`omnibus serve` exited with status {code} while starting")
            if not ready_line:
                ready_line = READY_LINE in self._read_log(log_path)
            if ready_line and not health:
                try:
                    with urllib.request.urlopen(f"{self.http}/health", timeout=2) as response:
                        health = response.status == 200
                except (urllib.error.URLError, OSError):
                    pass
            if health and not kafka and self.has_kafka:
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
            f"(ready line: {ready_line}, /health 200: {health}, Kafka port accepting: {kafka})"
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
        """kill -9, then start again on the same data dir (same ports when they are free)."""
        self.kill9()
        self.start(keep_ports=True)

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
