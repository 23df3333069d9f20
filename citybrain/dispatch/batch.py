"""The dispatch stage's decisions for a batch (pure): which incident changes to plan, the
plans, and a status report or a stored row in the planner's terms. No Kafka, no
database: the agents read what these need and store what they return."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from citybrain.dispatch.plan import (
    DispatchContext,
    IncidentView,
    Plan,
    StatusReport,
    Task,
    plan_incident,
)
from citybrain.schemas.dispatch_status import StatusReportModel


def latest_changes(incidents: Sequence[IncidentView]) -> dict[str, int]:
    """incident id -> the index of its newest change in the batch (only the newest state of
    an incident is planned: the plan of an older one would be replaced at once)."""
    return {incident.incident_id: index for index, incident in enumerate(incidents)}


@dataclass
class DispatchPlans:
    """The plans of a batch of incident changes, and the changes that cannot be planned."""

    plans: list[tuple[int, Plan]] = field(default_factory=list)  # change index, plan
    unknown: list[int] = field(default_factory=list)  # incidents not in the database
    failed: list[tuple[int, Exception]] = field(default_factory=list)  # planning raised


def plan_batch(
    incidents: Sequence[IncidentView],
    stored: Collection[str],
    existing: Mapping[str, Mapping[str, Task]],
    ctx: DispatchContext,
    now: datetime,
) -> DispatchPlans:
    """Plan the newest change of each incident. `stored`: the incidents the database holds
    (the correlate stage writes the row before the message: a change of any other cannot be
    dispatched); `existing`: their tasks by department. One change whose planning raises is
    handed back, the others are planned."""
    out = DispatchPlans()
    for incident_id, index in latest_changes(incidents).items():
        if incident_id not in stored:
            out.unknown.append(index)
            continue
        try:
            plan = plan_incident(incidents[index], existing.get(incident_id, {}), ctx, now)
        except Exception as exc:
            out.failed.append((index, exc))
            continue
        out.plans.append((index, plan))
    return out


def status_report(model: StatusReportModel) -> StatusReport:
    """A validated `dispatch.status.v1` message in the planner's terms."""
    return StatusReport(
        dispatch_id=model.dispatch_id,
        department=model.department,
        status=model.status,
        at=model.at,
        actor=model.actor,
        note=model.note,
        reason=model.reason,
    )


def incident_view(row: Mapping[str, Any]) -> IncidentView:
    """A stored `incidents` row in the planner's terms."""
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
