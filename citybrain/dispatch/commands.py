"""Operators' task commands planned (pure): assign or reassign a department by hand (派单,
改派), urge a task (督办), close an incident after checking it (办结), reopen it, record the
citizen's callback (回访). Each returns the plan to store, or raises `CommandRefused` with
the reason the state does not allow it; who decided and why go into the history."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from citybrain.dispatch.plan import (
    OPEN,
    DispatchContext,
    IncidentView,
    Plan,
    Task,
    _details,
    _history,
    _message,
    dispatch_id_of,
    incident_status,
    next_action_at,
    plan_incident,
)
from citybrain.dispatch.sla import deadlines
from citybrain.schemas.commands import (
    AssignCommand,
    CallbackCommand,
    CloseCommand,
    ReopenCommand,
    UrgeCommand,
)

#: incident statuses that are done with (a reopening starts them again)
FINISHED = ("resolved", "closed")


class CommandRefused(ValueError):
    """A command the current state does not allow; the message says why."""


def plan_assign(
    command: AssignCommand,
    incident: IncidentView,
    tasks: Mapping[str, Task],
    ctx: DispatchContext,
    now: datetime,
) -> Plan:
    """A task for `command.department` made by hand (a new one, or its earlier rejected,
    cancelled or resolved one dispatched again) with the SLA's deadlines or the one given;
    with `replaces`, that department's open task is cancelled and its department told."""
    if incident.status == "closed":
        raise CommandRefused("the incident is closed: reopen it first")
    if command.department not in ctx.routing.by_code:
        raise CommandRefused(f"no department {command.department}")
    mine = tasks.get(command.department)
    if mine is not None and mine.status in OPEN:
        raise CommandRefused(f"{command.department} has an open task on it already")
    plan = Plan()
    changed = dict(tasks)
    if command.replaces is not None:
        old = tasks.get(command.replaces)
        if old is None or old.status not in OPEN:
            raise CommandRefused(f"{command.replaces} has no open task to hand over")
        cancelled = replace(
            old, status="cancelled", updated_at=now, next_action_at=None, reason=command.reason
        )
        plan.tasks.append(cancelled)
        plan.history.append(
            _history(cancelled, now, "reassigned", actor=command.actor, note=command.reason)
        )
        plan.messages.append(
            _message(cancelled, f"cancelled-{command.command_id}", "task.cancelled")
        )
        changed[cancelled.department] = cancelled
    due = deadlines(ctx.policy, incident.category, incident.priority, now, ctx.hours)
    resolve_at = command.resolve_deadline or due.resolve_at
    if resolve_at <= now:
        raise CommandRefused("the resolve deadline is not in the future")
    task = Task(
        dispatch_id=dispatch_id_of(incident.incident_id, command.department),
        incident_id=incident.incident_id,
        department=command.department,
        role=command.role,
        status="dispatched",
        priority=incident.priority,
        category=incident.category,
        ack_deadline=min(due.ack_at, resolve_at),
        resolve_deadline=resolve_at,
        sla_clock=due.clock if command.resolve_deadline is None else "calendar",
        created_at=now,
        updated_at=now,
        report_count=incident.reports_total,
        route="manual",
        reopened=mine.reopened + 1 if mine is not None else 0,
        details={
            **_details(incident, None),
            "lead": command.department if command.role == "lead" else None,
            "why": [f"assigned by hand by {command.actor}: {command.reason}"],
        },
    )
    task = replace(task, next_action_at=next_action_at(task, ctx))
    plan.tasks.append(task)
    plan.history.append(_history(task, now, "assigned", actor=command.actor, note=command.reason))
    plan.messages.append(_message(task, f"assigned-{command.command_id}", "task.created"))
    changed[task.department] = task
    plan.incident_status = incident_status(changed.values(), incident.status)
    return plan


def plan_urge(command: UrgeCommand, task: Task, now: datetime) -> Plan:
    """A `task.urged` message to the task's department, and the history."""
    if task.status not in OPEN:
        raise CommandRefused(f"a {task.status} task cannot be urged")
    extra = {"urged_by": command.actor, "reason": command.reason}
    return Plan(
        history=[_history(task, now, "urged", actor=command.actor, note=command.reason)],
        messages=[_message(task, f"urged-{command.command_id}", "task.urged", extra=extra)],
    )


def plan_close(
    command: CloseCommand,
    incident: IncidentView,
    tasks: Mapping[str, Task],
    callback: str | None,
    now: datetime,
) -> Plan:
    """Close an incident whose tasks are all done; a `callback` verification needs a
    satisfied callback on record."""
    if incident.status == "closed":
        raise CommandRefused("the incident is closed already")
    still_open = sorted(d for d, t in tasks.items() if t.status in OPEN)
    if still_open:
        raise CommandRefused("tasks still open: " + ", ".join(still_open))
    if command.verification == "callback" and callback != "satisfied":
        raise CommandRefused("no satisfied callback is on record")
    return Plan(
        incident_status="closed",
        incident_fields={"verification": command.verification, "closed_at": now},
    )


def plan_reopen(
    command: ReopenCommand | CallbackCommand,
    incident: IncidentView,
    tasks: Mapping[str, Task],
    ctx: DispatchContext,
    now: datetime,
) -> Plan:
    """The incident is open again: its resolved tasks are dispatched again with fresh
    deadlines (their departments told), and it is routed again (a route may have changed)."""
    if incident.status not in FINISHED:
        raise CommandRefused(f"a {incident.status} incident is not finished")
    plan = plan_incident(replace(incident, status="reopened"), tasks, ctx, now)
    for entry in plan.history:
        if entry.status == "reopened":
            plan.history[plan.history.index(entry)] = replace(
                entry, actor=command.actor, note=command.reason
            )
    if plan.incident_status in (None, "resolved"):
        plan.incident_status = "reopened"
    plan.incident_fields = {"closed_at": None}
    return plan


def plan_callback(
    command: CallbackCommand,
    incident: IncidentView,
    tasks: Mapping[str, Task],
    ctx: DispatchContext,
    now: datetime,
) -> Plan:
    """Record the citizen's answer; an unsatisfied one reopens the incident."""
    if command.outcome == "unsatisfied" and incident.status in FINISHED:
        plan = plan_reopen(command, incident, tasks, ctx, now)
    else:
        plan = Plan()
    plan.incident_fields = {**plan.incident_fields, "callback": command.outcome}
    return plan
