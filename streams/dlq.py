"""Dead letters: a rejected record goes to `<topic>.dlq` with why and where it came from.

Headers: stage, error class, error message (phone numbers masked), feed, and the original
topic, partition and offset. The value is the original bytes, unless they hold a phone
number in clear, in which case they are masked too.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING

from citybrain.metrics import DEAD_LETTERS, RECORDS
from citybrain.privacy import mask_phones_in_text

if TYPE_CHECKING:
    import faust
    from faust.types import Message

    from citybrain.streams.app import App


#: Dead letters keep at most this much of the original value (the broker's limit is ~1 MB;
#: a record rejected for being too large must still fit in its dead letter).
MAX_DEAD_LETTER_VALUE = 256 * 1024


def dlq_topic_name(topic: str) -> str:
    """The dead-letter topic of a topic."""
    return f"{topic}.dlq"


def dead_letter_headers(
    *,
    stage: str,
    error: BaseException,
    topic: str,
    partition: int,
    offset: int,
    feed: str = "",
) -> list[tuple[str, bytes]]:
    """The headers that explain a dead letter (pure)."""
    message = mask_phones_in_text(str(error))[:2000]
    return [
        ("dlq.stage", stage.encode()),
        ("dlq.error.class", type(error).__name__.encode()),
        ("dlq.error.message", message.encode()),
        ("dlq.feed", feed.encode()),
        ("dlq.original.topic", topic.encode()),
        ("dlq.original.partition", str(partition).encode()),
        ("dlq.original.offset", str(offset).encode()),
    ]


def delivery_dead_letter_headers(
    *, stage: str, destination: str, attempts: int, error: str
) -> list[tuple[str, bytes]]:
    """The headers of a delivery that failed for good (pure; `dispatch.deliveries.dlq`,
    schema `schemas/json/dead_letter_headers.v1.json`): the standard names, plus where it
    was to go and how often it was tried."""
    return [
        ("dlq.stage", stage.encode()),
        ("dlq.reason", b"delivery_failed"),
        ("dlq.error.message", mask_phones_in_text(error)[:2000].encode()),
        ("dlq.destination", destination.encode()),
        ("dlq.attempts", str(attempts).encode()),
    ]


def bridged_dead_letter_headers(
    *, reason: str, error: BaseException, feed: str, mqtt_topic: str, qos: int, client_id: str
) -> list[tuple[str, bytes]]:
    """The headers of a message the MQTT bridge could not write to its raw topic (pure;
    `dead_letter_headers.v1.json`, "a bridged message"): the standard names, with where it
    came from on the MQTT side instead of a Kafka topic, partition and offset."""
    return [
        ("dlq.stage", b"bridge"),
        ("dlq.reason", reason.encode()),
        ("dlq.error.class", type(error).__name__.encode()),
        ("dlq.error.message", mask_phones_in_text(str(error))[:2000].encode()),
        ("dlq.feed", feed.encode()),
        ("dlq.mqtt.topic", mqtt_topic.encode()),
        ("dlq.mqtt.qos", str(qos).encode()),
        ("dlq.mqtt.client_id", client_id.encode()),
    ]


def mask_payload(value: bytes | None) -> bytes | None:
    """The original payload with phone numbers masked (undecodable bytes kept as they are)."""
    if value is None:
        return None
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return value
    masked = mask_phones_in_text(text)
    return value if masked == text else masked.encode("utf-8")


def declare_dead_letter_topics(app: App, *topic_names: str) -> None:
    """Create the dead-letter topics when the worker starts, before the first reject, with
    the app policy's partitions, replicas and `min.insync.replicas` for dead letters."""
    policy = app.policy

    @app.task(on_leader=False)
    async def _declare() -> None:
        for name in topic_names:
            dead_letters = app.topic(
                dlq_topic_name(name),
                partitions=policy.dead_letter_partitions,
                config=policy.config(),
            )
            await dead_letters.maybe_declare()


async def queue_dead_letter(
    app: faust.App,
    record: faust.EventT | Message,
    *,
    stage: str,
    error: BaseException,
    reason: str,
    feed: str = "",
) -> Awaitable[None]:
    """Hand one rejected record to the producer; returns what waits for the broker's
    acknowledgement and then counts it. A batch's dead letters go out together and are
    waited for together: one round trip each, in turn, made a flood of bad records (a
    gateway's clock gone wrong) crawl at a few hundred a second."""
    message: Message = record.message if hasattr(record, "message") else record
    headers = dead_letter_headers(
        stage=stage,
        error=error,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        feed=feed,
    )
    headers.append(("dlq.reason", reason.encode()))
    value = mask_payload(message.value)
    if value is not None and len(value) > MAX_DEAD_LETTER_VALUE:
        headers.append(("dlq.value.truncated_from", str(len(value)).encode()))
        value = value[:MAX_DEAD_LETTER_VALUE]
    acked = await app.producer.send(
        dlq_topic_name(message.topic),
        key=message.key,
        value=value,
        partition=None,
        timestamp=None,
        headers=headers,
    )

    async def counted() -> None:
        await acked
        DEAD_LETTERS.labels(stage, reason).inc()
        RECORDS.labels(stage, "dead_letter").inc()

    return counted()
