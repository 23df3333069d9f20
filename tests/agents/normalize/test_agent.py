"""The normalize stage through the real broker: a new feed by definition only, and the
bad-input corpus (every record ends as an event or a dead letter; the worker goes on)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kafka import KafkaConsumer, KafkaProducer

from citybrain.feeds.definition import BUILTIN_DIR, load_feeds
from citybrain.settings import Settings
from citybrain_tools.kafka import start_group_at_end
from tests.citybrain.feeds.test_normalize import BAD, smoke
from tests.conftest import wait_for

pytestmark = pytest.mark.integration

BRIDGE_FEED = """\
feed: bridge-vibration
description: Accelerometers on bridge piers (vendor "StructaLink"), one JSON per 10 s window.
source_kind: iot
source:
  topic: raw.iot.bridge-vibration
device_id: node.serial
observed_at: {path: window.end, format: "%Y%m%dT%H%M%S", timezone: Asia/Shanghai}
location: {lon: node.pos.x, lat: node.pos.y, crs: GCJ-02}
readings:
  - {metric: accel_peak, path: window.peak_mg, unit: mg, to_unit: g}
alarms:
  - {rule: threshold, metric: accel_peak, above: 0.25, held_for: 20s, category: structural,
     severity: 1}
"""


def produce(
    settings: Settings, topic: str, records: list[tuple[bytes, bytes]]
) -> set[tuple[str, int, int]]:
    producer = KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_list, acks="all", max_request_size=4_000_000
    )
    futures = [producer.send(topic, key=k, value=v) for k, v in records]
    producer.flush()
    where = set()
    for f in futures:
        meta = f.get(timeout=30)
        where.add((meta.topic, meta.partition, meta.offset))
    producer.close()
    return where


def collect(settings: Settings, topics: list[str], seconds: float = 4.0) -> list[Any]:
    consumer = KafkaConsumer(
        *topics,
        bootstrap_servers=settings.kafka_bootstrap_list,
        auto_offset_reset="earliest",
        group_id=None,
        consumer_timeout_ms=int(seconds * 1000),
        max_partition_fetch_bytes=8_000_000,
    )
    messages = list(consumer)
    consumer.close()
    return messages


def committed(settings: Settings, group: str, sent: set[tuple[str, int, int]]) -> bool:
    """Whether the group's committed offsets are past every record in `sent`."""
    from kafka import TopicPartition
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_list)
    try:
        tps = [TopicPartition(t, p) for t, p, _ in sent]
        offsets = admin.list_group_offsets({group: tps}).get(group, {})
    finally:
        admin.close()
    return all(
        TopicPartition(t, p) in offsets and offsets[TopicPartition(t, p)].offset > o
        for t, p, o in sent
    )


def origin_of_event(msg: Any) -> tuple[str, int, int]:
    ref = json.loads(msg.value)["raw_ref"]
    return (ref["topic"], ref["partition"], ref["offset"])


def origin_of_dead_letter(msg: Any) -> tuple[str, int, int]:
    h = dict(msg.headers)
    return (
        h["dlq.original.topic"].decode(),
        int(h["dlq.original.partition"]),
        int(h["dlq.original.offset"]),
    )


def test_a_feed_defined_only_by_a_file(
    stack: Settings, worker_factory: Any, tmp_path: Path
) -> None:
    feeds_dir = tmp_path / "feeds"
    feeds_dir.mkdir()
    (feeds_dir / "bridge-vibration.yaml").write_text(BRIDGE_FEED)
    worker = worker_factory(CITYBRAIN_FEEDS_DIR=str(feeds_dir))
    node = f"BR-{uuid.uuid4().hex[:6]}"

    def window(second: int, peak_mg: float) -> tuple[bytes, bytes]:
        doc = {
            "node": {"serial": node, "pos": {"x": 121.5067, "y": 31.2459}},
            "window": {"end": f"20261124T0900{second:02d}", "peak_mg": peak_mg},
        }
        return node.encode(), json.dumps(doc).encode()

    # 0.31 g from 09:00:10 on: held for 20 s at 09:00:30 -> one structural alarm
    sent = produce(
        stack,
        "raw.iot.bridge-vibration",
        [window(0, 120), window(10, 310), window(20, 305), window(30, 320)],
    )

    def readings() -> int:
        with psycopg.connect(stack.conninfo()) as conn:
            row = conn.execute(
                "SELECT count(*) FROM readings WHERE device_id = %s", (node,)
            ).fetchone()
        return int(row[0]) if row else 0

    assert wait_for(lambda: readings() == 4 or not worker.alive(), 120), worker.log()[-3000:]
    assert readings() == 4, worker.log()[-3000:]
    events = [m for m in collect(stack, ["events.v1"]) if origin_of_event(m) in sent]
    docs = [json.loads(m.value) for m in events]
    assert [(d["kind"], d["category"], d["severity"]) for d in docs] == [("alarm", "structural", 1)]
    assert docs[0]["location"]["district"] == "310115"  # Lujiazui, Pudong
    assert docs[0]["observed_at"] == "2026-11-24T01:00:30Z"
    assert docs[0]["attributes"]["accel_peak"] == pytest.approx(0.32)  # 320 mg in g


