"""Stage `dispatch-status`: departments' reports on their tasks (dispatch.status.v1).

Each report is checked (schema; the task exists; it is the reporting department's own;
the change fits the task's state), applied to the task and its incident in one
transaction, and a rejection re-routes the incident. A report that fails a check goes to
`dispatch.status.v1.dlq` with the reason; the worker goes on. The new incident status is
also told to the correlation stage, so that reports arriving after a resolution reopen it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from functools import partial
from typing import Any

import faust
import orjson
from pydantic import ValidationError

from citybrain.agents.dispatch import CHANNELS, CTX, wake_outbox
from citybrain.dispatch.plan import IncidentView, StatusReport, TransitionError, plan_status
from citybrain.logs import get_logger
from citybrain.metrics import BATCH_SECONDS, RECORDS
from citybrain.schemas.dispatch_status import StatusReportModel
from citybrain.settings import Settings, get_settings
from citybrain.streams.app import app
from citybrain.streams.db import get_pool
from citybrain.streams.dispatch_store import incident_row, save_plan, task_by_id, tasks_of_incidents
from citybrain.streams.dlq import declare_dead_letter_topics, send_dead_letter
from citybrain.streams.retry import retry_transient
from citybrain.streams.take import take_ready
from citybrain.streams.topics import TOPICS, topic

STAGE = "dispatch-status"
log = get_logger(__name__)
# created at start: a first dead letter to a missing topic races the producer's metadata
declare_dead_letter_topics(app, TOPICS.dispatch_status.name)
settings = get_settings()
status_topic = topic(app, TOPICS.dispatch_status)
correlate_topic = topic(app, TOPICS.correlate)


class UnknownDispatch(LookupError):
    """The report names a task that does not exist."""


@app.agent(status_topic, name="dispatch-status")
async def status(stream: faust.StreamT[bytes]) -> None:
    async for events in take_ready(stream, 200, within=settings.batch_wait):
        started = time.perf_counter()
        for event in events:
            try:
                report = StatusReportModel.model_validate_json(event.message.value)
            except ValidationError as exc:
                await send_dead_letter(
                    app, event, stage=STAGE, error=exc, reason="schema_violation"
                )
                continue
            try:
                changed = await retry_transient(partial(_apply, settings, report), what=STAGE)
            except (UnknownDispatch, PermissionError, TransitionError) as exc:
                reason = {
                    UnknownDispatch: "unknown_dispatch",
                    PermissionError: "not_your_task",
                    TransitionError: "invalid_transition",
                }[type(exc)]
                await send_dead_letter(app, event, stage=STAGE, error=exc, reason=reason)
                continue
            except Exception as exc:  # a report that breaks applying must not stop the stage
                log.warning("status report not applied", error=str(exc))
                await send_dead_letter(app, event, stage=STAGE, error=exc, reason="internal_error")
                continue
            if changed is not None:
                incident_id, incident_status = changed
                await correlate_topic.send(
                    key=b"city",
                    value=orjson.dumps(
                        {
                            "control": "incident_status",
                            "incident_id": incident_id,
                            "status": incident_status,
                        }
                    ),
                )
        wake_outbox()
        RECORDS.labels(STAGE, "ok").inc(len(events))
        BATCH_SECONDS.labels(STAGE).observe(time.perf_counter() - started)


async def _apply(s: Settings, model: StatusReportModel) -> tuple[str, str] | None:
    """Apply one report; the incident's id and new status when it changed."""
    pool = await get_pool(s)
    now = datetime.now(UTC)
    async with pool.connection() as conn, conn.transaction():
        task = await task_by_id(conn, model.dispatch_id)
        if task is None:
            raise UnknownDispatch(f"no dispatch {model.dispatch_id}")
        row = await incident_row(conn, task.incident_id)
        incident = _incident(row) if row else None
        tasks = (await tasks_of_incidents(conn, [task.incident_id]))[task.incident_id]
        report = StatusReport(
            dispatch_id=model.dispatch_id,
            department=model.department,
            status=model.status,
            at=model.at,
            actor=model.actor,
            note=model.note,
            reason=model.reason,
        )
        plan = plan_status(report, task, tasks, incident, CTX, now)
        await save_plan(
            conn, plan, task.incident_id, CHANNELS.of_department, s.delivery_max_attempts
        )
    log.info(
        "task status",
        dispatch_id=model.dispatch_id,
        department=model.department,
        status=model.status,
        incident_status=plan.incident_status,
    )
    if plan.incident_status and incident and plan.incident_status != incident.status:
        return task.incident_id, plan.incident_status
    return None


def _incident(row: dict[str, Any]) -> IncidentView:
    return IncidentView(
        incident_id=row["incident_id"],
        category=row["category"],
        priority=int(row["priority"]),
        status=row["status"],
        first_seen=row["first_seen"],
        last_seen=row["last_seen"],
        reports_total=int(row["reports_total"]),
        district=row["district"],
        lon=row["lon"],
        lat=row["lat"],
        location_status=row["location_status"],
        reports=dict(row["reports"] or {}),
    )
