"""Stage `normalize`: one agent per feed. Raw records -> canonical events on events.v1,
readings and callers' contacts into the database, rejects to `<raw topic>.dlq`.

Thin: `citybrain.feeds.pipeline.normalize_batch` does the work (`prepare`). The raw topic
is read in batches (`streams.batches`); per batch `finish` writes readings and contacts
(one transaction), sends the events and waits for the broker's acks, sends the dead
letters, stores the devices' alarm state in the feed's table (changelogged, keyed by
device id like the raw topic), and only then are the batch's offsets acknowledged. One
batch is being finished while the next is prepared (`streams.batches.Pipeline`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any

import faust
from faust.types import Message, TableT

from citybrain.feeds.alarms import AlarmEvent, sweep
from citybrain.feeds.definition import Feed, feed_folders, load_feeds, select_feeds
from citybrain.feeds.pipeline import BatchOutput, RawRecord, alarm_event, normalize_batch
from citybrain.geo.address import load_gazetteer
from citybrain.geo.geotag import Geotagger, LocationRequest
from citybrain.geo.index import GeoIndex
from citybrain.geo.pack import load_pack
from citybrain.logs import get_logger
from citybrain.metrics import BATCH_SECONDS, RECORDS
from citybrain.schemas.events import Location, RawRef
from citybrain.schemas.feed_definition import SilenceRule, parse_duration
from citybrain.schemas.tables import PERSONAL_CONTACTS, READINGS
from citybrain.settings import Settings, get_settings
from citybrain.streams.app import app
from citybrain.streams.batches import BatchTopic, Pipeline, RecordBatch
from citybrain.streams.db import get_pool, get_writer
from citybrain.streams.dlq import declare_dead_letter_topics, send_dead_letter
from citybrain.streams.publish import publish_event
from citybrain.streams.retry import retry_transient
from citybrain.streams.tables import put_many
from citybrain.streams.topics import TOPICS, topic

STAGE = "normalize"
log = get_logger(__name__)
settings = get_settings()
FEEDS: list[Feed] = select_feeds(
    load_feeds(*feed_folders(settings.feeds_dir)), settings.normalize_feeds
)
_pack = load_pack(settings.city_pack)
GEOTAGGER = Geotagger(GeoIndex(_pack), load_gazetteer(_pack))
events_topic = topic(app, TOPICS.events)
correlate_topic = topic(app, TOPICS.correlate)


class TableView(Mapping[str, dict[str, Any]]):
    """Read-only view of a Faust table for the pure pipeline; `pending`: the states of the
    batch still being finished, which the table does not hold yet."""

    def __init__(
        self, table: TableT | None, pending: Mapping[str, dict[str, Any]] | None = None
    ) -> None:
        self.table = table
        self.pending = pending or {}

    def __getitem__(self, key: str) -> dict[str, Any]:
        value = self.pending.get(key)
        if value is None and self.table is not None:
            value = self.table.get(key)
        if value is None:
            raise KeyError(key)
        return dict(value)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


async def _write(settings: Settings, out: BatchOutput) -> None:
    writer = await get_writer(settings)
    await writer.write_many([(READINGS, out.readings), (PERSONAL_CONTACTS, out.contacts)])


Failures = list[tuple[int, Exception]]  # (index in batch, the error normalize_batch raised)


def prepare(
    feed: Feed, states: Mapping[str, dict[str, Any]], messages: list[Message]
) -> tuple[BatchOutput, Failures]:
    """One batch of one feed through the pure pipeline. A batch that raises is done again
    record by record, and the records that raise on their own are handed back as failures
    (dead letters, `internal_error`): one bad record never stops the feed."""
    records = [RawRecord(m.value, m.topic, m.partition, m.offset, m.key) for m in messages]
    try:
        return normalize_batch(feed, records, GEOTAGGER, states, datetime.now(UTC)), []
    except Exception:
        log.exception("batch failed; retrying record by record", feed=feed.name)
    out, failures = BatchOutput(), []
    for index, record in enumerate(records):
        try:
            one = normalize_batch(feed, [record], GEOTAGGER, states, datetime.now(UTC))
        except Exception as exc:
            failures.append((index, exc))
            continue
        out.events += one.events
        out.readings += one.readings
        out.contacts += one.contacts
        out.rejects += [(index, r) for _, r in one.rejects]
        out.states.update(one.states)
        out.ok += one.ok
    return out, failures


async def finish(
    feed: Feed, table: TableT | None, messages: list[Message], out: BatchOutput, failures: Failures
) -> None:
    """Store and send what a batch produced: readings and contacts (one transaction) while
    the events go out (no stage reads those rows, so a report does not wait for them), the
    dead letters, then, both acknowledged, the devices' alarm states. Safe to run again
    (upserts, at-least-once sends)."""
    stored = None
    if out.readings or out.contacts:
        stored = asyncio.ensure_future(
            retry_transient(partial(_write, settings, out), what=f"{STAGE}-{feed.name}")
        )
    try:
        await _send(feed, messages, out, failures)
    finally:
        if stored is not None:
            await stored  # its error, if any, fails the batch: retried, nothing committed
    if table is not None and out.states:
        # after the events: a state that says "alarm raised" never outlives its event
        await put_many(table, out.states)
    RECORDS.labels(STAGE, "ok").inc(out.ok)


async def _send(feed: Feed, messages: list[Message], out: BatchOutput, failures: Failures) -> None:
    """The events and dead letters of a batch, acknowledged by the broker."""
    pending = []
    for event in out.events:
        pending += await publish_event(events_topic, correlate_topic, event)
    for index, reject in out.rejects:
        await send_dead_letter(
            app, messages[index], stage=STAGE, error=reject, reason=reject.reason, feed=feed.name
        )
    for index, exc in failures:
        await send_dead_letter(
            app, messages[index], stage=STAGE, error=exc, reason="internal_error", feed=feed.name
        )
    if pending:
        await asyncio.gather(*pending)


def _register(feed: Feed) -> None:
    # telemetry: large batches, fewer transactions and one state write per device per batch;
    # reports and alarms: short waits, low latency
    wait = settings.telemetry_batch_wait if feed.definition.readings else settings.batch_wait
    raw_topic = BatchTopic(
        app,
        topics=[feed.topic],
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.topic_partitions,
        internal=True,  # created at start-up when missing
        max_records=4000,
        within=wait,
    )
    table = None
    if feed.definition.alarms:
        table = app.Table(
            f"alarm-state-{feed.name}",
            default=None,
            schema=faust.Schema(key_type=str, key_serializer="raw", value_serializer="json"),
            partitions=settings.topic_partitions,
            use_partitioner=True,  # changelog partition by key hash, like the raw topic
        )
    declare_dead_letter_topics(app, feed.topic)
    if table is not None:
        _register_sweep(feed, table)

    async def normalize(stream: faust.StreamT[RecordBatch]) -> None:
        # batch N is stored and sent while batch N+1 is prepared; N+1 sees N's alarm states
        pipeline = Pipeline(app.consumer, f"{STAGE}-{feed.name}")
        in_flight: Mapping[str, dict[str, Any]] = {}
        async for records in raw_topic.batches(stream, acks=False):
            started = time.perf_counter()
            out, failures = prepare(feed, TableView(table, in_flight), records)
            await pipeline.submit(records, partial(finish, feed, table, records, out, failures))
            in_flight = out.states
            BATCH_SECONDS.labels(STAGE).observe(time.perf_counter() - started)

    normalize.__name__ = f"normalize_{feed.name.replace('-', '_')}"
    app.agent(raw_topic, name=f"normalize-{feed.name}")(normalize)


async def sweep_silent_devices(feed: Feed, table: TableT) -> int:
    """The silence rule: devices of this worker's partitions quiet for too long."""
    now = datetime.now(UTC)
    found: list[tuple[str, dict[str, Any], AlarmEvent]] = []
    for device_id, state in list(table.items()):
        if not state:
            continue
        new_state, events = sweep(feed.definition, dict(state), str(device_id), now)
        found += [(str(device_id), new_state, e) for e in events]
    if not found:
        return 0
    places = GEOTAGGER.place([LocationRequest(device_id=d) for d, _, _ in found], feed.devices)
    pending = []
    for (device_id, new_state, alarm), place in zip(found, places, strict=True):
        location = Location(
            status="needs_location" if place.lon is None else place.location_status,
            lon=place.lon,
            lat=place.lat,
            device_id=device_id,
            method=place.method,
            district=place.district,
            grid_cell=place.grid_cell,
            jurisdiction=dict(place.jurisdiction),
        )
        event = alarm_event(feed, alarm, location, RawRef(feed.topic, 0, 0, device_id), now)
        pending += await publish_event(events_topic, correlate_topic, event)
        table[device_id] = new_state
    await asyncio.gather(*pending)
    return len(found)


