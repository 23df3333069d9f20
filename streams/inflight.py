"""Records in flight: tracked while a stage holds them, then acked or released, never left.

Faust's consumer keeps every record a stream has taken in `_unacked_messages`, and a
rebalance or a stop waits (`Consumer.wait_empty`) until that set is empty. A record read
by two agents (events.v1: `persist-events` and `correlate-route`) is one message with a
reference count of two, handed to both agents' queues as one event; it is acked when both
have acked it. Faust drops queued events at a rebalance (`flow_control.clear()` empties
every agent's queue and cancels the puts waiting on a full one) and a stream skips an event
fetched before the rebalance, in both cases without giving the message's reference back.
Faust counts on the garbage collector: the set holds messages weakly, so a dropped message
that nothing references any more leaves it. A batching stage does reference it: the agent
that took the other copy keeps its last batch (its loop variables) until the next batch
comes, and no batch comes while the rebalance waits, so the rebalance waited forever for a
message one agent had acked and the other would never see (issue 18).

Here a dropped event is *released*: its message is marked done without its offset being
acknowledged, and leaves the in-flight set. Nothing waits for it, and nothing commits past
it: the commit rule (`streams.transport.next_commit`) stops at the first offset not acked,
so the record is read again from the committed offset by whoever owns the partition next,
and the stages' idempotent sinks absorb what had been done with it. A later ack of a
released message changes nothing (Faust's acks skip a message marked done).

`ReleasingQueue` is the queue of every agent's channel (`streams.app.App`): it releases what
a rebalance clears, what a cancelled put drops, and what a stream will skip.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from faust.types import EventT, Message
from faust.types.tuples import ack_lock
from mode.utils.queues import ThrowableQueue

from citybrain.metrics import RELEASED


def _give_up(consumer: Any, message: Message) -> bool:
    with ack_lock:
        if message.acked:
            return False
        message.acked = True  # no stream's ack counts any more: its offset stays unacked
        consumer._unacked_messages.discard(message)
    return True


def release(consumer: Any, message: Message) -> bool:
    """Give up a message without acknowledging its offset (see the module doc). False when
    it was acked or released already."""
    if not _give_up(consumer, message):
        return False
    RELEASED.labels(message.topic).inc()
    return True


def release_all(consumer: Any, messages: Iterable[Message]) -> int:
    """Release several messages (a batch: counted once per topic); how many were still in
    flight."""
    per_topic: dict[str, int] = {}
    for message in messages:
        if _give_up(consumer, message):
            per_topic[message.topic] = per_topic.get(message.topic, 0) + 1
    for topic, count in per_topic.items():
        RELEASED.labels(topic).inc(count)
    return sum(per_topic.values())


def track(consumer: Any, records: list[Message]) -> None:
    """Mark a batch as in flight: a rebalance or a stop waits until it is acked.

    Its last record stands for the whole batch (`ack` acknowledges it last), which spares a
    weak-set insertion per record."""
    last = records[-1]
    if not last.tracked:
        last.tracked = True
        consumer._unacked_messages.add(last)


def ack(consumer: Any, records: list[Message]) -> None:
    """Acknowledge a batch, in order (so its tracked last record last): the offsets may
    be committed (the contiguous ones)."""
    consumer_ack = consumer.ack
    for message in records:
        consumer_ack(message)


def is_stale(app: Any, message: Message) -> bool:
    """Whether a stream drops this message unprocessed: fetched before the last rebalance,
    or arriving while the flow is suspended for one (Faust's own test, `Stream.__aiter__`)."""
    return not app.flow_control.is_active() or message.generation_id != app.consumer_generation_id


class ReleasingQueue(ThrowableQueue):
    """An agent channel's queue that releases the messages of the events it drops."""

    def __init__(self, app: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app = app

    def _release(self, value: Any) -> None:
        if isinstance(value, EventT):
            release(self.app.consumer, value.message)

    def clear(self) -> None:
        """Drop what is queued (a rebalance or a stop), releasing it; cancelled puts
        release theirs in `put`."""
        dropped = list(self._queue)  # type: ignore[attr-defined]
        super().clear()
        for value in dropped:
            self._release(value)

    async def put(self, value: Any) -> None:
        try:
            await super().put(value)
        except asyncio.CancelledError:
            self._release(value)  # a rebalance cleared the queue and cancelled this put
            raise

    def _checked(self, value: Any) -> Any:
        # the stream skips a stale event without giving back its reference: release it
        if isinstance(value, EventT) and is_stale(self.app, value.message):
            release(self.app.consumer, value.message)
        return value

    async def get(self) -> Any:
        return self._checked(await super().get())

    def get_nowait(self) -> Any:
        return self._checked(super().get_nowait())
