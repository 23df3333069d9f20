"""`take_ready`: Faust's `Stream.take_events`, handing a batch over as soon as it is ready.

Faust's `take_events(max_, within)` yields a batch when `max_` events are buffered or when
`within` seconds have passed since the agent last asked, even if the events came at once:
every stage waits up to `within` for each event, and a report crosses five stages on its
way to a department. Here a batch is also ready when the stream's queue holds no more
events: an idle agent gets an event at once; a busy one (its body is writing the last
batch) finds the events that came meanwhile queued, and takes them all. Batches are as
large as the load makes them, latency as low as the work allows.

An event is acknowledged once the loop body that got it returned (the agent asks for the
next batch). What a batch holds leaves the consumer's in-flight set either way
(`streams.inflight`): events taken but not yet handed over are released when a rebalance
clears the agents' queues (they are read again from the committed offset), and so is a
batch whose body raised or was abandoned, so that a rebalance never waits for a batch
no one will finish.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import faust
from mode.utils.futures import notify

from citybrain.streams.inflight import is_stale, release_all


class _Buffer:
    """The events a stream has taken and not yet handed to its agent. Flow control clears
    it with the agents' queues at a rebalance (it is managed like one): those events are
    released, not processed late for partitions that may have moved."""

    def __init__(self, consumer: Any) -> None:
        self.consumer = consumer
        self.events: list[Any] = []

    def __len__(self) -> int:
        return len(self.events)

    def clear(self) -> None:
        dropped, self.events = self.events, []
        release_all(self.consumer, (e.message for e in dropped))

    def hand_over(self, app: Any) -> list[Any]:
        """Empty the buffer: its current events (those fetched before the last rebalance
        are released instead)."""
        events, self.events = self.events, []
        current: list[Any] = []
        stale: list[Any] = []
        for event in events:
            (stale if is_stale(app, event.message) else current).append(event)
        if stale:
            release_all(self.consumer, (e.message for e in stale))
        return current


def take_ready(stream: faust.StreamT[Any], max_: int, within: float) -> AsyncIterator[list[Any]]:
    """Batches of at most `max_` events: ready when full, when the stream's queue is empty,
    or `within` seconds after the agent asked (whichever comes first)."""
    agen = _take_ready(stream, max_, within)
    # the stream closes it when it stops, as it closes its own take generators
    s: Any = stream
    active: set[Any] = s._active_agens  # a private name: see streams.private_names
    active.add(agen)
    return agen


async def _take_ready(
    stream: faust.StreamT[Any], max_: int, within: float
) -> AsyncGenerator[list[Any], None]:
    s: Any = stream
    buffer = _Buffer(s.app.consumer)
    s.app.flow_control.manage_queue(buffer)  # cleared with the queues at a rebalance
    ready = asyncio.Event()
    consumed = asyncio.Event()
    consuming: asyncio.Future[None] | None = None
    acks_enabled = s.enable_acks
    channel_it = aiter(s.channel)
    queue = s.channel.queue

    async def add_to_buffer(value: Any) -> Any:
        nonlocal consuming
        try:
            if consuming is not None:
                try:
                    await consuming
                finally:
                    consuming = None
            event = s.current_event
            if event is None:
                raise RuntimeError("take_ready found current_event is None")
            buffer.events.append(event)
            if len(buffer) >= max_:
                ready.set()
                consumed.clear()
                await s.wait(consumed)  # never more than max_ in a batch
            elif queue.empty():
                ready.set()  # nothing more has come: hand it over
        except asyncio.CancelledError:  # pragma: no cover
            raise
        except Exception as exc:  # pragma: no cover - Faust's own handling
            s.log.exception("Error adding to take buffer: %r", exc)
            await s.crash(exc)
        return value

    s.enable_acks = False  # acked here, after the body
    s.add_processor(add_to_buffer)
    s._enable_passive(channel_it)
    try:
        while not s.should_stop:
            await s.wait_for_stopped(ready, timeout=within)
            batch = buffer.hand_over(s.app) if buffer.events else []
            if not batch:
                ready.clear()
                consumed.set()
                continue
            consuming = asyncio.get_running_loop().create_future()
            done = False
            try:
                yield batch
                done = True
            finally:
                if done:
                    for event in batch:
                        await s.ack(event)
                else:  # the body raised or the agent stopped: read again, never waited for
                    release_all(s.app.consumer, (e.message for e in batch))
                batch = []
                notify(consuming)
                ready.clear()
                consumed.set()
    finally:
        s.enable_acks = acks_enabled
        s._processors.remove(add_to_buffer)
