"""Kafka delivery: a task message on its department's topic `dispatch.<dept>.v1`, keyed
by dispatch id, acknowledged by the broker within the delivery timeout.

When a message may be on the topic already (its worker died between a send and its record,
or the broker's answer never came), the next attempt asks before it sends again (`found`):
- a send of this worker that timed out is still in the producer's buffer, which writes it
  when a leader is back: while it is unanswered nothing is sent again, and once it is
  acknowledged the delivery is recorded as sent (a broker loss put a second copy on the
  topic before this);
- otherwise the topic is read from the delivery's creation for the message id: a kill of
  the worker or of the broker does not put a second copy on the department's topic.
A lookup that cannot read to the end answers "cannot tell", and the attempt is retried
later; the last attempt sends regardless (at least once, never lost)."""

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
#: unanswered sends kept before the answered ones are dropped
MAX_UNANSWERED = 10_000
#: how far before the delivery's creation the lookup starts (clocks of worker and broker)
LOOKUP_MARGIN_MS = 5_000


class KafkaNotifier:
    """Sends to the department topics the worker's channels name."""

    kind = "kafka"

    def __init__(self, ctx: StageContext) -> None:
        self.timeout = ctx.settings.webhook_timeout
        self.bootstrap = ctx.settings.kafka_bootstrap_list
        self.client_options = kafka_python_options(ctx.settings)
        #: sends that timed out, by message id, while the producer may still write them
        self.unanswered: dict[str, asyncio.Future[Any]] = {}
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
            future = await asyncio.wait_for(
                target.send(
                    key=item.delivery.dispatch_id.encode(),
                    value=body,
                    headers={"message-id": item.message_id.encode(), "kind": item.kind.encode()},
                ),
                timeout=self.timeout,
            )
        except TimeoutError:
            return Outcome.connection_error("not taken by the producer in time (no metadata)")
        except Exception as exc:
            return Outcome.connection_error(f"{type(exc).__name__}: {exc}"[:200])
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout=self.timeout)
        except TimeoutError:
            self.hold_unanswered(item.message_id, future)
            return Outcome.timeout("the broker did not acknowledge in time (still buffered)")
        except Exception as exc:
            return Outcome.connection_error(f"{type(exc).__name__}: {exc}"[:200])
        return Outcome.http(200)

    def hold_unanswered(self, message_id: str, future: asyncio.Future[Any]) -> None:
        """Keep an unanswered send's future for the next attempt's question (`found`)."""
        future.add_done_callback(_retrieve)
        if len(self.unanswered) >= MAX_UNANSWERED:  # attempts another worker took over
            for done in [k for k, f in self.unanswered.items() if f.done()]:
                del self.unanswered[done]
        self.unanswered[message_id] = future

    async def found(self, name: str, item: Outgoing) -> bool | None:
        earlier = self.unanswered.get(item.message_id)
        if earlier is not None:
            if not earlier.done():
                return None  # the producer still holds it: sending again would double it
            del self.unanswered[item.message_id]
            if not earlier.cancelled() and earlier.exception() is None:
                return True  # acknowledged after the attempt gave up waiting
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
        except Exception as exc:  # cannot tell: asked again on the next attempt
            log.warning("topic lookup failed", topic=name, error=f"{type(exc).__name__}: {exc}")
            return None

    async def close(self) -> None:
        return None


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a held future's error as seen (asyncio logs an unseen one)."""
    if not future.cancelled():
        future.exception()


async def message_on_topic(
    bootstrap: list[str],
    name: str,
    message_id: str,
    since_ms: int,
    options: dict[str, Any] | None = None,
) -> bool | None:
    """Whether a record with header `message-id` = `message_id` is on topic `name` at or after
    `since_ms` (read up to the end offsets taken at the start; every partition); None when a
    partition could not be read to that end (a leader away). Runs the
    kafka-python client (with `options`: its security) in a thread: a rare lookup, off the
    worker's event loop."""
    return await asyncio.to_thread(
        _message_on_topic, bootstrap, name, message_id, since_ms, options or {}
    )


def _message_on_topic(
    bootstrap: list[str], name: str, message_id: str, since_ms: int, options: dict[str, Any]
) -> bool | None:
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
        return False if not remaining else None  # a fetch that never came: cannot tell
    finally:
        consumer.close()
