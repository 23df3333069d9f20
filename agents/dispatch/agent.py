"""Stage `dispatch`: incidents.v1 -> tasks for departments, their delivery, their timers.

The `dispatch` agent takes batches of incident changes; the store plans them
(`citybrain.dispatch.batch.plan_batch`: route, deadlines, one task per department) and
stores tasks, history and outbox rows in one transaction; then the offsets go. What was
queued is sent at once by the agent (leased to it) or by the outbox loop (`outbox.py`),
which also runs the reminder and escalation timer.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from faust.types import Message

from citybrain.agents.context import StageContext
from citybrain.agents.dispatch.outbox import Outbox
from citybrain.agents.dispatch.store import dispatch_incidents
from citybrain.dispatch.plan import IncidentView
from citybrain.logs import get_logger
from citybrain.streams.db import get_pool
from citybrain.streams.dlq import declare_dead_letter_topics
from citybrain.streams.stage import Batch, Stage, value_of
from citybrain.streams.topics import TOPICS, topic

STAGE = "dispatch"
log = get_logger(__name__)


def decode(record: Message) -> IncidentView:
    return IncidentView.from_message(orjson.loads(value_of(record)))


def install(ctx: StageContext) -> None:
    app, settings = ctx.app, ctx.settings
    # created at start: a first dead letter to a missing topic races the producer's metadata
    declare_dead_letter_topics(app, TOPICS.incidents.name)
    outbox = Outbox(ctx)

    async def dispatch(batch: Batch[IncidentView]) -> None:
        now = datetime.now(UTC)
        direct = outbox.can_deliver_directly  # else the outbox loop delivers them
        queued, plans = await dispatch_incidents(
            await get_pool(settings),
            batch.items,
            ctx.dispatch,
            ctx.channels.of_department,
            settings.delivery_max_attempts,
            (now, settings.delivery_lease) if direct else None,
            now,
        )
        for index in plans.unknown:
            incident_id = batch.items[index].incident_id
            missing = LookupError(f"incident {incident_id} is not in the database")
            batch.reject(index, "unknown_incident", missing)
        for index, error in plans.failed:
            log.warning("incident not dispatched", incident_id=batch.items[index].incident_id)
            batch.reject(index, "planning_failed", error)
        if queued and direct:
            outbox.deliver_now(queued)
        elif queued:
            ctx.outbox_wake.set()

    Stage(app, STAGE).agent(
        topic(app, TOPICS.incidents),
        name="dispatch",
        decode=decode,
        process=dispatch,
        max_records=500,
        within=settings.batch_wait,
    )

    async def say_what_is_missing() -> None:
        for channel in ctx.channels.disabled:
            log.warning("channel off: its secret or token is not set", channel=channel)
        missing = ctx.dispatch.hours.calendar.missing_years(datetime.now(UTC).date())
        if missing:
            log.warning(
                "no public-holiday calendar for these years: their holidays count as working "
                "days (add holidays/cn-<year>.yaml to the SLA policy)",
                years=missing,
            )

    async def deliveries() -> None:
        await outbox.run()

    async def escalate() -> None:
        await outbox.escalate()

    app.task(say_what_is_missing, on_leader=False)
    app.task(deliveries)
    app.timer(interval=settings.escalation_interval)(escalate)
