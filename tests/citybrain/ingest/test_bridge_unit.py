"""The bridge with a stand-in producer (no broker): a message is acknowledged to MQTT only
once Kafka acknowledged it, in arrival order; a failure that may pass is retried and never
acknowledged before it is written; a record refused for good, or of no feed, becomes a dead
letter and is then acknowledged; a producer that cannot be made is tried again."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kafka import errors

from citybrain.feeds.definition import BUILTIN_DIR, load_feeds
from citybrain.ingest.mqtt_bridge import MqttBridge
from citybrain.settings import Settings


class FakeFuture:
    def __init__(self) -> None:
        self.callbacks: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
        self.errbacks: list[tuple[Callable[..., None], tuple[Any, ...]]] = []

    def add_callback(self, fn: Callable[..., None], *args: Any) -> None:
        self.callbacks.append((fn, args))

    def add_errback(self, fn: Callable[..., None], *args: Any) -> None:
        self.errbacks.append((fn, args))

    def succeed(self) -> None:
        for fn, args in self.callbacks:
            fn(*args, "metadata")

    def fail(self, error: BaseException) -> None:
        for fn, args in self.errbacks:
            fn(*args, error)


class FakeProducer:
    """Records every send; the test completes or fails each one."""

    def __init__(self, refuse_sizes_above: int | None = None) -> None:
        self.sent: list[tuple[str, bytes, bytes, dict[str, bytes], FakeFuture]] = []
        self.refuse_sizes_above = refuse_sizes_above
        self.lock = threading.Lock()

    def send(self, topic: str, key: bytes, value: bytes, headers: list[Any]) -> FakeFuture:
        if self.refuse_sizes_above is not None and len(value) > self.refuse_sizes_above:
            raise errors.MessageSizeTooLargeError("The message is too large")
        future = FakeFuture()
        with self.lock:
            self.sent.append((topic, key, value, dict(headers), future))
        return future

    def close(self, timeout: float | None = None) -> None:
        pass


class Message:
    def __init__(self, mid: int, topic: str, payload: bytes, qos: int = 1) -> None:
        self.mid, self.topic, self.payload, self.qos = mid, topic, payload, qos


def wait(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


@pytest.fixture
def made() -> Iterator[dict[str, Any]]:
    """The bridge's producer factory: fails `fail_first` times, then hands out `producer`."""
    state: dict[str, Any] = {"producer": FakeProducer(), "fail_first": 0, "calls": 0}
    yield state


def bridge_with(made: dict[str, Any]) -> tuple[MqttBridge, list[tuple[int, int]]]:
    def factory() -> FakeProducer:
        made["calls"] += 1
        if made["calls"] <= made["fail_first"]:
            raise errors.KafkaConnectionError("refused")
        producer: FakeProducer = made["producer"]
        return producer

    settings = Settings(mqtt_password="unused", kafka_linger_ms=0)  # type: ignore[arg-type]
    bridge = MqttBridge(settings, load_feeds(BUILTIN_DIR), client_id="unit", make_producer=factory)
    acked: list[tuple[int, int]] = []
    bridge.client.ack = lambda mid, qos: acked.append((mid, qos))  # type: ignore[method-assign]
    bridge.writer.start()
    return bridge, acked


def report(device: str) -> bytes:
    return f'{{"imei": "{device}", "time": "2026-11-24T09:10:00+08:00", "tilt_deg": 1}}'.encode()


def test_acks_wait_for_kafka_and_go_out_in_arrival_order(made: dict[str, Any]) -> None:
    bridge, acked = bridge_with(made)
    producer: FakeProducer = made["producer"]
    try:
        for mid in (11, 12, 13):
            bridge._on_message(
                None, None, Message(mid, f"manhole/D{mid}/report", report(f"D{mid}"))
            )
        assert wait(lambda: len(producer.sent) == 3)
        topics = {s[0] for s in producer.sent}
        assert topics == {"raw.iot.manhole-cover"}
        assert [s[1] for s in producer.sent] == [b"D11", b"D12", b"D13"]
        assert producer.sent[0][3]["mqtt.topic"] == b"manhole/D11/report"
        time.sleep(0.2)
        assert acked == []  # nothing before Kafka
        producer.sent[2][4].succeed()
        producer.sent[1][4].succeed()
        assert acked == []  # 13 and 12 wait for 11
        producer.sent[0][4].succeed()
        assert acked == [(11, 1), (12, 1), (13, 1)]
        assert bridge.acks.waiting == 0
    finally:
        bridge.writer.stop(1.0)


