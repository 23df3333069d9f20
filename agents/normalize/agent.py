"""Stage `normalize`: one agent per feed. Raw records -> canonical events on events.v1
(and correlate.v1), readings and callers' contacts into the database, rejects to
`<raw topic>.dlq`.

Thin: `citybrain.feeds.pipeline.prepare_batch` decides. The raw topic is read in batches
(`streams.batches.BatchTopic`), pipelined by the stage helper: while batch N+1 is
prepared, batch N's `finish` writes readings and contacts (one transaction) as its events
go out, waits for the broker's acks, stores the devices' alarm states in the feed's table
(changelogged, keyed by device id like the raw topic); then come its dead letters and its
offsets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any

import faust
from faust.types import Message, TableT

from citybrain.agents.context import StageContext
from citybrain.agents.normalize.silence import install_silence_sweep
from citybrain.agents.normalize.store import register_devices, write_readings
from citybrain.feeds.definition import Feed
from citybrain.feeds.pipeline import BatchOutput, RawRecord, prepare_batch
from citybrain.logs import get_logger
from citybrain.streams.batches import BatchTopic
from citybrain.streams.dlq import declare_dead_letter_topics
from citybrain.streams.publish import publish_event
from citybrain.streams.retry import retry_transient
from citybrain.streams.stage import Batch, Finish, Stage
from citybrain.streams.tables import TableView, put_many
from citybrain.streams.topics import TOPICS, topic

STAGE = "normalize"
log = get_logger(__name__)


def install(ctx: StageContext) -> None:
    app = ctx.app
    events_topic = topic(app, TOPICS.events)
    correlate_topic = topic(app, TOPICS.correlate)
    for feed in ctx.feeds:
        _install_feed(ctx, feed, events_topic, correlate_topic)

    async def store_device_registries() -> None:
        """The feeds' device registries into `devices` (the sensors dashboard lists silent
        ones), an idempotent upsert at every start."""
        rows = [
            (d.device_id, feed.name, d.asset_type, d.lon, d.lat, d.installed_on)
            for feed in ctx.feeds
            if feed.devices is not None
            for d in feed.devices.devices.values()
        ]
        if not rows:
            return
        try:
            await register_devices(ctx.settings, rows)
            log.info("device registries stored", devices=len(rows))
        except Exception as exc:
            log.warning("device registries not stored", error=str(exc))

    app.task(store_device_registries, on_leader=False)


def _install_feed(ctx: StageContext, feed: Feed, events: Any, correlate: Any) -> None:
    app, settings = ctx.app, ctx.settings
    # telemetry: large bounded batches, fewer transactions and one state write per device per
    # batch, on the database's bulk lane; reports and alarms: short waits, low latency
    bulk = bool(feed.definition.readings)
    wait = settings.telemetry_batch_wait if bulk else settings.batch_wait
    raw_topic = BatchTopic(
        app,
        topics=[feed.topic],
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.topic_partitions,
        config=app.policy.config(),
        internal=True,  # created at start-up when missing
        max_records=settings.telemetry_batch_max if bulk else settings.report_batch_max,
        within=wait,
    )
    table: TableT | None = None
    if feed.definition.alarms:
        table = app.Table(
            f"alarm-state-{feed.name}",
            default=None,
            schema=faust.Schema(key_type=str, key_serializer="raw", value_serializer="json"),
            partitions=settings.topic_partitions,
            use_partitioner=True,  # changelog partition by key hash, like the raw topic
            extra_topic_configs=app.policy.config(),
        )
        install_silence_sweep(ctx, feed, table, events, correlate)
    declare_dead_letter_topics(app, feed.topic)
    # the alarm states of the batch being finished, seen by the next one being prepared
    in_flight: dict[str, Mapping[str, dict[str, Any]]] = {"states": {}}

    async def normalize(batch: Batch[Message]) -> Finish:
        records = [RawRecord(m.value, m.topic, m.partition, m.offset, m.key) for m in batch.items]
        states = TableView(table, in_flight["states"])
        out, failures = prepare_batch(feed, records, ctx.geotagger, states, datetime.now(UTC))
        for index, reject in out.rejects:
            batch.reject(index, reject.reason, reject, feed.name)
        for index, exc in failures:
            batch.reject(index, "internal_error", exc, feed.name)
        batch.counted = out.ok
        in_flight["states"] = out.states
        return partial(finish, out)

    async def finish(out: BatchOutput) -> None:
        """Readings and contacts stored while the events go out (no stage reads those rows,
        so a report does not wait for them), then, both acknowledged, the alarm states.
        Safe to run again (upserts, at-least-once sends)."""
        stored = None
        if out.readings or out.contacts:
            write = partial(write_readings, settings, out, bulk)
            stored = asyncio.ensure_future(retry_transient(write, what=f"{STAGE}-{feed.name}"))
        try:
            pending = []
            for event in out.events:
                pending += await publish_event(events, correlate, event)
            await asyncio.gather(*pending)
        finally:
            if stored is not None:
                await stored  # its error, if any, fails the batch: retried, nothing committed
        if table is not None and out.states:
            # after the events: a state that says "alarm raised" never outlives its event
            await put_many(table, out.states)

    Stage(app, STAGE).agent(
        raw_topic,
        name=f"normalize-{feed.name}",
        process=normalize,
        pipelined=True,
        feed=feed.name,
    )
