"""Stage `correlate`: events.v1 -> incidents (table, incidents.v1, database).

events.v1 is keyed by ~1 km cell over several partitions, but a report may belong to an
incident in a neighbouring cell, which can live on another partition. The `route` agent
therefore funnels events into `correlate.v1`, one partition, whose single owner keeps every
cell's open incidents in a changelogged table (`incident-cells`, keyed by cell) and a
`Correlator` rebuilt from it after a restart or rebalance. Repeated event ids are no-ops,
so redeliveries after a crash change nothing. Per batch: table updates, incident rows,
reports and history in one transaction, incidents.v1 messages, then the offsets.
Correlation handles events, not telemetry, so one owner is enough at city scale.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from functools import partial
from typing import Any

import faust
import orjson

from citybrain.correlation.core import Correlator, Incident
from citybrain.correlation.state import incident_message, incident_row, restore, to_json
from citybrain.geo.address import load_gazetteer
from citybrain.geo.pack import load_pack
from citybrain.logs import get_logger
from citybrain.metrics import BATCH_SECONDS, RECORDS
from citybrain.schemas.events import CanonicalEvent
from citybrain.schemas.tables import INCIDENT_HISTORY, INCIDENT_REPORTS, INCIDENTS
from citybrain.settings import Settings, get_settings
from citybrain.streams.app import app
from citybrain.streams.db import get_writer
from citybrain.streams.dlq import declare_dead_letter_topics, send_dead_letter
from citybrain.streams.publish import CORRELATE_KEY, was_routed
from citybrain.streams.retry import retry_transient
from citybrain.streams.tables import put_many
from citybrain.streams.take import take_ready
from citybrain.streams.topics import TOPICS, declare_on_start, topic

STAGE = "correlate"
log = get_logger(__name__)
# created at start: a first dead letter to a missing topic races the producer's metadata
declare_dead_letter_topics(app, TOPICS.correlate.name)
events_topic = topic(app, TOPICS.events)
correlate_topic = topic(app, TOPICS.correlate)
incidents_topic = topic(app, TOPICS.incidents)
declare_on_start(app, incidents_topic)
cells = app.Table(
    "incident-cells",
    default=None,
    schema=faust.Schema(key_type=str, key_serializer="raw", value_serializer="json"),
    partitions=1,
    use_partitioner=True,
)
_correlator: Correlator | None = None
settings = get_settings()


def correlator() -> Correlator:
    """The correlator, rebuilt from the table the first time it is needed."""
    global _correlator
    if _correlator is None:
        pack = load_pack(get_settings().city_pack)
        c = Correlator(place_names=load_gazetteer(pack).full_district_names)
        count = restore(c, {str(k): v for k, v in cells.items() if v})
        log.info("correlation state restored", incidents=count)
        _correlator = c
    return _correlator


@app.agent(events_topic, name="correlate-route")
async def route(stream: faust.StreamT[bytes]) -> None:
    """Funnel to the single correlation owner, in arrival order, the events that are not
    there yet: the normalize stage sends its own to both topics (`streams.publish`)."""
    async for events in take_ready(stream, 2000, within=settings.batch_wait):
        pending = [
            await correlate_topic.send(key=CORRELATE_KEY, value=e.message.value)
            for e in events
            if not was_routed(e.message.headers)
        ]
        await asyncio.gather(*pending)


def _control(value: bytes) -> dict[str, Any] | None:
    """A control message from the dispatch stage (an incident's new status), or None."""
    if not value.startswith(b'{"control"'):
        return None
    data = orjson.loads(value)
    return data if isinstance(data, dict) and data.get("control") == "incident_status" else None


async def _write(
    settings: Settings, rows: dict[str, list[tuple[Any, ...]]], reopened: list[str]
) -> None:
    """Incidents, reports and history in one transaction. An incident's status belongs to
    the dispatch stage once it is dispatched; this stage only sets it on a reopening."""

    async def reopen(conn: Any) -> None:
        if reopened:
            await conn.execute(
                "UPDATE incidents SET status = 'reopened' WHERE incident_id = ANY(%s)",
                (reopened,),
            )

    writer = await get_writer(settings)
    writer.before_commit = reopen
    await writer.write_many(
        [
            (INCIDENTS, rows["incidents"]),
            (INCIDENT_REPORTS, rows["reports"]),
            (INCIDENT_HISTORY, rows["history"]),
        ]
    )


@app.agent(correlate_topic, name="correlate")
async def correlate(stream: faust.StreamT[bytes]) -> None:
    async for events in take_ready(stream, 1000, within=settings.batch_wait):
        started = time.perf_counter()
        c = correlator()
        now = datetime.now(UTC)
        touched: dict[str, Incident] = {}
        first_change: dict[str, str] = {}  # incident -> opened / reopened / merged
        taken_in: dict[str, list[str]] = {}  # incident -> the reports it took in this batch
        rows: dict[str, list[tuple[Any, ...]]] = {"incidents": [], "reports": [], "history": []}
        statuses: list[Incident] = []
        for event in events:
            control = _control(event.message.value)
            if control is not None:
                try:
                    held = c.set_status(str(control["incident_id"]), str(control["status"]))
                except Exception as exc:  # e.g. an incident id this stage never made
                    log.warning("incident status not applied", error=str(exc))
                    await send_dead_letter(
                        app, event, stage=STAGE, error=exc, reason="control_failed"
                    )
                    continue
                if held is not None:
                    statuses.append(held)
                continue
            try:
                e = CanonicalEvent.from_json(event.message.value)
            except Exception as exc:
                await send_dead_letter(
                    app, event, stage=STAGE, error=exc, reason="schema_violation"
                )
                continue
            try:
                change = c.add(e)
            except Exception as exc:  # a poison pill must not stop the single owner
                log.warning("event not correlated", event_id=str(e.event_id), error=str(exc))
                await send_dead_letter(
                    app, event, stage=STAGE, error=exc, reason="correlation_failed"
                )
                continue
            if change is None:
                continue
            inc = change.incident
            touched[inc.incident_id] = inc
            kind = "opened" if change.opened else ("reopened" if change.reopened else "merged")
            first_change.setdefault(inc.incident_id, kind)
            taken_in.setdefault(inc.incident_id, []).append(e.event_id)
            rows["reports"].append((e.event_id, inc.incident_id, e.source_kind, e.observed_at))
            rows["history"].append(
                (
                    inc.incident_id,
                    e.observed_at,
                    kind,
                    inc.status,
                    inc.category,
                    inc.district,
                    inc.priority,
                    sum(inc.reports.values()),
                )
            )
        for inc in touched.values():
            rows["incidents"].append(incident_row(inc, now))
        reopened = [i for i, kind in first_change.items() if kind == "reopened"]
        if touched:
            await retry_transient(partial(_write, settings, rows, reopened), what=STAGE)
        acknowledged: list[Any] = []
        if touched or statuses:
            dirty = {inc.cell for inc in [*touched.values(), *statuses]} | c.vacated
            c.vacated.clear()
            # acknowledged by the broker before the batch is: after a kill -9 the state
            # recovered from the changelog is never behind the committed offsets (through
            # the producer's buffer it could be, and the next reports split incidents). After
            # the rows (a state ahead of the database would skip rows on a replay); beside
            # the incident messages (a replay sends those again: dispatch is idempotent)
            acknowledged.append(
                asyncio.ensure_future(
                    put_many(
                        cells,
                        {
                            cell: [to_json(i) for i in incs]
                            if (incs := c.incidents_in(cell))
                            else None
                            for cell in dirty
                        },
                    )
                )
            )
        # one message per incident and batch, carrying its state after the batch
        for inc in touched.values():
            acknowledged.append(
                await incidents_topic.send(
                    key=inc.incident_id.encode(),
                    value=orjson.dumps(
                        incident_message(
                            inc, first_change[inc.incident_id], taken_in[inc.incident_id]
                        )
                    ),
                )
            )
        await asyncio.gather(*acknowledged)
        RECORDS.labels(STAGE, "ok").inc(len(events))
        BATCH_SECONDS.labels(STAGE).observe(time.perf_counter() - started)


@app.timer(interval=300.0)
async def expire_incidents() -> None:
    """Keep the state bounded: forget incidents quiet for twice their window."""
    if _correlator is None:
        return
    before = set(_correlator.by_cell)
    dropped = _correlator.expire(datetime.now(UTC))
    for cell in before - set(_correlator.by_cell):
        cells[cell] = None
    if dropped:
        log.info("incidents expired from correlation state", count=dropped)
