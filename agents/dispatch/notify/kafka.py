"""Kafka delivery: a task message on its department's topic `dispatch.<dept>.v1`, keyed
by dispatch id, acknowledged by the broker within the delivery timeout.

When a message may be on the topic already (its worker died between a send and its record,
or the broker's answer never came), the next attempt reads the topic from the delivery's
creation for the message id before it sends again (`found`): a kill of the worker or of the
broker does not put a second copy on the department's topic. A lookup that fails or times
out answers "not found", and the message goes again (at least once, never lost)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from citybrain.dispatch.outbox import Outcome
from citybrain.logs import get_logger
from citybrain.streams.clients import kafka_python_options
from citybrain.streams.topics import dispatch_topic_spec, topic

if TYPE_CHECKING:
    from citybrain.agents.context import StageContext
    from citybrain.agents.dispatch.store import Outgoing

log = get_logger(__name__)
#: how far before the delivery's creation the lookup starts (clocks of worker and broker)
LOOKUP_MARGIN_MS = 5_000


class KafkaNotifier:
    """Sends to the department topics the worker's channels name."""

    kind = "kafka"

    def __init__(self, ctx: StageContext) -> None:
        self.timeout = ctx.settings.webhook_timeout
        self.bootstrap = ctx.settings.kafka_bootstrap_list
        self.client_options = kafka_python_options(ctx.settings)
        self.topics: dict[str, Any] = {
            name: topic(ctx.app, dispatch_topic_spec(name.split(".")[1]))
            for name in ctx.channels.kafka_topics()
        }

    async def start(self) -> None:
        for department_topic in self.topics.values():  # before the first send
            await department_topic.maybe_declare()

    async def send(self, name: str, item: Outgoing, body: bytes) -> Outcome:
        target = self.topics.get(name)
        if target is None:
            return Outcome.rejected(f"topic {name} is not declared on this worker")
        try:
            future = await target.send(
                key=item.delivery.dispatch_id.encode(),
                value=body,
                headers={"message-id": item.message_id.encode(), "kind": item.kind.encode()},
            )
            await asyncio.wait_for(future, timeout=self.timeout)
        except TimeoutError:
            return Outcome.timeout("the broker did not acknowledge in time")
        except Exception as exc:
            return Outcome.connection_error(f"{type(exc).__name__}: {exc}"[:200])
        return Outcome.http(200)

    async def found(self, name: str, item: Outgoing) -> bool:
        try:
            return await asyncio.wait_for(
                message_on_topic(
                    self.bootstrap,
                    name,
                    item.message_id,
                    int(item.delivery.created_at.timestamp() * 1000) - LOOKUP_MARGIN_MS,
                    self.client_options,
                ),
                timeout=max(self.timeout, 10.0),
            )
        except Exception as exc:  # cannot tell: send again (at least once)
            log.warning("topic lookup failed", topic=name, error=f"{type(exc).__name__}: {exc}")
            return False

    async def close(self) -> None:
        return None


async def message_on_topic(
    bootstrap: list[str],
    name: str,
    message_id: str,
    since_ms: int,
    options: dict[str, Any] | None = None,
) -> bool:
    """Whether a record with header `message-id` = `message_id` is on topic `name` at or after
    `since_ms` (read up to the end offsets taken at the start; every partition). Runs the
    kafka-python client (with `options`: its security) in a thread: a rare lookup, off the
    worker's event loop."""
    return await asyncio.to_thread(
        _message_on_topic, bootstrap, name, message_id, since_ms, options or {}
    )


def _message_on_topic(
    bootstrap: list[str], name: str, message_id: str, since_ms: int, options: dict[str, Any]
) -> bool:
    from kafka import KafkaConsumer, TopicPartition

    wanted = message_id.encode()
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        consumer_timeout_ms=2000,
        **options,
    )
    try:
        numbers = consumer.partitions_for_topic(name) or set()
        partitions = [TopicPartition(name, n) for n in sorted(numbers)]
        if not partitions:
            return False
        consumer.assign(partitions)
        ends = consumer.end_offsets(partitions)
        starts = consumer.offsets_for_times({tp: since_ms for tp in partitions})
        remaining = set()
        for tp in partitions:
            start = starts.get(tp)
            if start is not None and start.offset < ends[tp]:
                consumer.seek(tp, start.offset)
                remaining.add(tp)
        if not remaining:  # nothing written since: no need to wait for a fetch
            return False
        consumer.pause(*(tp for tp in partitions if tp not in remaining))
        for record in consumer:  # ends after consumer_timeout_ms without records
            tp = TopicPartition(record.topic, record.partition)
            if record.offset < ends[tp] and any(
                k == "message-id" and v == wanted for k, v in record.headers or ()
            ):
                return True
            if consumer.position(tp) >= ends[tp]:
                remaining.discard(tp)
                consumer.pause(tp)
            if not remaining:
                break
        return False
    finally:
        consumer.close()
