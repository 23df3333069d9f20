"""The MQTT bridge against the real mosquitto and the real Kafka broker: messages published
with `mosquitto_pub` (QoS 1) land on the feed's raw topic with the bridge's headers; with
Kafka unreachable nothing is acknowledged, and once it is back everything arrives, each
acknowledged only after Kafka had it (the broker has nothing more to send again)."""

from __future__ import annotations

import json
import signal
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from citybrain.feeds.definition import BUILTIN_DIR, load_feeds
from citybrain.ingest.mqtt_bridge import MqttBridge, forget_session
from citybrain.settings import Settings
from citybrain.stack.mosquitto import bridge_password
from tests.citybrain.ingest.mqtt_helpers import (
    Forwarder,
    bridge_process,
    end_offsets,
    publish_lines,
    records_after,
)
from tests.conftest import free_port, wait_for

pytestmark = pytest.mark.integration
RAW = "raw.iot.manhole-cover"


@pytest.fixture
def client_id(stack: Settings) -> Iterator[str]:
    """A client id (a persistent session) of the test's own, ended afterwards."""
    cid = f"test-bridge-{uuid.uuid4().hex[:8]}"
    yield cid
    forget_session(stack, cid)


def reports(marker: str, count: int) -> list[str]:
    return [
        json.dumps(
            {
                "imei": f"T{marker}-{i:03d}",
                "time": "2026-11-24T09:10:00+08:00",
                "tilt_deg": 1.0,
                "water_immersion": 0,
                "run": marker,
            }
        )
        for i in range(count)
    ]


def logged(log: Path, event: str) -> bool:
    return f'"event": "{event}"' in log.read_text(errors="replace")


def test_published_messages_reach_the_raw_topic_with_the_bridges_headers(
    stack: Settings, client_id: str, tmp_path: Path
) -> None:
    marker = uuid.uuid4().hex[:8]
    start = end_offsets(stack, RAW)
    log = tmp_path / "bridge.log"
    metrics_port = free_port()
    with bridge_process(
        log,
        CITYBRAIN_MQTT_CLIENT_ID=client_id,
        CITYBRAIN_BRIDGE_METRICS_PORT=str(metrics_port),
    ) as proc:
        assert wait_for(lambda: logged(log, "bridge_subscribed"), 60), log.read_text()
        publish_lines(stack, f"manhole/{marker}/report", reports(marker, 20))

        def landed() -> list[object]:
            return records_after(stack, RAW, start, f'"run": "{marker}"'.encode())

        assert wait_for(lambda: len(landed()) >= 20, 60), log.read_text()[-3000:]
        got = landed()
        assert len(got) == 20
        for record in got:
            headers = {k: v for k, v in record.headers}  # type: ignore[attr-defined]
            assert headers == {
                "transport": b"mqtt",
                "mqtt.topic": f"manhole/{marker}/report".encode(),
                "mqtt.qos": b"1",
                "mqtt.client_id": client_id.encode(),
            }
            doc = json.loads(record.value)  # type: ignore[attr-defined]
            assert record.key == doc["imei"].encode()  # type: ignore[attr-defined]
        metrics = urllib.request.urlopen(
            f"http://127.0.0.1:{metrics_port}/metrics", timeout=5
        ).read()
        acked = 'citybrain_bridge_messages_total{feed="manhole-cover",outcome="acked"} 20.0'
        assert wait_for(lambda: acked.encode() in metrics, 1), metrics.decode()[-2000:]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(40) == 0
    assert logged(log, "bridge_stopped")


