"""Dispatch decisions (pure): which tasks an incident change creates or updates, which
reminders and escalations are due, what a department's status report changes, and which
messages each of these sends.

Everything here works on plain values: the agents load the incident's tasks from the
database, call one of `plan_incident`, `plan_escalations` or `plan_status`, and store the
`Plan` (task rows, history rows and outbox messages) in one transaction. Message ids are
deterministic, so a redelivered incident change or a repeated timer pass produces the same
ids and the outbox keeps one row per message: one task per incident and department, and
one delivery per message, whatever the number of reports, restarts or redeliveries.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from citybrain.dispatch.routing import RouteDecision, RouteFacts, Routing
from citybrain.dispatch.sla import (
    Action,
    Deadlines,
    DispatchState,
    Status,
    WorkingHours,
    deadlines,
    due_actions,
    tighten,
    timetable,
)
from citybrain.schemas.sla_policy import SlaPolicy

OPEN = ("dispatched", "acknowledged", "in_progress")  # a task someone still has to work on
DONE = ("resolved", "rejected", "cancelled")
TASK_SCHEMA = "citybrain.task/1"


def dispatch_id_of(incident_id: str, department: str) -> str:
    """The one dispatch of an incident to a department."""
    digest = hashlib.sha1(f"{incident_id}|{department}".encode()).hexdigest()[:16]  # noqa: S324
    return f"dsp-{digest}"


# --- values ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class IncidentView:
    """An incident as incidents.v1 carries it."""

    incident_id: str
    category: str
    priority: int
    status: str
    first_seen: datetime
    last_seen: datetime
    reports_total: int
    district: str | None = None
    lon: float | None = None
    lat: float | None = None
    location_status: str = "located"
    reports: Mapping[str, int] = field(default_factory=dict)
    merged_into: str | None = None  # closed as the same problem as this incident

    @classmethod
    def from_message(cls, m: Mapping[str, Any]) -> IncidentView:
        return cls(
            incident_id=str(m["incident_id"]),
            category=str(m["category"]),
            priority=int(m["priority"]),
            status=str(m["status"]),
            first_seen=datetime.fromisoformat(m["first_seen"]),
            last_seen=datetime.fromisoformat(m["last_seen"]),
            reports_total=int(m.get("reports_total", 0)),
            district=m.get("district"),
            lon=m.get("lon"),
            lat=m.get("lat"),
            location_status=str(m.get("location_status", "located")),
            reports=dict(m.get("reports") or {}),
            merged_into=m.get("merged_into"),
        )


@dataclass(frozen=True)
class Task:
    """A dispatch: one incident's task for one department, as stored in `dispatches`."""

    dispatch_id: str
    incident_id: str
    department: str
    role: str  # lead or helper
    status: str
    priority: int
    category: str
    ack_deadline: datetime
    resolve_deadline: datetime
    sla_clock: str
    created_at: datetime
    updated_at: datetime
    report_count: int
    route: str
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    escalations: tuple[str, ...] = ()
    next_action_at: datetime | None = None
    note: str | None = None
    reason: str | None = None
    reopened: int = 0
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def deadlines(self) -> Deadlines:
        if self.sla_clock == "working":
            return Deadlines(self.ack_deadline, self.resolve_deadline, "working")
        return Deadlines(self.ack_deadline, self.resolve_deadline, "calendar")


@dataclass(frozen=True)
class Message:
    """One message to a department's channels (the outbox fans it out per destination)."""

    message_id: str
    dispatch_id: str
    department: str
    kind: str
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class HistoryEntry:
    """A row of `dispatch_history`."""

    dispatch_id: str
    at: datetime
    status: str
    department: str
    incident_id: str
    actor: str | None = None
    note: str | None = None
    ack_deadline: datetime | None = None
    resolve_deadline: datetime | None = None
    on_time: bool | None = None


@dataclass
class Plan:
    """What to store in one transaction."""

    tasks: list[Task] = field(default_factory=list)
    history: list[HistoryEntry] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    incident_status: str | None = None  # the incident's status after this, when it changed
    #: other incident columns an operator's decision sets (verification, callback, closed_at)
    incident_fields: dict[str, Any] = field(default_factory=dict)

    def extend(self, other: Plan) -> None:
        self.tasks += other.tasks
        self.history += other.history
        self.messages += other.messages
        self.incident_status = other.incident_status or self.incident_status
        self.incident_fields.update(other.incident_fields)


