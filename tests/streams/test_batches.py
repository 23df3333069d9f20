"""Batch delivery, the parts without a broker: the closed-batch queue pauses the
partitions that keep closing batches and resumes them as the agent drains it; an open
batch closes when full or when its wait runs out; eager starts finish in place or hand
over the rest. (Through a real broker: tests/agents/normalize/test_agent.py and
tests/faults.)"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from faust.types import TP
from mode.utils.queues import FlowControlEvent

from citybrain.streams.batches import (
    PAUSE_AT,
    RESUME_AT,
    BatchQueue,
    Pipeline,
    RecordBatch,
    _OpenBatch,
)
from citybrain.streams.transport import start_eagerly


class Partitions:
    """What the queue asks of Faust's consumer: which partitions to stop and start fetching."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def on_buffer_full(self, tp: TP) -> None:
        self.calls.append(("pause", tp.partition))

    def on_buffer_drop(self, tp: TP) -> None:
        self.calls.append(("resume", tp.partition))


def _queue(partitions: Partitions) -> BatchQueue:
    return BatchQueue(
        partitions, maxsize=4, flow_control=FlowControlEvent(initially_suspended=False)
    )


def test_partitions_are_paused_while_batches_pile_up_and_resumed_as_they_drain() -> None:
    async def scenario() -> list[tuple[str, int]]:
        partitions = Partitions()
        queue = _queue(partitions)
        for n in range(PAUSE_AT + 1):
            queue.force_put_nowait(RecordBatch([]))
            if queue.qsize() >= PAUSE_AT:
                queue.pause(TP("raw.iot.x", n))
        queue.pause(TP("raw.iot.x", 2))  # twice: one pause
        while queue.qsize() > RESUME_AT + 1:
            queue.get_nowait()
        assert ("resume", 1) not in partitions.calls  # still more than RESUME_AT queued
        queue.get_nowait()
        return partitions.calls

    calls = asyncio.run(scenario())
    assert calls == [("pause", 1), ("pause", 2), ("resume", 1), ("resume", 2)]


def test_an_agent_never_waits_on_an_empty_queue_with_partitions_paused() -> None:
    async def scenario() -> list[tuple[str, int]]:
        partitions = Partitions()
        queue = _queue(partitions)
        queue.paused[TP("raw.iot.x", 0)] = None  # paused, and then the queue was cleared
        getter = asyncio.ensure_future(queue.get())
        await asyncio.sleep(0)
        calls = list(partitions.calls)
        queue.force_put_nowait(RecordBatch([]))
        await getter
        return calls

    assert asyncio.run(scenario()) == [("resume", 0)]


def test_a_rebalance_clearing_the_queue_resumes_its_partitions() -> None:
    partitions = Partitions()
    queue = _queue(partitions)
    queue.pause(TP("raw.iot.x", 3))
    queue.clear()
    assert partitions.calls == [("pause", 3), ("resume", 3)] and not queue.paused


class _Channel:
    """The two settings an open batch reads from its topic, and its queue."""

    def __init__(self, max_records: int, within: float) -> None:
        self.max_records = max_records
        self.within = within
        self.queue = _queue(Partitions())


@pytest.mark.parametrize(
    ("records", "max_records", "expected"),
    [(3, 3, [3]), (7, 3, [3, 3, 1]), (2, 100, [2])],
)
def test_a_batch_closes_when_full_or_when_its_wait_runs_out(
    records: int, max_records: int, expected: list[int]
) -> None:
    async def scenario() -> list[int]:
        channel = _Channel(max_records, within=0.05)
        batch = _OpenBatch(channel)  # type: ignore[arg-type]
        for n in range(records):
            if batch.add(n):  # type: ignore[arg-type]
                await batch.close()
        await asyncio.sleep(0.15)  # the rest closes when its wait has run out
        sizes = []
        while not channel.queue.empty():
            sizes.append(len(channel.queue.get_nowait()))
        return sizes

    assert asyncio.run(scenario()) == expected


def test_closed_batches_keep_their_order_when_the_queue_is_full() -> None:
    async def scenario() -> list[list[int]]:
        channel = _Channel(2, within=10)
        batch = _OpenBatch(channel)  # type: ignore[arg-type]
        closing = []
        for n in range(12):  # six batches into a queue of four
            if batch.add(n):  # type: ignore[arg-type]
                closing.append(asyncio.ensure_future(batch.close()))
                await asyncio.sleep(0)
        got = []
        while len(got) < 6:
            got.append(list((await channel.queue.get()).records))
        await asyncio.gather(*closing)
        return got

    assert asyncio.run(scenario()) == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9], [10, 11]]


