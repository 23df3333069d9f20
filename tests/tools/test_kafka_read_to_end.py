"""`citybrain_tools.kafka.read_to_end` on the real broker: the messages written from a
moment on, up to the end offsets of the call, without waiting for the topic to go idle."""

from __future__ import annotations

import time
import uuid

import pytest
from kafka import KafkaConsumer, KafkaProducer

from citybrain.settings import Settings
from citybrain.streams.clients import kafka_python_options
from citybrain_tools.kafka import ensure_topic, messages_after, partitions, read_to_end

pytestmark = pytest.mark.integration


def test_from_a_moment_to_the_end_without_an_idle_wait(stack: Settings) -> None:
    topic = f"test-read-to-end-{uuid.uuid4().hex[:8]}"
    ensure_topic(stack, topic, 2)
    now_ms = int(time.time() * 1000)
    producer = KafkaProducer(
        bootstrap_servers=stack.kafka_bootstrap_list, **kafka_python_options(stack), acks="all"
    )
    # two hours old, then a minute old, on both partitions
    for n, age_ms in enumerate([7_200_000] * 4 + [60_000] * 6):
        producer.send(
            topic, value=f"{n}".encode(), partition=n % 2, timestamp_ms=now_ms - age_ms
        ).get(30)
    producer.close()
    consumer = KafkaConsumer(
        bootstrap_servers=stack.kafka_bootstrap_list,
        **kafka_python_options(stack),
        enable_auto_commit=False,  # and no consumer timeout: waiting for an idle topic
        # would never end (the test's timeout would fail it)
    )
    try:
        tps = partitions(consumer, [topic])
        recent = sorted(int(m.value) for m in read_to_end(consumer, tps, now_ms - 3_600_000))
        every = sorted(int(m.value) for m in read_to_end(consumer, tps))
        later = list(read_to_end(consumer, tps, now_ms + 3_600_000))  # nothing that late
    finally:
        consumer.close()
    assert recent == [4, 5, 6, 7, 8, 9]
    assert every == list(range(10))
    assert later == []
    # after given offsets: partition 0 from its third message (4, 6, 8), partition 1 (not
    # given) from its beginning
    after = sorted(int(m.value) for m in messages_after(stack, [topic], {min(tps): 2}))
    assert after == [1, 3, 4, 5, 6, 7, 8, 9]
