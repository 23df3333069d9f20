"""The stage helper: the one loop every agent runs.

take a batch -> decode each record -> process the batch -> dead letters -> retry -> ack ->
metrics. A stage gives it a topic, a `decode` function (bytes -> its message type; what
raises is dead-lettered as `schema_violation`, or with the error's own `reason`) and a
`process` coroutine that works on the decoded batch and may `reject` some of its items
with a reason. The helper:

- retries `process` while it fails with a transient database error (`streams.retry`): the
  stage stops taking records, nothing is committed, it resumes where it stopped;
- with `isolate="<reason>"`, a batch whose `process` raises anything else is processed
  again one item at a time, and an item that raises on its own is dead-lettered with that
  reason: one bad record never stops a stage (without it, the error stops the agent);
- sends every rejected record to `<topic>.dlq` with the standard headers (`streams.dlq`),
  acknowledged by the broker, before the batch's offsets are acked;
- counts `citybrain_records_total{stage, outcome}` and `citybrain_batch_seconds{stage}`.

A stage never touches a Faust private name nor builds dead-letter headers itself. Batches
come from `take_ready` (events) or, for a `BatchTopic`, from its record batches; with
`pipelined=True` (batch topics only) `process` returns a `finish` coroutine, run while the
next batch is processed (`streams.batches.Pipeline`), and the batch is acked after it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Generic, TypeVar

import faust
from faust.types import Message

from citybrain.logs import get_logger
from citybrain.metrics import BATCH_SECONDS, RECORDS
from citybrain.streams.batches import BatchTopic, Pipeline
from citybrain.streams.dlq import queue_dead_letter
from citybrain.streams.retry import TRANSIENT, retry_transient
from citybrain.streams.take import take_ready

T = TypeVar("T")
R = TypeVar("R")
log = get_logger(__name__)

Finish = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Rejected:
    """A record the stage will not take: its position in the batch and why."""

    position: int
    reason: str
    error: BaseException
    feed: str = ""


@dataclass
class Batch(Generic[T]):
    """One batch: the raw records, the items decoded from them (with each item's position
    among the records) and what was rejected so far."""

    records: list[Message]
    items: list[T] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    #: records that count as `ok` when the stage says so (default: all not rejected)
    counted: int | None = None

    def reject(self, item: int, reason: str, error: BaseException, feed: str = "") -> None:
        """Reject the item at index `item` of `items` (its record goes to the dead letters)."""
        self.rejected.append(Rejected(self.positions[item], reason, error, feed))

    def reject_record(
        self, position: int, reason: str, error: BaseException, feed: str = ""
    ) -> None:
        """Reject the record at `position` of `records`."""
        self.rejected.append(Rejected(position, reason, error, feed))

    async def each(
        self, apply: Callable[[T], Awaitable[R]], reason: Callable[[Exception], str]
    ) -> list[tuple[int, T, R]]:
        """Apply `apply` to each item in turn; an item whose `apply` raises is rejected with
        `reason(error)`, except for a transient database error, which fails the batch (the
        helper retries it: `apply` must be idempotent). The items applied, with results."""
        done: list[tuple[int, T, R]] = []
        for index, item in enumerate(self.items):
            try:
                result = await apply(item)
            except TRANSIENT:
                raise
            except Exception as exc:
                self.reject(index, reason(exc), exc)
                continue
            done.append((index, item, result))
        return done

    def part(self, item: int) -> Batch[T]:
        """A batch of the one item at index `item` (for isolating a failure)."""
        return Batch(self.records, [self.items[item]], [self.positions[item]])

    @property
    def ok(self) -> int:
        """Records neither rejected at decoding nor by the stage (or the stage's count)."""
        if self.counted is not None:
            return self.counted
        return len(self.records) - len({r.position for r in self.rejected})


def decode_batch(records: Sequence[Message], decode: Callable[[Message], T] | None) -> Batch[T]:
    """Decode every record (pure); a record that does not decode is rejected with the
    error's `reason` attribute, or `schema_violation`."""
    batch: Batch[T] = Batch(list(records))
    for position, record in enumerate(records):
        if decode is None:
            batch.items.append(record)  # type: ignore[arg-type]
            batch.positions.append(position)
            continue
        try:
            item = decode(record)
        except Exception as exc:
            reason = getattr(exc, "reason", None)
            batch.reject_record(
                position, reason if isinstance(reason, str) else "schema_violation", exc
            )
            continue
        batch.items.append(item)
        batch.positions.append(position)
    return batch


Process = Callable[[Batch[T]], Awaitable[Any]]


class Stage:
    """A stage's name and app; registers agents that run the helper's loop."""

    def __init__(self, app: faust.App, name: str) -> None:
        self.app = app
        self.name = name

    def agent(
        self,
        channel: faust.TopicT,
        *,
        name: str,
        process: Process[Any],
        decode: Callable[[Message], Any] | None = None,
        max_records: int = 1000,
        within: float = 0.1,
        isolate: str | None = None,
        pipelined: bool = False,
        concurrency: int = 1,
        feed: str = "",
    ) -> None:
        """Register an agent named `name` reading `channel` with this stage's loop."""
        if pipelined and (isolate or not isinstance(channel, BatchTopic)):
            raise TypeError("a pipelined stage reads a BatchTopic and isolates its own failures")
        runner = _Runner(self, process, decode, isolate, feed)

        async def loop(stream: faust.StreamT[Any]) -> None:
            pipeline = Pipeline(self.app.consumer, name) if pipelined else None
            async for records in self._batches(channel, stream, max_records, within, pipelined):
                started = time.perf_counter()
                if pipeline is not None:
                    finish = await runner.prepare(records)
                    await pipeline.submit(records, finish)
                else:
                    await runner.run(records)
                BATCH_SECONDS.labels(self.name).observe(time.perf_counter() - started)

        loop.__name__ = name.replace("-", "_")
        self.app.agent(channel, name=name, concurrency=concurrency)(loop)

    async def _batches(
        self, channel: Any, stream: faust.StreamT[Any], max_: int, within: float, pipelined: bool
    ) -> AsyncIterator[list[Message]]:
        if isinstance(channel, BatchTopic):
            async for records in channel.batches(stream, acks=not pipelined):
                yield records
            return
        async for events in take_ready(stream, max_, within):
            yield [e.message for e in events]

    async def dead_letters(self, batch: Batch[Any]) -> None:
        """Send the batch's rejected records to their dead-letter topics (each once), all
        handed to the producer first, then every acknowledgement waited for."""
        seen: set[int] = set()
        acks = []
        for r in batch.rejected:
            if r.position in seen:
                continue
            seen.add(r.position)
            acks.append(
                await queue_dead_letter(
                    self.app,
                    batch.records[r.position],
                    stage=self.name,
                    error=r.error,
                    reason=r.reason,
                    feed=r.feed,
                )
            )
        if acks:
            await asyncio.gather(*acks)


class _Runner(Generic[T]):
    """process -> retry -> isolate -> dead letters -> count, for one agent."""

    def __init__(
        self,
        stage: Stage,
        process: Process[T],
        decode: Callable[[Message], T] | None,
        isolate: str | None,
        feed: str,
    ) -> None:
        self.stage = stage
        self.process = process
        self.decode = decode
        self.isolate = isolate
        self.feed = feed

    async def run(self, records: list[Message]) -> None:
        batch = decode_batch(records, self.decode)
        if batch.items:
            await self._process(batch)
        await self._close(batch)

    async def prepare(self, records: list[Message]) -> Finish:
        """Pipelined: process now, return what finishes the batch (its own `finish`,
        then the dead letters and the counts)."""
        batch = decode_batch(records, self.decode)
        finish: Finish | None = await self._process(batch) if batch.items else None

        async def done() -> None:
            if finish is not None:
                await finish()
            await self._close(batch)

        return done

    async def _process(self, batch: Batch[T]) -> Any:
        decoded = list(batch.rejected)

        async def attempt() -> Any:
            batch.rejected[:] = decoded  # a retried attempt starts again from the decoding
            return await self.process(batch)

        try:
            return await retry_transient(attempt, what=self.stage.name)
        except Exception:
            if self.isolate is None:
                raise
            log.exception("batch failed; processing it record by record", stage=self.stage.name)
        batch.rejected[:] = decoded
        for index in range(len(batch.items)):
            one = batch.part(index)
            try:
                await retry_transient(partial(self.process, one), what=self.stage.name)
            except Exception as exc:
                batch.reject(index, self.isolate, exc, self.feed)
                continue
            batch.rejected += one.rejected
        return None

    async def _close(self, batch: Batch[T]) -> None:
        await self.stage.dead_letters(batch)
        RECORDS.labels(self.stage.name, "ok").inc(batch.ok)


class EmptyValue(ValueError):
    """A record without a value (a tombstone) where a message was expected."""

    reason = "empty_value"


def value_of(record: Message) -> bytes:
    """A record's value; `EmptyValue` (dead letter `empty_value`) when it has none."""
    if record.value is None:
        raise EmptyValue("the record has no value")
    return record.value


def header(record: Message, name: str) -> bytes | None:
    """One header of a record, without copying the others (Faust gives a list of pairs or
    a dict)."""
    headers = record.headers or ()
    if isinstance(headers, Mapping):
        return headers.get(name)
    return next((value for key, value in headers if key == name), None)
