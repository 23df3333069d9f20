"""The incident API (`/api/v1/incidents`): the operations center's view of every incident,
a department's of the incidents it has a task on. A list with filters and keyset paging,
the queues' counts, and one incident with its reports (callers' numbers masked), tasks,
merge suggestions and one timeline of everything that happened to it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import AwareDatetime, BaseModel, Field

from citybrain.api import incident_store, paging
from citybrain.api.auth import Caller, scope_of

router = APIRouter(tags=["incidents"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such incident, or none of your tasks is on it."}
}
Queue = Literal["needs_location", "unrouted", "rejected_by_all", "overdue", "merge_suggestions"]
IncidentStatus = Literal["open", "dispatched", "acknowledged", "resolved", "closed", "reopened"]
Code = Annotated[str | None, Query(max_length=64, pattern=r"^[0-9A-Za-z_.-]+$")]


class IncidentSummary(BaseModel):
    incident_id: str
    category: str
    priority: int
    status: str
    first_seen: datetime
    last_seen: datetime
    report_counts: dict[str, int]
    reports_total: int
    lon: float | None
    lat: float | None
    location_status: str
    district: str | None
    street: str | None
    community: str | None
    grid_cell: str | None
    title: str | None
    updated_at: datetime
    overdue: bool
    tasks: int
    open_suggestions: int


class IncidentPage(BaseModel):
    incidents: list[IncidentSummary]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page.")


class Queues(BaseModel):
    needs_location: int = Field(description="Placed only by a district, or not at all.")
    unrouted: int = Field(description="Placed, active, and no task: no route matched.")
    rejected_by_all: int = Field(description="Every department it went to rejected it.")
    overdue: int = Field(description="A task past its resolve deadline.")
    merge_suggestions: int = Field(description="Active incidents with open merge suggestions.")


class IncidentReport(BaseModel):
    event_id: str
    source_kind: str
    feed: str | None
    category: str | None
    severity: int | None
    observed_at: datetime
    text: str | None = Field(None, description="Callers' numbers masked.")
    address: str | None = Field(None, description="Callers' numbers masked.")
    lon: float | None
    lat: float | None
    device_id: str | None
    location_status: str | None


class IncidentTask(BaseModel):
    dispatch_id: str
    department: str
    role: str
    status: str
    priority: int
    ack_deadline: datetime | None
    resolve_deadline: datetime | None
    created_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    note: str | None
    reason: str | None
    overdue: bool


class Suggestion(BaseModel):
    candidate_id: str
    score: float
    reasons: list[str]
    suggested_at: datetime
    category: str
    status: str
    district: str | None
    reports_total: int
    location_status: str
    lon: float | None
    lat: float | None


class TimelineEntry(BaseModel):
    at: datetime
    source: Literal["incident", "task", "delivery", "command"]
    what: str
    department: str | None
    actor: str | None
    detail: str | None


class IncidentDetail(IncidentSummary):
    reports: list[IncidentReport]
    tasks_detail: list[IncidentTask]
    suggestions: list[Suggestion]
    timeline: list[TimelineEntry]


@router.get("/incidents", response_model=IncidentPage)
async def list_incidents(
    request: Request,
    who: Caller,
    status: IncidentStatus | None = None,
    queue: Annotated[Queue | None, Query(description="One of the center's queues.")] = None,
    district: Code = None,
    category: Code = None,
    since: Annotated[AwareDatetime | None, Query(description="Active at or after.")] = None,
    until: Annotated[AwareDatetime | None, Query(description="Last active before.")] = None,
    q: Annotated[
        str | None,
        Query(min_length=1, max_length=100, description="An id, or words of a report."),
    ] = None,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> IncidentPage:
    """Incidents, most recently active first (the caller's only, for a department)."""
    async with request.app.state.pool.connection() as conn:
        rows = await incident_store.list_incidents(
            conn,
            scope_of(who),
            status=status,
            queue=queue,
            district=district,
            category=category,
            since=since,
            until=until,
            text=q,
            after=paging.after(cursor),
            limit=limit + 1,
        )
    rows, next_cursor = paging.page(rows, limit, "last_seen", "incident_id")
    return IncidentPage(incidents=[IncidentSummary(**r) for r in rows], next_cursor=next_cursor)


@router.get("/queues", response_model=Queues)
async def queues(request: Request, who: Caller) -> Queues:
    """How many incidents wait in each of the center's queues (a department: its own)."""
    async with request.app.state.pool.connection() as conn:
        return Queues(**await incident_store.queue_counts(conn, scope_of(who)))


@router.get("/incidents/{incident_id}", response_model=IncidentDetail, responses=NOT_FOUND)
async def incident_detail(request: Request, who: Caller, incident_id: str) -> IncidentDetail:
    """One incident with its reports, tasks, open merge suggestions and timeline."""
    async with request.app.state.pool.connection() as conn:
        row = await incident_store.get_incident(conn, scope_of(who), incident_id)
        if row is None:
            raise HTTPException(404, "no such incident")
        reports = await incident_store.incident_reports(conn, incident_id)
        tasks = await incident_store.incident_tasks(conn, incident_id)
        suggestions = await incident_store.incident_suggestions(conn, incident_id)
        timeline = await incident_store.incident_timeline(conn, incident_id)
    if who.role != "operations":  # a department sees its own tasks on a shared incident
        tasks = [t for t in tasks if t["department"] == who.department]
        timeline = [t for t in timeline if t["department"] in (None, who.department)]
        suggestions = []
    return IncidentDetail(
        **row,
        reports=[IncidentReport(**r) for r in reports],
        tasks_detail=[IncidentTask(**t) for t in tasks],
        suggestions=[Suggestion(**s) for s in suggestions],
        timeline=[TimelineEntry(**t) for t in timeline],
    )