@dataclass(frozen=True)
class DispatchContext:
    """The configuration the decisions use, and how to find an incident's jurisdictions."""

    routing: Routing
    policy: SlaPolicy
    hours: WorkingHours
    jurisdictions: Callable[[IncidentView], Mapping[str, str]] = lambda _incident: {}

    def facts(self, incident: IncidentView) -> RouteFacts:
        return RouteFacts(
            category=incident.category,
            priority=min(4, max(1, incident.priority)),
            district=incident.district,
            jurisdiction=dict(self.jurisdictions(incident)),
            lon=incident.lon,
            lat=incident.lat,
        )


# --- incident changes --------------------------------------------------------------------------
def report_bucket(count: int) -> int:
    """Report counts that are worth telling a department about: 2, 4, 8, 16..."""
    bucket = 1
    while bucket * 2 <= count:
        bucket *= 2
    return bucket


def plan_incident(
    incident: IncidentView,
    existing: Mapping[str, Task],
    ctx: DispatchContext,
    now: datetime,
) -> Plan:
    """Create the tasks an incident's route asks for that do not exist yet; update the open
    ones (report count, a raised priority tightens the deadlines); reopen resolved ones when
    the incident was reopened. An incident closed as merged into another has its open
    tasks cancelled (the other's tasks carry on). A task the operations center held only
    because no route fitted is cancelled once one does (an incident placed by an operator).
    `existing`: the incident's tasks by department."""
    if incident.status == "closed":
        return _cancel_open(incident, existing, now)
    plan = Plan()
    rejected = frozenset(d for d, t in existing.items() if t.status == "rejected")
    decision = ctx.routing.route(ctx.facts(incident), exclude=rejected)
    roles = {decision.lead: "lead", **{h: "helper" for h in decision.helpers}}
    center = existing.get(ctx.routing.operations_center)
    if (
        center is not None
        and center.status in OPEN
        and center.route != "manual"  # one an operator gave it stays
        and not decision.fallback
        and ctx.routing.operations_center not in roles
    ):
        done = replace(center, status="cancelled", updated_at=now, next_action_at=None)
        plan.tasks.append(done)
        plan.history.append(_history(done, now, "cancelled", note=f"routed to {decision.lead}"))
        plan.messages.append(_message(done, f"handed-{decision.lead}", "task.cancelled"))
        existing = {**existing, done.department: done}
    for department, role in roles.items():
        task = existing.get(department)
        if task is None:
            plan.extend(_create(incident, department, role, decision, ctx, now))
        else:
            plan.extend(_update(task, incident, ctx, now))
    for department, task in existing.items():
        if department not in roles:
            plan.extend(_update(task, incident, ctx, now))
    tasks = {**existing, **{t.department: t for t in plan.tasks}}
    plan.incident_status = incident_status(tasks.values(), incident.status)
    return plan


def _cancel_open(incident: IncidentView, existing: Mapping[str, Task], now: datetime) -> Plan:
    """A closed incident's open tasks, cancelled; their departments told why."""
    why = f"merged into {incident.merged_into}" if incident.merged_into else "incident closed"
    plan = Plan(incident_status="closed")
    for task in existing.values():
        if task.status in OPEN:
            done = replace(
                task, status="cancelled", updated_at=now, next_action_at=None, reason=why
            )
            plan.tasks.append(done)
            plan.history.append(_history(done, now, "cancelled", note=why))
            extra = {"merged_into": incident.merged_into} if incident.merged_into else None
            plan.messages.append(_message(done, "cancelled", "task.cancelled", extra=extra))
    return plan


