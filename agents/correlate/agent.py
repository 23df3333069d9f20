"""Stage `correlate`: events.v1 -> incidents (table, incidents.v1, database).

events.v1 is keyed by ~1 km cell over several partitions, but a report may belong to an
incident in a neighbouring cell, which can live on another partition. The `route` agent
therefore funnels events into `correlate.v1`, one partition, whose single owner keeps every
cell's open incidents in a changelogged table (`incident-cells`, keyed by cell) and a
`Correlator` rebuilt from it after a restart or rebalance. Repeated event ids are no-ops,
so redeliveries after a crash change nothing. Per batch (`citybrain.correlation.batch`
decides): incident rows, reports and history in one transaction, the table's cells and the
incidents.v1 messages, then the offsets. Correlation handles events, not telemetry, so one
owner is enough at city scale.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from functools import partial
from typing import Any

import faust
import orjson
from faust.types import Message

from citybrain.agents.context import StageContext
from citybrain.agents.correlate import commands
from citybrain.agents.correlate.store import command_inputs, write_incidents
from citybrain.correlation.batch import Item, correlate_batch
from citybrain.correlation.core import Correlator
from citybrain.correlation.places import PlaceWords
from citybrain.correlation.state import placed_message, restore
from citybrain.logs import get_logger
from citybrain.schemas.events import CanonicalEvent
from citybrain.schemas.incident_status import MESSAGE_HEADER, MESSAGE_KIND, IncidentStatusModel
from citybrain.streams.dlq import declare_dead_letter_topics
from citybrain.streams.publish import COMMAND_KIND, CORRELATE_KEY, was_routed
from citybrain.streams.retry import retry_transient
from citybrain.streams.stage import Batch, Stage, header, value_of
from citybrain.streams.tables import put_many
from citybrain.streams.topics import TOPICS, declare_on_start, topic

STAGE = "correlate"
log = get_logger(__name__)


def decode(record: Message) -> Item:
    """A correlate.v1 message: an incident-status message or an operator's command (named
    by its header), or a canonical event."""
    kind = header(record, MESSAGE_HEADER)
    if kind == MESSAGE_KIND:
        return IncidentStatusModel.model_validate_json(value_of(record))
    if kind == COMMAND_KIND:
        return commands.decode(record)
    return CanonicalEvent.from_json(value_of(record))


def install(ctx: StageContext) -> None:
    app, settings = ctx.app, ctx.settings
    # created at start: a first dead letter to a missing topic races the producer's metadata
    declare_dead_letter_topics(app, TOPICS.correlate.name)
    correlate_topic = topic(app, TOPICS.correlate)
    incidents_topic = topic(app, TOPICS.incidents)
    declare_on_start(app, incidents_topic)
    cells = app.Table(
        "incident-cells",
        default=None,
        schema=faust.Schema(key_type=str, key_serializer="raw", value_serializer="json"),
        partitions=1,
        use_partitioner=True,
        extra_topic_configs=app.policy.config(),
    )
    state: dict[str, Correlator] = {}

    def correlator() -> Correlator:
        """The correlator, rebuilt from the table the first time it is needed."""
        if "c" not in state:
            c = Correlator(places=PlaceWords(ctx.gazetteer), neighbours=ctx.pack.neighbours())
            count = restore(c, {str(k): v for k, v in cells.items() if v})
            log.info("correlation state restored", incidents=count)
            state["c"] = c
        return state["c"]

    async def route(batch: Batch[Message]) -> None:
        """Funnel to the single correlation owner, in arrival order, the events that are not
        there yet: the normalize stage sends its own to both topics (`streams.publish`)."""
        pending = [
            await correlate_topic.send(key=CORRELATE_KEY, value=m.value)
            for m in batch.items
            if not was_routed(m.headers)
        ]
        await asyncio.gather(*pending)

    async def correlate(batch: Batch[Item]) -> None:
        done, reports = await retry_transient(
            partial(command_inputs, settings, batch.items), what=STAGE
        )
        now = datetime.now(UTC)
        locate = commands.locator(ctx)
        out = correlate_batch(correlator(), batch.items, now, locate, done, reports)
        for index, reason, exc in out.failures:
            log.warning("not correlated", reason=reason, error=str(exc))
            batch.reject(index, reason, exc)
        commands.log_answers(out.commands)
        if out.stores_rows:
            placed = await retry_transient(partial(write_incidents, settings, out), what=STAGE)
            out.messages += [(row["incident_id"], placed_message(row)) for row in placed]
        # the table's cells acknowledged by the broker before the batch is: after a kill -9
        # the state recovered from the changelog is never behind the committed offsets.
        # After the rows (a state ahead of the database would skip rows on a replay); beside
        # the incident messages (a replay sends those again: dispatch is idempotent)
        acknowledged: list[Any] = []
        if out.cells:
            acknowledged.append(asyncio.ensure_future(put_many(cells, out.cells)))
        for incident_id, message in out.messages:
            acknowledged.append(
                await incidents_topic.send(key=incident_id.encode(), value=orjson.dumps(message))
            )
        await asyncio.gather(*acknowledged)

    Stage(app, "correlate-route").agent(  # counted apart: it only forwards
        topic(app, TOPICS.events),
        name="correlate-route",
        process=route,
        max_records=2000,
        within=settings.batch_wait,
    )
    commands.install(ctx)  # operators' correlation commands, to the owner
    Stage(app, STAGE).agent(
        correlate_topic,
        name="correlate",
        decode=decode,
        process=correlate,
        max_records=1000,
        within=settings.batch_wait,
    )

    async def expire_incidents() -> None:
        """Keep the state bounded: forget incidents quiet for twice their window."""
        c = state.get("c")
        if c is None:
            return
        before = set(c.by_cell)
        dropped = c.expire(datetime.now(UTC))
        for cell in before - set(c.by_cell):
            cells[cell] = None
        if dropped:
            log.info("incidents expired from correlation state", count=dropped)

    app.timer(interval=300.0)(expire_incidents)
