"""The Kafka notifier's lookup on the real broker: after a worker died mid-delivery, the
message is found on the department topic by its `message-id` header (any partition, from a
time on), and a message that never arrived is not."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from citybrain.agents.dispatch.notify.kafka import message_on_topic
from citybrain.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def department_topic(stack: Settings) -> str:
    name = f"dispatch.lookup-{uuid.uuid4().hex[:8]}.v1"
    admin = KafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap_list)
    try:
        admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])
    finally:
        admin.close()
    return name


def test_a_sent_message_is_found_by_its_id_and_no_other_is(
    stack: Settings, department_topic: str
) -> None:
    before_ms = int(time.time() * 1000)
    producer = KafkaProducer(bootstrap_servers=stack.kafka_bootstrap_list, acks="all")
    for n in range(30):  # other messages on every partition around it
        producer.send(
            department_topic,
            key=f"dispatch-{n}".encode(),
            value=b"{}",
            headers=[("message-id", f"other-{n}".encode()), ("kind", b"task.created")],
        )
    producer.send(
        department_topic,
        key=b"dispatch-x",
        value=b"{}",
        headers=[("message-id", b"wanted"), ("kind", b"task.created")],
    )
    producer.flush()
    producer.close()
    bootstrap = stack.kafka_bootstrap_list

    def on_topic(message_id: str, since_ms: int) -> bool | None:
        return asyncio.run(message_on_topic(bootstrap, department_topic, message_id, since_ms))

    assert on_topic("wanted", before_ms - 5_000)
    assert on_topic("other-29", before_ms - 5_000)
    assert not on_topic("never-sent", before_ms - 5_000)
    assert not on_topic("wanted", int(time.time() * 1000) + 60_000)  # only after it


def test_a_topic_that_does_not_exist_holds_nothing(stack: Settings) -> None:
    name = f"dispatch.absent-{uuid.uuid4().hex[:8]}.v1"
    found = asyncio.run(message_on_topic(stack.kafka_bootstrap_list, name, "x", 0))
    assert found is False
