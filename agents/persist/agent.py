"""Stage `persist` (events): events.v1 -> the events hypertable, one idempotent batch write
per batch; offsets acknowledged after the transaction.

A message that makes no row is dead-lettered (`schema_violation`); a batch the database
refuses is written again row by row and the row it refuses is dead-lettered
(`storage_rejected`) by the stage helper. `CITYBRAIN_PERSIST_CONCURRENCY` runs several
actors of the agent, each writing its own batches: a batch may then be acked before an
older one, and the consumer commits only up to the oldest batch not yet acked
(`streams.transport.Consumer`, faust-streaming issue 606).

Fault injection (tests and `citybrain chaos` only, off by default): with
`CITYBRAIN_FAULT_SLOW_EVENT_ID` set, the batch holding that event sleeps
`CITYBRAIN_FAULT_SLOW_SECONDS` before it is written."""

from __future__ import annotations

import asyncio

from faust.types import Message

from citybrain.agents.context import StageContext
from citybrain.agents.persist.store import write_events
from citybrain.core.event_rows import Row, event_row_of
from citybrain.logs import get_logger
from citybrain.settings import Settings
from citybrain.streams.dlq import declare_dead_letter_topics
from citybrain.streams.stage import Batch, Stage, value_of
from citybrain.streams.topics import TOPICS, topic

STAGE = "persist"
log = get_logger(__name__)


def decode(record: Message) -> Row:
    return event_row_of(value_of(record))


async def fault_slow_event(settings: Settings, batch: Batch[Row]) -> None:
    """The fault-injection hook: sleep when the batch holds the slow event (off: no id)."""
    slow = settings.fault_slow_event_id
    if slow is None:
        return
    for row, position in zip(batch.items, batch.positions, strict=True):
        if row[0] == slow:
            record = batch.records[position]
            log.warning(
                "fault injection: slow event",
                event_id=slow,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                seconds=settings.fault_slow_seconds,
            )
            await asyncio.sleep(settings.fault_slow_seconds)
            return


def install(ctx: StageContext) -> None:
    app, settings = ctx.app, ctx.settings
    declare_dead_letter_topics(app, TOPICS.events.name)

    async def persist(batch: Batch[Row]) -> None:
        await fault_slow_event(settings, batch)
        await write_events(settings, batch.items)

    Stage(app, STAGE).agent(
        topic(app, TOPICS.events),
        name="persist-events",
        decode=decode,
        process=persist,
        isolate="storage_rejected",
        max_records=2000,
        within=settings.batch_wait,
        concurrency=settings.persist_concurrency,
    )