def _register_sweep(feed: Feed, table: TableT) -> None:
    silence = next((r for r in feed.definition.alarms if isinstance(r, SilenceRule)), None)
    if silence is None:
        return
    interval = max(10.0, min(300.0, parse_duration(silence.after) / 6))

    async def silence_sweep() -> None:
        try:
            count = await sweep_silent_devices(feed, table)
            if count:
                log.info("devices silent", feed=feed.name, count=count)
        except Exception:
            log.exception("silence sweep failed", feed=feed.name)

    silence_sweep.__name__ = f"silence_sweep_{feed.name.replace('-', '_')}"
    app.timer(interval=interval)(silence_sweep)


for _feed in FEEDS:
    _register(_feed)


@app.task(on_leader=False)
async def register_devices() -> None:
    """The feeds' device registries into `devices` (the sensors dashboard lists silent ones),
    an idempotent upsert at every start."""
    rows = [
        (d.device_id, feed.name, d.asset_type, d.lon, d.lat, d.installed_on)
        for feed in FEEDS
        if feed.devices is not None
        for d in feed.devices.devices.values()
    ]
    if not rows:
        return
    try:
        pool = await get_pool(settings)
        async with pool.connection() as conn, conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO devices (device_id, feed, asset_type, lon, lat, installed_on)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (device_id) DO UPDATE SET"
                " feed = EXCLUDED.feed, asset_type = EXCLUDED.asset_type, lon = EXCLUDED.lon,"
                " lat = EXCLUDED.lat, installed_on = EXCLUDED.installed_on, updated_at = now()",
                rows,
            )
        log.info("device registries stored", devices=len(rows))
    except Exception as exc:
        log.warning("device registries not stored", error=str(exc))
