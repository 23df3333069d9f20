"""What the bridge's integration tests share: publishing with `mosquitto_pub`, reading a
topic after given offsets, a consumer group started at the end of every topic, a TCP
forwarder standing in for a Kafka that comes back, and `citybrain bridge mqtt` as a
process."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from citybrain.settings import PROJECT_ROOT, Settings
from citybrain.stack.mosquitto import bridge_password
from citybrain.streams.clients import kafka_python_options
from tests.conftest import free_port

CITYBRAIN = str(Path(sys.executable).parent / "citybrain")


def publish_lines(s: Settings, topic: str, lines: list[str], qos: int = 1) -> None:
    """Each line a message on `topic` (`mosquitto_pub -l`), QoS 1: the broker has each."""
    done = subprocess.run(
        [
            "mosquitto_pub",
            *("-h", s.mqtt_host, "-p", str(s.mqtt_port), "-q", str(qos), "-l"),
            *("-u", s.mqtt_username, "-P", bridge_password(s), "-t", topic),
        ],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def _consumer(s: Settings, **extra: Any) -> Any:
    from kafka import KafkaConsumer

    return KafkaConsumer(
        bootstrap_servers=s.kafka_bootstrap_list, **kafka_python_options(s), **extra
    )


def end_offsets(s: Settings, topic: str) -> dict[Any, int]:
    from kafka import TopicPartition

    consumer = _consumer(s)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return dict(consumer.end_offsets(tps)) if tps else {}
    finally:
        consumer.close()


def records_after(s: Settings, topic: str, start: dict[Any, int], needle: bytes) -> list[Any]:
    """The records of `topic` after `start` (a partition not in it: from its beginning)
    whose value holds `needle`, until none came for 3 s."""
    from kafka import TopicPartition

    consumer = _consumer(s, enable_auto_commit=False, consumer_timeout_ms=3000)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, start.get(tp, 0))
        return [m for m in consumer if needle in (m.value or b"")]
    finally:
        consumer.close()


def start_group_at_end(s: Settings, group: str) -> None:
    """Commit, for `group`, the end offset of every partition of every existing topic."""
    from kafka import TopicPartition
    from kafka.structs import OffsetAndMetadata

    consumer = _consumer(s, group_id=group, enable_auto_commit=False)
    try:
        topics = [t for t in consumer.topics() if not t.startswith("__")]
        tps = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        ends = consumer.end_offsets(tps)
        consumer.assign(tps)
        consumer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in ends.items() if o > 0})
    finally:
        consumer.close()


class Forwarder:
    """Forwards a local port to another address, one thread per direction; `start` when
    the target should become reachable through it."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.port, self.target = port, target
        self._server: socket.socket | None = None
        self._closed = threading.Event()

    def start(self) -> Forwarder:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(16)
        self._server = server
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self) -> None:
        assert self._server is not None
        while not self._closed.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := a.recv(65536):
                b.sendall(data)
        with contextlib.suppress(OSError):
            b.shutdown(socket.SHUT_WR)

    def stop(self) -> None:
        self._closed.set()
        if self._server is not None:
            self._server.close()


@contextlib.contextmanager
def bridge_process(log: Path, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    """`citybrain bridge mqtt` with `env` (its own metrics port), stopped on the way out."""
    full = {
        **os.environ,
        "CITYBRAIN_BRIDGE_METRICS_PORT": str(free_port()),
        "CITYBRAIN_LOG_FORMAT": "json",
        **env,
    }
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [CITYBRAIN, "bridge", "mqtt"],
            env=full,
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