def _create(
    incident: IncidentView,
    department: str,
    role: str,
    decision: RouteDecision,
    ctx: DispatchContext,
    now: datetime,
) -> Plan:
    due = deadlines(ctx.policy, incident.category, incident.priority, now, ctx.hours)
    task = Task(
        dispatch_id=dispatch_id_of(incident.incident_id, department),
        incident_id=incident.incident_id,
        department=department,
        role=role,
        status="dispatched",
        priority=incident.priority,
        category=incident.category,
        ack_deadline=due.ack_at,
        resolve_deadline=due.resolve_at,
        sla_clock=due.clock,
        created_at=now,
        updated_at=now,
        report_count=incident.reports_total,
        route="/".join(decision.path),
        details=_details(incident, decision),
    )
    task = replace(task, next_action_at=next_action_at(task, ctx))
    return Plan(
        tasks=[task],
        history=[_history(task, now, "dispatched", note=f"route {task.route}")],
        messages=[_message(task, "created", "task.created")],
    )


def _update(task: Task, incident: IncidentView, ctx: DispatchContext, now: datetime) -> Plan:
    if task.status in ("rejected", "cancelled"):
        return Plan()
    plan = Plan()
    changed = replace(task, report_count=max(task.report_count, incident.reports_total))
    changed = replace(changed, details={**task.details, **_details(incident, None)})
    if task.status == "resolved":
        if incident.status != "reopened":
            return Plan(tasks=[changed]) if changed != task else Plan()
        # new reports after resolution: the task is open again, with fresh deadlines
        due = deadlines(ctx.policy, incident.category, incident.priority, now, ctx.hours)
        changed = replace(
            changed,
            status="dispatched",
            priority=incident.priority,  # the priority the fresh deadlines are counted for
            reopened=task.reopened + 1,
            created_at=now,
            ack_deadline=due.ack_at,
            resolve_deadline=due.resolve_at,
            sla_clock=due.clock,
            acknowledged_at=None,
            resolved_at=None,
            escalations=(),
        )
        changed = replace(changed, next_action_at=next_action_at(changed, ctx), updated_at=now)
        plan.tasks.append(changed)
        plan.history.append(_history(changed, now, "reopened"))
        plan.messages.append(_message(changed, f"reopened-{changed.reopened}", "task.reopened"))
        return plan
    if incident.priority < task.priority:
        due = tighten(
            task.deadlines,
            task.created_at,
            incident.priority,
            policy=ctx.policy,
            category=task.category,
            hours=ctx.hours,
        )
        changed = replace(
            changed,
            priority=incident.priority,
            ack_deadline=due.ack_at,
            resolve_deadline=due.resolve_at,
            sla_clock=due.clock,
        )
        changed = replace(changed, next_action_at=next_action_at(changed, ctx))
        plan.history.append(_history(changed, now, "priority_raised"))
        plan.messages.append(_message(changed, f"priority-{changed.priority}", "task.updated"))
    elif report_bucket(changed.report_count) > report_bucket(task.report_count):
        bucket = report_bucket(changed.report_count)
        plan.messages.append(_message(changed, f"reports-{bucket}", "task.updated"))
    if changed != task:
        plan.tasks.append(replace(changed, updated_at=now))
    return plan


def _details(incident: IncidentView, decision: RouteDecision | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "district": incident.district,
        "lon": incident.lon,
        "lat": incident.lat,
        "location_status": incident.location_status,
        "first_seen": incident.first_seen.isoformat(),
        "last_seen": incident.last_seen.isoformat(),
        "reports": dict(incident.reports),
    }
    if decision is not None:
        out["lead"] = decision.lead
        out["helpers"] = list(decision.helpers)
        out["why"] = list(decision.reasons)
    return out


# --- timers ------------------------------------------------------------------------------------
def _state(task: Task) -> DispatchState:
    status: Status
    if task.status == "dispatched":
        status = "open"
    elif task.status in OPEN:
        status = "acknowledged"
    else:  # resolved, rejected, cancelled: no timer runs any more
        status = "resolved"
    sent = frozenset(Action(a) for a in task.escalations if a in Action.__members__.values())
    return DispatchState(task.created_at, task.deadlines, status, sent)


def next_action_at(task: Task, ctx: DispatchContext) -> datetime | None:
    """When the escalation timers next need to look at this task (None: never again)."""
    if task.status not in OPEN:
        return None
    state = _state(task)
    times = timetable(task.created_at, task.deadlines, ctx.policy.escalation, ctx.hours)
    ack_open = state.status == "open"
    pending = [
        at
        for action, at in times.items()
        if action.value not in task.escalations
        and (ack_open or not action.value.startswith("ack_"))
    ]
    return min(pending) if pending else None


