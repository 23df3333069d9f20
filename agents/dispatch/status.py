"""Stage `status`: departments' reports on their tasks (dispatch.status.v1) and operators'
task commands (commands.v1), applied to the dispatch stage's tables.

Each report is checked (schema; the task exists; it is the reporting department's own;
the change fits the task's state), applied to the task and its incident in one
transaction, and a rejection re-routes the incident. A report that fails a check goes to
`dispatch.status.v1.dlq` with the reason; the stage goes on. A changed incident status is
told to the correlation owner (a typed message on correlate.v1), so that reports arriving
after a resolution reopen it. Operators' task commands are applied in the same stage
(`commands.py`).
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from faust.types import Message

from citybrain.agents.context import StageContext
from citybrain.agents.dispatch import commands
from citybrain.agents.dispatch.store import UnknownDispatch, apply_status_report
from citybrain.dispatch.plan import Plan, TransitionError
from citybrain.logs import get_logger
from citybrain.schemas.dispatch_status import StatusReportModel
from citybrain.schemas.incident_status import MESSAGE_HEADER, MESSAGE_KIND, IncidentStatusModel
from citybrain.streams.db import get_pool
from citybrain.streams.dlq import declare_dead_letter_topics
from citybrain.streams.publish import CORRELATE_KEY
from citybrain.streams.stage import Batch, Stage, value_of
from citybrain.streams.topics import TOPICS, topic

STAGE = "dispatch-status"
log = get_logger(__name__)
#: the checks a report or command can fail, and the dead-letter reason of each
REFUSALS: dict[type[Exception], str] = {
    UnknownDispatch: "unknown_dispatch",
    PermissionError: "not_your_task",
    TransitionError: "invalid_transition",
}


def decode_report(record: Message) -> StatusReportModel:
    return StatusReportModel.model_validate_json(value_of(record))


def refusal(exc: Exception) -> str:
    """The dead-letter reason of an error applying a report (internal_error if unforeseen)."""
    reason = next((r for t, r in REFUSALS.items() if isinstance(exc, t)), "internal_error")
    if reason == "internal_error":
        log.warning("status report not applied", error=str(exc))
    return reason


def install(ctx: StageContext) -> None:
    app, settings = ctx.app, ctx.settings
    # created at start: a first dead letter to a missing topic races the producer's metadata
    declare_dead_letter_topics(app, TOPICS.dispatch_status.name, TOPICS.commands.name)
    correlate_topic = topic(app, TOPICS.correlate)

    async def apply_reports(batch: Batch[StatusReportModel]) -> None:
        pool = await get_pool(settings)

        async def apply(report: StatusReportModel) -> tuple[Plan, str, str | None]:
            return await apply_status_report(
                pool,
                report,
                ctx.dispatch,
                ctx.channels.of_department,
                settings.delivery_max_attempts,
                datetime.now(UTC),
            )

        for _, report, (plan, incident_id, before) in await batch.each(apply, refusal):
            log.info(
                "task status",
                dispatch_id=report.dispatch_id,
                department=report.department,
                status=report.status,
                incident_status=plan.incident_status,
            )
            if plan.incident_status and before is not None and plan.incident_status != before:
                change = IncidentStatusModel(incident_id=incident_id, status=plan.incident_status)
                await correlate_topic.send(
                    key=CORRELATE_KEY,
                    value=orjson.dumps(change.model_dump(by_alias=True)),
                    headers=[(MESSAGE_HEADER, MESSAGE_KIND)],
                )
        ctx.outbox_wake.set()  # messages the reports queued (any worker's outbox sends them)

    Stage(app, STAGE).agent(
        topic(app, TOPICS.dispatch_status),
        name="dispatch-status",
        decode=decode_report,
        process=apply_reports,
        max_records=200,
        within=settings.batch_wait,
    )
    commands.install(ctx)  # operators' task commands, in the same stage