def test_with_kafka_unreachable_nothing_is_acked_and_after_it_returns_everything_arrives(
    stack: Settings, client_id: str
) -> None:
    port = free_port()  # Kafka "unreachable": nothing listens here, until the forwarder
    unreachable = stack.model_copy(update={"kafka_bootstrap_servers": f"127.0.0.1:{port}"})
    bridge = MqttBridge(
        unreachable, load_feeds(BUILTIN_DIR), client_id=client_id, session_expiry=600
    )
    written: set[int] = set()
    acked_before_written: list[int] = []
    acked: list[int] = []
    report_written = bridge.writer._written
    send_ack = bridge.client.ack

    def record_written(item: object) -> None:
        written.add(item.mid)  # type: ignore[attr-defined]
        report_written(item)  # type: ignore[arg-type]

    def record_ack(mid: int, qos: int) -> object:
        if mid not in written:
            acked_before_written.append(mid)
        acked.append(mid)
        return send_ack(mid, qos)

    bridge.writer._written = record_written  # type: ignore[method-assign]
    bridge.client.ack = record_ack  # type: ignore[method-assign]
    marker = uuid.uuid4().hex[:8]
    start = end_offsets(stack, RAW)
    forwarder = Forwarder(port, tuple(stack.kafka_bootstrap_list[0].rsplit(":", 1)))  # type: ignore[arg-type]
    bridge.start()
    try:
        assert bridge.subscribed.wait(30)
        count = 30
        publish_lines(stack, f"manhole/{marker}/report", reports(marker, count))
        assert wait_for(lambda: bridge.received == count, 30), bridge.received
        # Kafka is away: the messages wait, none acknowledged, none written
        assert not wait_for(lambda: bridge.acked > 0, 6)
        assert acked == [] and bridge.acks.waiting == count
        assert records_after(stack, RAW, start, marker.encode()) == []
        forwarder.start()  # Kafka is back
        assert wait_for(lambda: bridge.acked == count, 90), (bridge.acked, bridge.writer.pending)
        assert acked_before_written == []
        assert len(acked) == count and len(set(acked)) == count
        got = records_after(stack, RAW, start, marker.encode())
        assert len({json.loads(r.value)["imei"] for r in got}) == count
    finally:
        bridge.stop(10.0)
        forwarder.stop()
    # the broker has nothing more for this session: every message was really acknowledged
    again = MqttBridge(stack, load_feeds(BUILTIN_DIR), client_id=client_id, session_expiry=600)
    again.start()
    try:
        assert again.subscribed.wait(30)
        assert not wait_for(lambda: again.received > 0, 3), again.received
    finally:
        again.stop(5.0)


def test_a_payload_too_large_for_kafka_is_dead_lettered_with_its_reason_not_dropped(
    stack: Settings, client_id: str, tmp_path: Path
) -> None:
    """Larger than one Kafka record, smaller than the broker's limit: the bridge writes its
    dead letter (the payload cut, its size kept), acknowledges it, and goes on."""
    import subprocess

    marker = uuid.uuid4().hex[:8]
    big = json.dumps({"imei": f"T{marker}-big", "run": marker, "pad": "x" * 1_500_000})
    start, dlq_start = end_offsets(stack, RAW), end_offsets(stack, RAW + ".dlq")
    log = tmp_path / "bridge.log"
    with bridge_process(
        log, CITYBRAIN_MQTT_CLIENT_ID=client_id, CITYBRAIN_BRIDGE_METRICS_PORT=str(free_port())
    ):
        assert wait_for(lambda: logged(log, "bridge_subscribed"), 60), log.read_text()
        sent = subprocess.run(
            [
                "mosquitto_pub",
                *("-h", stack.mqtt_host, "-p", str(stack.mqtt_port), "-q", "1", "-s"),
                *("-u", stack.mqtt_username, "-P", bridge_password(stack)),
                *("-t", f"manhole/{marker}/report"),
            ],
            input=big.encode(),
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert sent.returncode == 0, sent.stderr
        publish_lines(stack, f"manhole/{marker}/report", reports(marker, 1))  # after it
        needle = f'"run": "{marker}"'.encode()
        assert wait_for(lambda: len(records_after(stack, RAW, start, needle)) == 1, 60), (
            log.read_text()[-3000:]
        )
        (letter,) = records_after(stack, RAW + ".dlq", dlq_start, marker.encode())
    headers = dict(letter.headers)
    assert headers["dlq.reason"] == b"payload_too_large"
    assert headers["dlq.stage"] == b"bridge"
    assert headers["dlq.mqtt.topic"] == f"manhole/{marker}/report".encode()
    assert int(headers["dlq.value.truncated_from"]) == len(big)
    assert 0 < len(letter.value) < len(big)
