"""The vertical slice: a record on a real Kafka topic -> the Faust agent -> a row in PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg
import pytest
from kafka import KafkaConsumer, KafkaProducer

from citybrain.settings import Settings
from citybrain.streams.topics import TOPICS
from tests.conftest import wait_for

pytestmark = pytest.mark.integration


def _stored(settings: Settings, ids: list[str]) -> set[str]:
    with psycopg.connect(settings.conninfo()) as conn:
        rows = conn.execute(
            "SELECT ping_id FROM pipeline_pings WHERE ping_id = ANY(%s)", (ids,)
        ).fetchall()
    return {r[0] for r in rows}


def _dead_letters(settings: Settings, marker: str) -> list[dict[str, Any]]:
    consumer = KafkaConsumer(
        TOPICS.ping.name + ".dlq",
        bootstrap_servers=settings.kafka_bootstrap_list,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
        group_id=None,
    )
    found = []
    for msg in consumer:
        if marker.encode() in (msg.value or b""):
            found.append({"value": msg.value, "headers": dict(msg.headers)})
    consumer.close()
    return found


def test_pings_flow_from_the_topic_into_the_database(stack: Settings, worker_factory: Any) -> None:
    worker = worker_factory()
    run = uuid.uuid4().hex[:8]
    ids = [f"{run}-{i}" for i in range(50)]
    producer = KafkaProducer(bootstrap_servers=stack.kafka_bootstrap_list, acks="all")
    now = datetime.now(UTC).isoformat()
    for ping_id in ids:
        value = orjson.dumps({"ping_id": ping_id, "sent_at": now})
        producer.send(TOPICS.ping.name, key=ping_id.encode(), value=value)
    # a poison pill in the middle, carrying a phone number, and a redelivered duplicate
    producer.send(TOPICS.ping.name, key=b"bad", value=f"{{{run} call 13812345678".encode())
    producer.send(
        TOPICS.ping.name,
        key=ids[0].encode(),
        value=orjson.dumps({"ping_id": ids[0], "sent_at": now}),
    )
    producer.flush()
    producer.close()

    assert wait_for(lambda: _stored(stack, ids) == set(ids), timeout=90), worker.log()[-3000:]
    assert worker.alive(), "the worker must survive a bad record"

    letters = []
    assert wait_for(lambda: bool(letters.extend(_dead_letters(stack, run)) or letters), 30)
    headers = letters[0]["headers"]
    assert headers["dlq.reason"] == b"malformed_json"
    assert headers["dlq.original.topic"] == TOPICS.ping.name.encode()
    assert b"13812345678" not in letters[0]["value"]
    assert b"5678" in letters[0]["value"]

    with psycopg.connect(stack.conninfo()) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pipeline_pings WHERE ping_id = %s", (ids[0],)
        ).fetchone()
    assert row is not None and row[0] == 1


def _send(settings: Settings, ids: list[str]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_list, acks="all")
    now = datetime.now(UTC).isoformat()
    for ping_id in ids:
        producer.send(
            TOPICS.ping.name,
            key=ping_id.encode(),
            value=orjson.dumps({"ping_id": ping_id, "sent_at": now}),
        )
    producer.flush()
    producer.close()


def test_offsets_wait_for_the_database_through_an_outage_and_a_kill(
    stack: Settings, worker_factory: Any
) -> None:
    """The database goes away, the worker keeps the batch and retries; killed with -9 in
    that state it must not have committed the offsets, so a new worker stores every ping."""
    from citybrain.stack import PostgresService

    run = uuid.uuid4().hex[:8]
    worker = worker_factory()
    _send(stack, [f"{run}-warmup"])
    assert wait_for(lambda: _stored(stack, [f"{run}-warmup"]) != set(), 90), worker.log()[-3000:]

    postgres = PostgresService(stack)
    ids = [f"{run}-{i}" for i in range(50)]
    postgres.down()
    try:
        _send(stack, ids)
        assert wait_for(lambda: "database unavailable, retrying" in worker.log(), 30)
        worker.kill()
    finally:
        postgres.up()
    assert _stored(stack, ids) == set()

    second = worker_factory()
    assert wait_for(lambda: _stored(stack, ids) == set(ids), 120), second.log()[-3000:]
