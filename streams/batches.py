"""Batch delivery: an agent takes Kafka records a batch at a time, not one by one.

Faust hands a stream one event per record: it decodes it, queues it, yields to the event
loop, tracks it, runs the sensors and acks it, some 40 µs per record, more than the whole
normalize work of a telemetry reading. The raw feed topics carry tens of thousands of
small records per second, so their agents read a `BatchTopic` instead:

- the conductor appends each record of the topic to the channel's open batch (about a
  microsecond); the batch is closed when it holds `max_records`, `within` seconds after
  its first record, or as soon as the agent asks for a batch and none is waiting (an
  idle agent gets what has come, a busy one finds its next batch filled meanwhile: low
  latency under light traffic, large batches under heavy), and goes on the channel's
  queue as one `RecordBatch`;
- the agent's stream yields `RecordBatch` objects; `BatchTopic.batches(stream)` drops
  the records of an earlier consumer generation (a rebalance happened since they were
  fetched: they are fetched again from the committed offset), tracks the rest as in
  flight, runs the agent's body, and acks every record after it returned.

Everything else is Faust's own: the consumer group, partition assignment and
co-partitioned tables, rebalances (flow control clears the queues, the consumer waits for
tracked records to be acked), offset commits of contiguous acked offsets, changelogs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableSet
from typing import Any

import faust
from faust.transport.conductor import Conductor
from faust.types import TP, AppT, Message
from mode.utils.queues import ThrowableQueue

from citybrain.backoff import backoff_delay
from citybrain.logs import get_logger
from citybrain.streams.inflight import ack, release_all, track

RecordHandler = Callable[[Message], Any]
log = get_logger(__name__)


class RecordBatch:
    """Records of one topic in arrival order (per partition: offset order)."""

    __slots__ = ("records",)

    def __init__(self, records: list[Message]) -> None:
        self.records = records

    def __len__(self) -> int:
        return len(self.records)


class _OpenBatch:
    """The batch a channel is filling: closed when full or when its wait has run out.

    Closed batches are put on the channel's queue in the order they were closed (one lock),
    so a device's records reach the agent in offset order."""

    def __init__(self, channel: BatchTopic) -> None:
        self.channel = channel
        self.records: list[Message] = []
        self.timer: asyncio.TimerHandle | None = None
        self.lock = asyncio.Lock()
        self.closing: set[asyncio.Future[None]] = set()  # closes started by the timer

    def add(self, message: Message) -> bool:
        """Append a record; True when the batch is full and must be closed now."""
        records = self.records
        records.append(message)
        if len(records) == 1:
            loop = asyncio.get_running_loop()
            self.timer = loop.call_later(self.channel.within, self._expire)
        queue = self.channel.queue
        if queue.waiting_agent:
            queue.waiting_agent = False  # the agent waits for work: hand it over now
            return True
        return len(records) >= self.channel.max_records

    def close_nowait(self) -> bool:
        """Put the records gathered so far on the (empty) queue without waiting; False when
        there are none or a close is under way (it keeps the batches in order)."""
        if not self.records or self.lock.locked() or self.channel.queue.full():
            return False
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        records, self.records = self.records, []
        self.channel.queue.force_put_nowait(RecordBatch(records))
        return True

    def _expire(self) -> None:
        self.timer = None
        if self.records:
            task = asyncio.ensure_future(self.close())
            self.closing.add(task)
            task.add_done_callback(self.closing.discard)

    async def close(self, tp: TP | None = None) -> None:
        """Put the records gathered so far on the queue as one batch.

        Once batches pile up (`PAUSE_AT`), the partition whose record closed this one (`tp`)
        is no longer fetched until the agent has caught up (`BatchTopic.batches` resumes
        it), so the other topics' records keep flowing past a busy agent. Only a queue
        that is full even so makes the caller wait."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        records, self.records = self.records, []
        if not records:
            return
        queue = self.channel.queue
        async with self.lock:
            if queue.full():
                try:
                    await queue.put(RecordBatch(records))
                except asyncio.CancelledError:
                    task = asyncio.current_task()
                    if task is not None and task.cancelling():
                        raise
                    # a rebalance cleared the queue and its waiting puts: the records go
                    # with it, to be fetched again from the committed offsets
                return
            queue.force_put_nowait(RecordBatch(records))
            if tp is not None and queue.qsize() >= PAUSE_AT:
                queue.pause(tp)


#: Closed batches waiting for their agent: from PAUSE_AT on, the partitions that close more
#: are paused; at RESUME_AT or fewer they are fetched again; beyond QUEUE_MAX the
#: conductor waits.
PAUSE_AT, RESUME_AT, QUEUE_MAX = 2, 1, 4


class BatchQueue(ThrowableQueue):
    """A batch topic's queue of closed batches, which also owns its partitions' pauses.

    The conductor fills it (`_OpenBatch.close`), the agent's stream empties it; whenever a
    get leaves it at RESUME_AT batches or fewer, the partitions paused meanwhile are fetched
    again. (The queue is the one object both sides share: the agent's stream reads a clone
    of the topic of its own.)"""

    def __init__(self, consumer: Any, close_when_idle: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.consumer = consumer
        # a dict, not a set: partitions resume in the order they were paused
        self.paused: dict[TP, None] = {}
        self.close_when_idle = close_when_idle
        self.opened: list[_OpenBatch] = []  # the open batches of the channels it queues for
        self.waiting_agent = False  # the agent waits on an empty queue

    def pause(self, tp: TP) -> None:
        """Stop fetching a partition (records already fetched are still delivered)."""
        if tp not in self.paused:
            self.paused[tp] = None
            self.consumer.on_buffer_full(tp)

    def resume(self) -> None:
        """Fetch the paused partitions again."""
        for tp in self.paused:
            self.consumer.on_buffer_drop(tp)
        self.paused.clear()

    def _maybe_resume(self) -> None:
        if self.paused and self.qsize() <= RESUME_AT:
            self.resume()

    async def get(self) -> Any:
        self._maybe_resume()  # nothing left to do: never wait with partitions paused
        # no batch waiting: take what has come so far, or the next record as it comes
        idle = self.close_when_idle and self.empty()
        if idle and not any(batch.close_nowait() for batch in self.opened):
            self.waiting_agent = True
        try:
            value = await super().get()
        finally:
            self.waiting_agent = False
        self._maybe_resume()
        return value

    def get_nowait(self) -> Any:
        value = super().get_nowait()
        self._maybe_resume()
        return value

    def clear(self) -> None:
        super().clear()
        self.resume()


class BatchTopic(faust.Topic):
    """A topic whose records reach its agent in `RecordBatch`es (see the module doc)."""

    def __init__(
        self,
        *args: Any,
        max_records: int = 1000,
        within: float = 0.1,
        close_when_idle: bool = True,
        **kwargs: Any,
    ) -> None:
        """`close_when_idle=False`: batches wait their `within` even when the agent is idle
        (fewer, larger batches; latency up to `within`)."""
        kwargs.setdefault("maxsize", QUEUE_MAX)
        super().__init__(*args, **kwargs)
        self.max_records = max_records
        self.within = within
        self.close_when_idle = close_when_idle
        self._open: _OpenBatch | None = None

    @property
    def queue(self) -> BatchQueue:
        if self._queue is None:
            self._queue = BatchQueue(
                self.app.consumer,
                close_when_idle=self.close_when_idle,
                maxsize=self.maxsize or QUEUE_MAX,
                flow_control=self.app.flow_control,
                clear_on_resume=True,
            )
        assert isinstance(self._queue, BatchQueue)
        return self._queue

    def _clone_args(self) -> Mapping[str, Any]:
        return {
            **super()._clone_args(),
            "max_records": self.max_records,
            "within": self.within,
            "close_when_idle": self.close_when_idle,
        }

    @property
    def open_batch(self) -> _OpenBatch:
        if self._open is None:
            self._open = _OpenBatch(self)
            self.queue.opened.append(self._open)
        return self._open

    async def batches(
        self, stream: faust.StreamT[Any], *, acks: bool = True
    ) -> AsyncIterator[list[Message]]:
        """The agent's loop: each batch's current records, acked once the loop body has
        returned. A batch whose body raised, or that was abandoned (the agent stopped), is
        released instead (`streams.inflight`): nothing waits for it, nothing commits past it,
        and it is read again from the committed offset. `acks=False`: the agent acks them
        itself (`Pipeline`)."""
        app = self.app
        consumer = app.consumer
        async for batch in stream:
            generation = app.consumer_generation_id
            records = [m for m in batch.records if m.generation_id == generation]
            if not records or not app.flow_control.is_active():
                continue
            track(consumer, records)
            done = False
            try:
                yield records
                done = True
            finally:
                if not done:
                    release_all(consumer, records)
            if acks:  # the records' effects are stored and sent
                ack(consumer, records)


Finish = Callable[[], Awaitable[None]]


class Pipeline:
    """One batch's output being stored and sent while the agent prepares the next.

    `submit(records, finish)` waits for the previous batch's `finish` (so batches finish in
    order, one at a time), then starts this one's and returns. A batch's records are acked
    only when its `finish` has returned; one that raises is logged and run again, with
    backoff, until it succeeds (a `finish` is idempotent: upserts and at-least-once sends),
    so nothing is acknowledged that was not stored."""

    def __init__(self, consumer: Any, what: str) -> None:
        self.consumer = consumer
        self.what = what
        self.pending: asyncio.Future[None] | None = None

    async def submit(self, records: list[Message], finish: Finish) -> None:
        await self.drain()
        self.pending = asyncio.ensure_future(self._finish(records, finish))

    async def drain(self) -> None:
        """Wait until the batch in flight, if any, is finished and acked."""
        if self.pending is not None:
            pending, self.pending = self.pending, None
            await pending

    async def _finish(self, records: list[Message], finish: Finish) -> None:
        attempt = 0
        while True:
            try:
                await finish()
                break
            except asyncio.CancelledError:
                release_all(self.consumer, records)  # read again from the committed offset
                raise
            except Exception:
                attempt += 1
                delay = backoff_delay(attempt, base=0.5, cap=30.0)
                log.exception("batch not finished, retrying", stage=self.what, attempt=attempt)
                await asyncio.sleep(delay)
        ack(self.consumer, records)


def batch_handler(app: AppT, tp: TP, channels: MutableSet[BatchTopic]) -> RecordHandler:
    """The conductor's callback for one partition of a batch topic."""
    acquire_flow_control = app.flow_control.acquire
    opened = [channel.open_batch for channel in channels]

    async def on_message(message: Message) -> None:
        await acquire_flow_control()
        for batch in opened:
            if batch.add(message):
                await batch.close(tp)

    return on_message


class BatchingConductor(Conductor):
    """Faust's conductor, with batch delivery for the partitions of `BatchTopic`s.

    Its entry point also skips Faust's lock around the partition -> handler lookup while
    nobody holds it (the lock guards the rebuild of that map at subscription time)."""

    def _compile_message_handler(self) -> Any:
        if self.app.client_only:
            return super()._compile_message_handler()
        get_callback_for_tp = self._tp_to_callback.__getitem__
        lock = self._tp_to_callback_lock

        async def on_message(message: Message) -> None:
            if lock.locked():
                async with lock:
                    callback = get_callback_for_tp(message.tp)
            else:
                callback = get_callback_for_tp(message.tp)
            return await callback(message)

        return on_message

    def _build_handler(self, tp: TP, channels: MutableSet[Any]) -> Any:
        batched = {c for c in channels if isinstance(c, BatchTopic)}
        if not batched:
            return super()._build_handler(tp, channels)
        if len(batched) != len(channels):
            raise RuntimeError(
                f"topic {tp.topic} is read both in batches and record by record; "
                "give it one kind of reader"
            )
        return batch_handler(self.app, tp, batched)