def plan_escalations(task: Task, ctx: DispatchContext, now: datetime, ops_center: str) -> Plan:
    """The reminders and escalations of a task that are due now, each sent once: a reminder
    to the department, an escalation to its supervisor (through the department's channels,
    and to `escalate_to` when set), then to the operations center."""
    actions = due_actions(_state(task), now, ctx.policy.escalation, ctx.hours)
    if not actions:
        if task.next_action_at is not None and task.next_action_at <= now:
            return Plan(tasks=[replace(task, next_action_at=next_action_at(task, ctx))])
        return Plan()
    department = ctx.routing.by_code.get(task.department)
    if department is None:
        return _orphan_escalation(task, now, ops_center)
    plan = Plan()
    sent = set(task.escalations)
    for action in actions:
        # the furthest due step of a ladder stands for the steps it skipped
        ladder = [a for a in Action if a.value.split("_")[0] == action.value.split("_")[0]]
        sent |= {a.value for a in ladder[: ladder.index(action) + 1]}
        deadline = task.ack_deadline if action.value.startswith("ack") else task.resolve_deadline
        extra = {"action": action.value, "deadline": deadline.isoformat()}
        if action.value.endswith("reminder"):
            targets = [(task.department, "task.reminder")]
        elif action.value.endswith("supervisor"):
            extra["supervisor"] = department.supervisor.name
            targets = [(task.department, "task.escalated")]
            if department.supervisor.escalate_to and department.supervisor.escalate_to not in (
                task.department,
                ops_center,
            ):
                targets.append((department.supervisor.escalate_to, "task.escalated"))
        else:
            targets = [(ops_center, "task.escalated")]
        for target, kind in targets:
            plan.messages.append(_message(task, action.value, kind, to=target, extra=extra))
        plan.history.append(
            _history(
                task, now, "reminded" if kind == "task.reminder" else "escalated", note=action.value
            )
        )
    changed = replace(task, escalations=tuple(sorted(sent)), updated_at=now)
    plan.tasks.append(replace(changed, next_action_at=next_action_at(changed, ctx)))
    return plan


ORPHANED = "department_unknown"


def _orphan_escalation(task: Task, now: datetime, ops_center: str) -> Plan:
    """A due task of a department the configuration no longer has (removed from
    departments.yaml, or another city's pack on the same database): no reminder can reach
    it, so the operations center is told once, to reassign it, and its timers stop."""
    stopped = replace(task, next_action_at=None, updated_at=now)
    if ORPHANED in task.escalations:
        return Plan(tasks=[stopped])
    extra = {"action": ORPHANED, "deadline": task.resolve_deadline.isoformat()}
    return Plan(
        tasks=[replace(stopped, escalations=tuple(sorted({*task.escalations, ORPHANED})))],
        messages=[_message(task, ORPHANED, "task.escalated", to=ops_center, extra=extra)],
        history=[_history(task, now, "escalated", note=ORPHANED)],
    )


# --- status reports from departments -----------------------------------------------------------
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "acknowledged": ("dispatched",),
    "in_progress": ("dispatched", "acknowledged"),
    "resolved": ("dispatched", "acknowledged", "in_progress"),
    "rejected": ("dispatched", "acknowledged", "in_progress"),
}


class TransitionError(ValueError):
    """A status report that does not fit the task's state (e.g. resolving a rejected task)."""


@dataclass(frozen=True)
class StatusReport:
    """A department's report on one of its tasks (see schemas/dispatch_status.py)."""

    dispatch_id: str
    department: str
    status: str
    at: datetime
    actor: str | None = None
    note: str | None = None
    reason: str | None = None


