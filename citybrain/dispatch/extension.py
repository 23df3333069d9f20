"""An approved deadline extension applied to a task (pure): the resolve deadline moves, the
resolve reminders and escalations may fire again against it, and the history says who
extended it, when and why. Applying the same command twice changes nothing."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from citybrain.dispatch.plan import HistoryEntry, Plan, Task
from citybrain.dispatch.sla import RESOLVE_LADDER

OPEN = ("dispatched", "acknowledged", "in_progress")


def plan_extension(
    task: Task, deadline: datetime, actor: str, note: str, at: datetime, now: datetime
) -> Plan:
    """The plan that gives `task` the new resolve `deadline` (empty when it has it already
    or is no longer open)."""
    if task.resolve_deadline == deadline or task.status not in OPEN:
        return Plan()
    extended = replace(
        task,
        resolve_deadline=deadline,
        updated_at=now,
        next_action_at=now,  # the timers re-plan against the new deadline
        escalations=tuple(e for e in task.escalations if e not in RESOLVE_LADDER),
    )
    entry = HistoryEntry(
        dispatch_id=task.dispatch_id,
        at=at,
        status="deadline_extended",
        department=task.department,
        incident_id=task.incident_id,
        actor=actor,
        note=note,
        resolve_deadline=deadline,
    )
    return Plan(tasks=[extended], history=[entry])