def test_bad_input_corpus_every_record_accounted_for(stack: Settings, worker_factory: Any) -> None:
    run = uuid.uuid4().hex[:6]
    # a group started at the end of every topic: this test's records, not the suite's history
    group = f"test-corpus-{run}"
    start_group_at_end(stack, group)
    worker = worker_factory(CITYBRAIN_APP_ID=group)
    by_topic: dict[str, list[tuple[bytes, bytes]]] = {}
    topics = {f.name: f.topic for f in load_feeds(BUILTIN_DIR)}  # each feed's raw topic
    expected_reasons: dict[str, int] = {}
    for feed, raw, reason in BAD:
        by_topic.setdefault(topics[feed], []).append((f"{run}".encode(), raw))
        expected_reasons[reason] = expected_reasons.get(reason, 0) + 1
    good = [
        (
            f"SM-{run}-{i}".encode(),
            smoke(deviceSerial=f"SM-{run}-{i}", alarmTime=f"2026-11-24 07:00:{i:02d}"),
        )
        for i in range(20)
    ]
    by_topic["raw.iot.smoke-alarm"] = good[:10] + by_topic["raw.iot.smoke-alarm"] + good[10:]
    sent: set[tuple[str, int, int]] = set()
    for topic, records in by_topic.items():
        sent |= produce(stack, topic, records)
    total = sum(len(r) for r in by_topic.values())
    assert len(sent) == total

    def outcomes() -> tuple[list[Any], list[Any]]:
        events = [m for m in collect(stack, ["events.v1"]) if origin_of_event(m) in sent]
        letters = [
            m
            for m in collect(stack, [f"{t}.dlq" for t in by_topic])
            if origin_of_dead_letter(m) in sent
        ]
        return events, letters

    deadline = time.monotonic() + 120
    events, letters = outcomes()
    while len(events) + len(letters) < total and time.monotonic() < deadline:
        time.sleep(2)
        events, letters = outcomes()
    assert len(events) == 20, worker.log()[-3000:]
    assert len(letters) == len(BAD)
    assert {origin_of_event(m) for m in events} | {
        origin_of_dead_letter(m) for m in letters
    } == sent, "count in equals count out, each record exactly once"
    reasons: dict[str, int] = {}
    for m in letters:
        h = dict(m.headers)
        reason = h["dlq.reason"].decode()
        reasons[reason] = reasons.get(reason, 0) + 1
        assert h["dlq.stage"] == b"normalize"
        assert h["dlq.feed"].decode() in topics
        assert h["dlq.error.message"]
    assert reasons == expected_reasons
    big = [
        dict(m.headers) for m in letters if dict(m.headers)["dlq.reason"] == b"payload_too_large"
    ]
    assert big[0]["dlq.value.truncated_from"] == b"1100011"  # kept, truncated, not lost

    # the worker is still consuming: a good record after all that arrives
    late = produce(stack, "raw.iot.smoke-alarm", [(b"late", smoke(deviceSerial=f"SM-{run}-late"))])
    assert wait_for(
        lambda: any(origin_of_event(m) in late for m in collect(stack, ["events.v1"], 2)), 60
    )
    assert worker.alive()


def test_alarm_state_survives_a_kill_and_is_recovered_from_its_changelog(
    stack: Settings, worker_factory: Any, tmp_path: Path
) -> None:
    """A threshold held across a restart: the first worker sees it begin and is killed
    with -9 once those readings are stored; the second worker recovers the device's state
    from the table's changelog, so the reading 20 s after the hold began raises the alarm
    (with a state lost, the hold would start again there and no alarm would come)."""
    feeds_dir = tmp_path / "feeds"
    feeds_dir.mkdir()
    (feeds_dir / "bridge-vibration.yaml").write_text(BRIDGE_FEED)
    node = f"BR-{uuid.uuid4().hex[:6]}"

    def window(second: int, peak_mg: float) -> tuple[bytes, bytes]:
        doc = {
            "node": {"serial": node, "pos": {"x": 121.5067, "y": 31.2459}},
            "window": {"end": f"20261124T0910{second:02d}", "peak_mg": peak_mg},
        }
        return node.encode(), json.dumps(doc).encode()

    def readings() -> int:
        with psycopg.connect(stack.conninfo()) as conn:
            row = conn.execute(
                "SELECT count(*) FROM readings WHERE device_id = %s", (node,)
            ).fetchone()
        return int(row[0]) if row else 0

    first = worker_factory(CITYBRAIN_FEEDS_DIR=str(feeds_dir))
    sent = produce(stack, "raw.iot.bridge-vibration", [window(0, 120), window(10, 310)])
    assert wait_for(lambda: readings() == 2, 120), first.log()[-3000:]
    # killed only once the offsets are committed: the second worker does not read those
    # two readings again, it has only the recovered state to go by
    group = first.env["CITYBRAIN_APP_ID"]
    assert wait_for(lambda: committed(stack, group, sent), 30), first.log()[-3000:]
    first.kill()
    second = worker_factory(CITYBRAIN_FEEDS_DIR=str(feeds_dir))
    sent |= produce(stack, "raw.iot.bridge-vibration", [window(30, 330)])
    assert wait_for(lambda: readings() == 3, 120), second.log()[-3000:]

    def alarms() -> list[dict[str, Any]]:
        found = [json.loads(m.value) for m in collect(stack, ["events.v1"], 3)]
        return [d for d in found if d["location"].get("device_id") == node]

    assert wait_for(lambda: len(alarms()) >= 1, 60), second.log()[-3000:]
    assert {(d["kind"], d["observed_at"]) for d in alarms()} == {("alarm", "2026-11-24T01:10:30Z")}