def plan_status(
    report: StatusReport,
    task: Task,
    incident_tasks: Mapping[str, Task],
    incident: IncidentView | None,
    ctx: DispatchContext,
    now: datetime,
) -> Plan:
    """Apply a department's status report to its task. A repeated report changes nothing; a
    rejection re-routes the incident without the departments that rejected it (to the next
    route, or to the operations center for manual assignment)."""
    if report.department != task.department:
        raise PermissionError("a department may only report on its own tasks")
    if report.status == task.status:
        return Plan()
    allowed = TRANSITIONS.get(report.status)
    if allowed is None:
        raise TransitionError(f"unknown status {report.status!r}")
    if task.status not in allowed:
        raise TransitionError(f"a {task.status} task cannot become {report.status}")
    changed = replace(task, status=report.status, updated_at=now)
    if report.status in ("acknowledged", "in_progress") and task.acknowledged_at is None:
        changed = replace(changed, acknowledged_at=report.at)
    if report.status == "resolved":
        changed = replace(
            changed,
            resolved_at=report.at,
            note=report.note,
            acknowledged_at=task.acknowledged_at or report.at,
        )
    if report.status == "rejected":
        changed = replace(changed, reason=report.reason)
    changed = replace(changed, next_action_at=next_action_at(changed, ctx))
    on_time = None
    if report.status == "acknowledged":
        on_time = report.at <= task.ack_deadline
    elif report.status == "resolved":
        on_time = report.at <= task.resolve_deadline
    plan = Plan(
        tasks=[changed],
        history=[
            _history(
                changed,
                report.at,
                report.status,
                actor=report.actor,
                note=report.note or report.reason,
                on_time=on_time,
            )
        ],
    )
    tasks = {**incident_tasks, changed.department: changed}
    if report.status == "rejected" and incident is not None:
        rerouted = plan_incident(replace(incident, status="dispatched"), tasks, ctx, now)
        plan.extend(rerouted)
        tasks.update({t.department: t for t in rerouted.tasks})
    plan.incident_status = incident_status(
        tasks.values(), incident.status if incident else "dispatched"
    )
    return plan


def incident_status(tasks: Iterable[Task], current: str) -> str:
    """The incident's status from its tasks: resolved when every lead task that was not
    rejected is resolved; acknowledged when any live task is; dispatched otherwise."""
    live = [t for t in tasks if t.status not in ("rejected", "cancelled")]
    if not live:
        return current
    leads = [t for t in live if t.role == "lead"] or live
    if all(t.status == "resolved" for t in leads):
        return "resolved"
    if any(t.status in ("acknowledged", "in_progress", "resolved") for t in live):
        return "acknowledged"
    return "dispatched"


# --- messages ----------------------------------------------------------------------------------
def _history(
    task: Task,
    at: datetime,
    status: str,
    *,
    actor: str | None = "citybrain",
    note: str | None = None,
    on_time: bool | None = None,
) -> HistoryEntry:
    return HistoryEntry(
        dispatch_id=task.dispatch_id,
        at=at,
        status=status,
        department=task.department,
        incident_id=task.incident_id,
        actor=actor,
        note=note,
        ack_deadline=task.ack_deadline,
        resolve_deadline=task.resolve_deadline,
        on_time=on_time,
    )


def _message(
    task: Task,
    suffix: str,
    kind: str,
    *,
    to: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Message:
    department = to or task.department
    message_id = f"{task.dispatch_id}:{suffix}" + (f":{department}" if to else "")
    return Message(
        message_id=message_id,
        dispatch_id=task.dispatch_id,
        department=department,
        kind=kind,
        payload={**task_payload(task, kind, message_id), **(extra or {})},
    )


def task_payload(task: Task, kind: str, message_id: str) -> dict[str, Any]:
    """What a department receives (by Kafka and webhook alike)."""
    return {
        "schema": TASK_SCHEMA,
        "kind": kind,
        "message_id": message_id,
        "dispatch_id": task.dispatch_id,
        "incident_id": task.incident_id,
        "department": task.department,
        "role": task.role,
        "status": task.status,
        "category": task.category,
        "priority": task.priority,
        "ack_deadline": task.ack_deadline.isoformat(),
        "resolve_deadline": task.resolve_deadline.isoformat(),
        "sla_clock": task.sla_clock,
        "report_count": task.report_count,
        "route": task.route,
        "reopened": task.reopened,
        "details": dict(task.details),
    }