def test_an_idle_agent_gets_the_first_record_at_once_a_busy_one_what_came_meanwhile() -> None:
    async def scenario() -> tuple[list[int], float, list[int]]:
        channel = _Channel(100, within=10)  # the wait alone would hold records for 10 s
        batch = _OpenBatch(channel)  # type: ignore[arg-type]
        channel.queue.opened.append(batch)
        loop = asyncio.get_running_loop()
        started = loop.time()
        getter = asyncio.ensure_future(channel.queue.get())
        await asyncio.sleep(0)  # the agent waits on the empty queue
        if batch.add(0):  # type: ignore[arg-type]
            await batch.close()
        first = list((await getter).records)
        waited = loop.time() - started
        for n in range(1, 6):  # the agent is busy: records gather in the open batch
            if batch.add(n):  # type: ignore[arg-type]
                await batch.close()
        assert channel.queue.empty()
        second = list((await channel.queue.get()).records)  # it asks again: all of them
        return first, waited, second

    first, waited, second = asyncio.run(scenario())
    assert first == [0] and waited < 1
    assert second == [1, 2, 3, 4, 5]


def test_without_close_when_idle_a_batch_waits_its_time() -> None:
    async def scenario() -> bool:
        channel = _Channel(100, within=10)
        channel.queue.close_when_idle = False
        batch = _OpenBatch(channel)  # type: ignore[arg-type]
        channel.queue.opened.append(batch)
        getter = asyncio.ensure_future(channel.queue.get())
        await asyncio.sleep(0)
        batch.add(0)  # type: ignore[arg-type]
        await asyncio.sleep(0.05)
        done = getter.done()
        getter.cancel()
        return done

    assert asyncio.run(scenario()) is False


async def _done() -> str:
    return "in place"


async def _waits(gate: asyncio.Future[str]) -> str:
    return "after " + await gate


def test_a_delivery_that_does_not_wait_finishes_in_place() -> None:
    async def scenario() -> Any:
        return start_eagerly(_done())

    assert asyncio.run(scenario()) is None


def test_a_delivery_that_waits_hands_over_the_rest_which_finishes_or_is_cancelled() -> None:
    async def finishes() -> str:
        gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        rest = start_eagerly(_waits(gate))
        assert rest is not None
        task = asyncio.ensure_future(rest)
        await asyncio.sleep(0)
        gate.set_result("the wait")
        return await task

    async def cancelled() -> bool:
        gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        rest = start_eagerly(_waits(gate))
        assert rest is not None
        task = asyncio.ensure_future(rest)
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return gate.cancelled()  # the cancellation reached the inner wait

    assert asyncio.run(finishes()) == "after the wait"
    assert asyncio.run(cancelled()) is True


class Acks:
    """What a pipeline asks of Faust's consumer: acknowledge records."""

    def __init__(self) -> None:
        self.acked: list[Any] = []

    def ack(self, message: Any) -> None:
        self.acked.append(message)


def test_a_pipeline_finishes_batches_in_order_and_acks_only_what_finished() -> None:
    async def scenario() -> tuple[list[str], list[Any]]:
        consumer = Acks()
        pipeline = Pipeline(consumer, "test")
        log: list[str] = []
        failed_once = asyncio.Event()

        async def finish(name: str) -> None:
            await asyncio.sleep(0.01)
            if name == "b" and not failed_once.is_set():
                failed_once.set()
                log.append("b failed")
                raise RuntimeError("database refused the batch once")
            log.append(f"{name} done")

        await pipeline.submit(["a1", "a2"], lambda: finish("a"))  # type: ignore[list-item]
        assert consumer.acked == []  # not before its finish returned
        await pipeline.submit(["b1"], lambda: finish("b"))  # type: ignore[list-item]
        assert consumer.acked == ["a1", "a2"]  # the previous batch is done before the next
        await pipeline.submit(["c1"], lambda: finish("c"))  # type: ignore[list-item]
        await pipeline.drain()
        return log, consumer.acked

    log, acked = asyncio.run(scenario())
    assert log == ["a done", "b failed", "b done", "c done"]  # b run again, c after it
    assert acked == ["a1", "a2", "b1", "c1"]
