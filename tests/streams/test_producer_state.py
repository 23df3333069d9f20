"""The watchdog's view of the producer: the batches a flush waits for, per partition, with
the leader the client knows, read from a real (not started) aiokafka producer."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.structs import TopicPartition

from citybrain.streams.producer_state import producer_state


def test_nothing_is_reported_before_the_producer_exists() -> None:
    assert producer_state(None) == {}


def test_a_queued_batch_is_named_with_its_partition_and_unknown_leader() -> None:
    async def state() -> dict[str, Any]:
        producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:1")  # never started
        accumulator = producer._message_accumulator
        tp = TopicPartition("dispatch.police.v1", 2)
        accumulator._append_batch(accumulator.create_builder(), tp)  # as a send would
        return producer_state(producer)

    found = asyncio.run(state())
    assert found["producer_queued"] == ["dispatch.police.v1[2] batches=1 leader=None"]
    assert found["producer_queued_partitions"] == 1
    assert found["producer_sent_unanswered"] == []
    assert found["producer_muted"] == [] and found["producer_in_flight_nodes"] == []


def test_an_unreadable_producer_gives_an_error_entry_not_a_failure() -> None:
    assert "producer_state_error" in producer_state(object())
