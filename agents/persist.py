"""Stage `persist` (events): events.v1 -> the events hypertable, one idempotent batch write
per batch; offsets acknowledged after the transaction.

`CITYBRAIN_PERSIST_CONCURRENCY` runs several actors of the agent, each writing its own
batches: a batch may then be acked before an older one, and the consumer commits only up to
the oldest batch not yet acked (`streams.transport.Consumer`, faust-streaming issue 606).

Fault injection (tests and `citybrain chaos` only, off by default): with
`CITYBRAIN_FAULT_SLOW_EVENT_ID` set, the batch holding that event sleeps
`CITYBRAIN_FAULT_SLOW_SECONDS` before it is written."""

from __future__ import annotations

import asyncio
import time
from functools import partial
from typing import Any

import faust

from citybrain.logs import get_logger
from citybrain.metrics import BATCH_SECONDS, RECORDS
from citybrain.schemas.events import CanonicalEvent
from citybrain.schemas.tables import EVENTS
from citybrain.settings import Settings, get_settings
from citybrain.streams.app import app
from citybrain.streams.db import get_writer
from citybrain.streams.dlq import declare_dead_letter_topics, send_dead_letter
from citybrain.streams.retry import retry_transient
from citybrain.streams.take import take_ready
from citybrain.streams.topics import TOPICS, topic

STAGE = "persist"
log = get_logger(__name__)
events_topic = topic(app, TOPICS.events)
declare_dead_letter_topics(app, TOPICS.events.name)


def event_row(e: CanonicalEvent) -> tuple[Any, ...]:
    """A canonical event as a row of the events table (pure)."""
    loc = e.location
    attributes = dict(e.attributes)
    if loc.jurisdiction:
        attributes["jurisdiction_all"] = loc.jurisdiction
    if e.kind != "report":
        attributes["kind"] = e.kind
    return (
        e.event_id,
        e.observed_at,
        e.received_at,
        e.source_kind,
        e.feed,
        e.category,
        e.severity,
        loc.lon,
        loc.lat,
        loc.source_crs,
        loc.status,
        loc.district,
        loc.street,
        loc.community,
        loc.grid_cell,
        ",".join(f"{k}:{v}" for k, v in sorted(loc.jurisdiction.items())) or None,
        loc.device_id,
        loc.address,
        e.text,
        attributes,
        {
            "topic": e.raw_ref.topic,
            "partition": e.raw_ref.partition,
            "offset": e.raw_ref.offset,
            "kind": e.kind,
        },
    )


async def _write(settings: Settings, rows: list[tuple[Any, ...]]) -> None:
    writer = await get_writer(settings)
    await writer.write(EVENTS, rows)


async def _fault_slow_event(settings: Settings, rows: list[Any], sources: list[Any]) -> None:
    """The fault-injection hook: sleep when the batch holds the slow event (off: no id)."""
    slow = settings.fault_slow_event_id
    if slow is None:
        return
    for row, event in zip(rows, sources, strict=True):
        if row[0] == slow:
            log.warning(
                "fault injection: slow event",
                event_id=slow,
                topic=event.message.topic,
                partition=event.message.partition,
                offset=event.message.offset,
                seconds=settings.fault_slow_seconds,
            )
            await asyncio.sleep(settings.fault_slow_seconds)
            return


@app.agent(events_topic, name="persist-events", concurrency=get_settings().persist_concurrency)
async def persist_events(stream: faust.StreamT[bytes]) -> None:
    settings = get_settings()
    async for events in take_ready(stream, 2000, within=settings.batch_wait):
        started = time.perf_counter()
        rows = []
        sources = []
        for event in events:
            try:
                rows.append(event_row(CanonicalEvent.from_json(event.message.value)))
                sources.append(event)
            except Exception as exc:  # any record that does not make a row: a dead letter
                await send_dead_letter(
                    app, event, stage=STAGE, error=exc, reason="schema_violation"
                )
        if rows:
            await _fault_slow_event(settings, rows, sources)
            stored = len(rows)
            try:
                await retry_transient(partial(_write, settings, rows), what=STAGE)
            except Exception as exc:  # transient errors were retried inside: not those
                # one row the database (or the driver) refuses must not stop the stage: find
                # it (row by row, a rare path), dead-letter it, store the rest
                log.warning("batch refused by the database; isolating", error=str(exc))
                stored = 0
                for event, row in zip(sources, rows, strict=True):
                    try:
                        await retry_transient(partial(_write, settings, [row]), what=STAGE)
                        stored += 1
                    except Exception as refused:
                        await send_dead_letter(
                            app, event, stage=STAGE, error=refused, reason="storage_rejected"
                        )
            RECORDS.labels(STAGE, "ok").inc(stored)
        BATCH_SECONDS.labels(STAGE).observe(time.perf_counter() - started)
