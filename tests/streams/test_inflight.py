"""The revocation path with batches in flight (issue 18), for each way agents take batches:
every record tracked is either acked or released, and the consumer's wait for in-flight
records (`wait_empty`) ends. No broker: a client-side app, its consumer object and
Faust's own streams, queues and flow control, driven by hand."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import faust
import pytest
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from citybrain.streams.app import App
from citybrain.streams.batches import BatchTopic, Pipeline, RecordBatch
from citybrain.streams.inflight import ReleasingQueue, release
from citybrain.streams.take import take_ready

TOPIC = "events.v1"
TPART = TP(TOPIC, 3)


def _app(cls: type[faust.App] = App) -> Any:
    app = cls(f"inflight-{cls.__name__}", broker="kafka://127.0.0.1:1")  # never connects
    app.flow_control.resume()
    app.topics.acking_topics.add(TOPIC)  # as the conductor does for the topics agents read
    return app


def _message(app: Any, offset: int, readers: int = 1) -> ConsumerMessage:
    message = ConsumerMessage(
        TOPIC,
        3,
        offset,
        0.0,
        0,
        [],
        b"k",
        b"v",
        None,
        1,
        1,
        generation_id=app.consumer_generation_id,
    )
    message.incref(readers)  # the conductor counts one reference per channel
    return message


def _event(app: Any, message: ConsumerMessage) -> faust.Event:
    return faust.Event(app, b"k", b"v", [], message)


def _revoke(app: Any) -> None:
    """What Faust does first when partitions are revoked (`App._on_partitions_revoked`)."""
    app.flow_control.suspend()
    app.flow_control.clear()


async def _wait_empty(app: Any, timeout: float = 3.0) -> bool:
    """Whether the consumer's wait for in-flight records ended within `timeout`. (Faust's
    wait swallows cancellation, so a wait still going is ended by stopping the consumer.)"""
    consumer = app.consumer
    task = asyncio.ensure_future(consumer.wait_empty())
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        consumer._stopped.set()
        await asyncio.wait_for(task, 5)
        consumer._stopped.clear()
    return bool(done)


def _acked(app: Any) -> list[int]:
    return sorted(app.consumer._acked[TPART])


async def _shared_event_one_reader_behind(cls: type[faust.App]) -> tuple[Any, Any, list[Any]]:
    """events.v1 is read by two agents: one takes and acks a record, keeping its last batch
    (as an agent's loop variables do), the other has the same event still queued when the
    partitions are revoked."""
    app = _app(cls)
    persist = app.stream(app.channel().clone(is_iterator=True))
    route = app.stream(app.channel().clone(is_iterator=True))
    message = _message(app, 23874, readers=2)
    event = _event(app, message)
    persist.channel.queue.put_nowait(event)
    route.channel.queue.put_nowait(event)
    kept: list[Any] = []
    took = asyncio.Event()

    async def persist_agent() -> None:
        await persist.maybe_start()
        async for batch in take_ready(persist, 100, within=0.05):
            kept.append(batch)
            took.set()

    task = asyncio.ensure_future(persist_agent())
    await asyncio.wait_for(took.wait(), 3)
    await asyncio.sleep(0.05)  # the batch is acked when the agent asks for the next one
    assert message.refcount == 1 and message in app.consumer._unacked_messages
    _revoke(app)
    return app, message, [task, persist, kept]


def test_a_shared_event_dropped_from_one_queue_is_released_and_the_revocation_goes_on() -> None:
    async def run() -> None:
        app, message, held = await _shared_event_one_reader_behind(App)
        assert await _wait_empty(app)
        assert message not in app.consumer._unacked_messages
        assert _acked(app) == []  # released, not acked: read again from the committed offset
        held[0].cancel()

    asyncio.run(run())


def test_with_faust_own_queues_the_same_revocation_waits_forever() -> None:
    """The cause, on Faust's own queue: the message keeps one reference nobody will give
    back, and the agent that acked its copy still holds it."""

    async def run() -> None:
        app, message, held = await _shared_event_one_reader_behind(faust.App)
        assert not await _wait_empty(app, timeout=1.5)
        assert message in app.consumer._unacked_messages and message.refcount == 1
        held[0].cancel()

    asyncio.run(run())


def test_take_ready_releases_what_it_took_but_did_not_hand_over_at_a_revocation() -> None:
    async def run() -> None:
        app = _app()
        stream = app.stream(app.channel().clone(is_iterator=True))
        messages = [_message(app, n) for n in range(3)]
        batches: list[list[int]] = []

        async def agent() -> None:
            await stream.maybe_start()
            async for batch in take_ready(stream, 100, within=30.0):
                batches.append([e.message.offset for e in batch])

        task = asyncio.ensure_future(agent())
        await asyncio.sleep(0.05)
        # the stream takes one event per turn of the loop; while more are queued, the batch
        # waits for them (or for `within`, 30 s): revoked when it holds two
        for m in messages:
            stream.channel.queue.put_nowait(_event(app, m))
        while len(app.consumer._unacked_messages) < 2:
            await asyncio.sleep(0)
        _revoke(app)
        assert await _wait_empty(app)
        assert batches == [] and _acked(app) == []
        task.cancel()

    asyncio.run(run())


def _body_raises(batch: list[Any]) -> None:
    raise RuntimeError("the body failed")


def _body_ok(batch: list[Any]) -> None:
    pass


@pytest.mark.parametrize(
    ("body", "acked"), [(_body_ok, [0, 1]), (_body_raises, [])], ids=["body returns", "body raises"]
)
def test_take_ready_acks_a_finished_batch_and_releases_a_failed_one(
    body: Callable[[list[Any]], None], acked: list[int]
) -> None:
    async def run() -> None:
        app = _app()
        stream = app.stream(app.channel().clone(is_iterator=True))
        for n in range(2):
            stream.channel.queue.put_nowait(_event(app, _message(app, n)))

        async def agent() -> None:
            await stream.maybe_start()
            async for batch in take_ready(stream, 2, within=0.05):
                body(batch)

        task = asyncio.ensure_future(agent())
        await asyncio.sleep(0.3)
        assert await _wait_empty(app)
        assert _acked(app) == acked
        task.cancel()

    asyncio.run(run())


async def _record_batches(app: Any, records: list[ConsumerMessage]) -> AsyncIterator[RecordBatch]:
    yield RecordBatch(records)
    await asyncio.Event().wait()  # no more


@pytest.mark.parametrize("outcome", ["returns", "raises", "abandoned"])
def test_batch_topic_batches_are_acked_after_the_body_or_released(outcome: str) -> None:
    async def run() -> None:
        app = _app()
        topic = BatchTopic(app, topics=[TOPIC])
        records = [_message(app, n) for n in range(3)]
        gen = topic.batches(_record_batches(app, records))  # type: ignore[arg-type]
        batch = await gen.__anext__()
        assert batch == records and records[-1] in app.consumer._unacked_messages
        _revoke(app)  # the batch is in the agent's body: the revocation waits for it
        assert not await _wait_empty(app, timeout=0.3)
        if outcome == "returns":
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(gen.__anext__(), 0.1)
            expected = [0, 1, 2]
        elif outcome == "raises":
            with pytest.raises(RuntimeError):
                await gen.athrow(RuntimeError("the body failed"))
            expected = []
        else:
            await gen.aclose()
            expected = []
        assert await _wait_empty(app)
        assert _acked(app) == expected

    asyncio.run(run())


def test_a_pipeline_batch_cancelled_before_it_finished_is_released() -> None:
    async def run() -> None:
        app = _app()
        pipeline = Pipeline(app.consumer, "test")
        records = [_message(app, n) for n in range(2)]
        app.consumer._unacked_messages.add(records[-1])
        started = asyncio.Event()

        async def finish() -> None:
            started.set()
            await asyncio.Event().wait()  # the database never answers

        await pipeline.submit(records, finish)
        await started.wait()
        assert pipeline.pending is not None
        pipeline.pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pipeline.drain()
        assert await _wait_empty(app)
        assert _acked(app) == []

    asyncio.run(run())


def test_a_put_cancelled_by_the_revocation_releases_its_event() -> None:
    async def run() -> None:
        app = _app()
        queue = app.FlowControlQueue(maxsize=1, clear_on_resume=True)
        assert isinstance(queue, ReleasingQueue)
        first, second = _message(app, 0), _message(app, 1)
        app.consumer._unacked_messages.add(second)  # another reader took its other copy
        queue.put_nowait(_event(app, first))
        put: Awaitable[None] = asyncio.ensure_future(queue.put(_event(app, second)))
        await asyncio.sleep(0.01)  # waiting: the queue is full
        _revoke(app)
        with pytest.raises(asyncio.CancelledError):
            await put
        assert second.acked and second not in app.consumer._unacked_messages
        assert first.acked  # cleared from the queue

    asyncio.run(run())


def test_an_event_a_stream_will_skip_is_released_when_it_is_taken() -> None:
    async def run() -> None:
        app = _app()
        queue = app.FlowControlQueue(maxsize=10)
        stale = _message(app, 0)
        stale.generation_id = app.consumer_generation_id - 1  # fetched before a rebalance
        current = _message(app, 1)
        queue.put_nowait(_event(app, stale))
        queue.put_nowait(_event(app, current))
        queue.get_nowait()
        assert await queue.get() is not None
        assert stale.acked and not current.acked

    asyncio.run(run())


def test_a_released_message_is_never_acked_later() -> None:
    async def run() -> None:
        app = _app()
        message = _message(app, 7, readers=2)
        app.consumer._unacked_messages.add(message)
        assert release(app.consumer, message)
        assert not release(app.consumer, message)
        message.ack(app.consumer)
        message.ack(app.consumer)  # the other reader finishes late: its ack changes nothing
        assert _acked(app) == [] and message not in app.consumer._unacked_messages

    asyncio.run(run())