def test_a_failure_that_may_pass_is_retried_never_acked_before_written(
    made: dict[str, Any],
) -> None:
    bridge, acked = bridge_with(made)
    producer: FakeProducer = made["producer"]
    try:
        bridge._on_message(None, None, Message(1, "manhole/A/report", report("A")))
        bridge._on_message(None, None, Message(2, "manhole/B/report", report("B")))
        assert wait(lambda: len(producer.sent) == 2)
        producer.sent[0][4].fail(errors.KafkaTimeoutError("expired"))
        producer.sent[1][4].succeed()
        assert wait(lambda: len(producer.sent) == 3)  # A again, after a backoff
        assert producer.sent[2][1] == b"A"
        assert acked == []  # B waits behind A
        producer.sent[2][4].fail(errors.NotEnoughReplicasError())
        assert wait(lambda: len(producer.sent) == 4, 15)
        assert acked == []
        producer.sent[3][4].succeed()
        assert acked == [(1, 1), (2, 1)]
    finally:
        bridge.writer.stop(1.0)


def test_refused_for_good_or_of_no_feed_becomes_a_dead_letter_then_acked(
    made: dict[str, Any],
) -> None:
    made["producer"] = FakeProducer(refuse_sizes_above=100_000)
    bridge, acked = bridge_with(made)
    producer: FakeProducer = made["producer"]
    try:
        bridge._on_message(None, None, Message(1, "manhole/A/report", b"x" * 200_000))
        bridge._on_message(None, None, Message(2, "gone/feed", b"{}", qos=1))
        bridge._on_message(None, None, Message(3, "manhole/C/report", report("C")))
        assert wait(lambda: len(producer.sent) == 3)
        by_topic = {s[0]: s for s in producer.sent}
        assert set(by_topic) == {
            "raw.iot.manhole-cover.dlq",
            "raw.mqtt.dlq",
            "raw.iot.manhole-cover",
        }
        big = by_topic["raw.iot.manhole-cover.dlq"]
        assert big[3]["dlq.reason"] == b"payload_too_large"
        # its dead letter, cut to 256 KiB, was still too large: sent without the value
        assert big[2] == b""
        assert big[3]["dlq.value.truncated_from"] == b"200000"
        assert by_topic["raw.mqtt.dlq"][3]["dlq.reason"] == b"no_feed"
        # a dead letter that Kafka has not acknowledged yet is retried like any record
        by_topic["raw.mqtt.dlq"][4].fail(errors.KafkaTimeoutError())
        assert wait(lambda: len(producer.sent) == 4, 15)
        for sent in producer.sent[:]:
            if sent[4] is not by_topic["raw.mqtt.dlq"][4]:
                sent[4].succeed()
        assert acked == [(1, 1), (2, 1), (3, 1)]  # each PUBACK once Kafka has it
    finally:
        bridge.writer.stop(1.0)


def test_a_producer_that_cannot_be_made_is_tried_again(made: dict[str, Any]) -> None:
    made["fail_first"] = 2
    bridge, acked = bridge_with(made)
    producer: FakeProducer = made["producer"]
    try:
        bridge._on_message(None, None, Message(5, "manhole/A/report", report("A")))
        assert wait(lambda: len(producer.sent) == 1, 20)
        assert made["calls"] == 3
        assert acked == []
        producer.sent[0][4].succeed()
        assert acked == [(5, 1)]
    finally:
        bridge.writer.stop(1.0)


def test_a_lost_connection_forgets_the_acks_it_owed(made: dict[str, Any]) -> None:
    bridge, acked = bridge_with(made)
    producer: FakeProducer = made["producer"]
    try:
        bridge._on_message(None, None, Message(7, "manhole/A/report", report("A")))
        assert wait(lambda: len(producer.sent) == 1)
        bridge._on_disconnect(None, None, None, "lost", None)
        producer.sent[0][4].succeed()  # written, but its PUBACK belonged to the old connection
        assert acked == []
        bridge._on_message(None, None, Message(7, "manhole/A/report", report("A")))  # again
        assert wait(lambda: len(producer.sent) == 2)
        producer.sent[1][4].succeed()
        assert acked == [(7, 1)]
    finally:
        bridge.writer.stop(1.0)


def test_a_qos_0_message_is_written_and_never_acked(made: dict[str, Any]) -> None:
    bridge, acked = bridge_with(made)
    producer: FakeProducer = made["producer"]
    try:
        bridge._on_message(None, None, Message(0, "manhole/A/report", report("A"), qos=0))
        assert wait(lambda: len(producer.sent) == 1)
        producer.sent[0][4].succeed()
        assert acked == [] and bridge.acks.waiting == 0
    finally:
        bridge.writer.stop(1.0)
