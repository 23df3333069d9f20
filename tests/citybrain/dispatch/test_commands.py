"""Operators' task commands planned (pure), on the shipped routes and SLA policy: assign and
reassign by hand, urge, close after checking, reopen, the citizen's callback; each refusal
says why; who decided and why are in the history."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from citybrain.dispatch.commands import (
    CommandRefused,
    plan_assign,
    plan_callback,
    plan_close,
    plan_reopen,
    plan_urge,
)
from citybrain.dispatch.plan import IncidentView, Task, plan_incident
from citybrain.schemas.commands import (
    AssignCommand,
    CallbackCommand,
    CloseCommand,
    ReopenCommand,
    UrgeCommand,
)
from tests.citybrain.dispatch.test_plan import CTX, OPS, T0, H, create, incident

WHO: dict[str, Any] = {
    "command_id": "cmd-1",
    "actor": "王敏 (api:1)",
    "reason": "现场核实",
    "at": T0,
}


def tasks_of(inc: IncidentView, status: str = "dispatched") -> dict[str, Task]:
    return {d: replace(t, status=status) for d, t in create(inc).items()}


def test_assign_creates_a_task_by_hand_with_the_deadline_given() -> None:
    inc = incident("flooding", 2)
    deadline = T0 + 30 * H
    command = AssignCommand(
        **WHO, incident_id="inc-1", department="municipal", resolve_deadline=deadline
    )
    plan = plan_assign(command, inc, {}, CTX, T0)
    (task,) = plan.tasks
    assert (task.department, task.status, task.route) == ("municipal", "dispatched", "manual")
    assert task.resolve_deadline == deadline and task.ack_deadline <= deadline
    assert [(h.status, h.actor, h.note) for h in plan.history] == [
        ("assigned", "王敏 (api:1)", "现场核实")
    ]
    assert [m.kind for m in plan.messages] == ["task.created"]
    assert plan.incident_status == "dispatched"


def test_reassign_cancels_the_replaced_task_and_tells_its_department() -> None:
    inc = incident("flooding", 2)
    tasks = tasks_of(inc)
    lead = next(t for t in tasks.values() if t.role == "lead")
    command = AssignCommand(
        **WHO, incident_id="inc-1", department="municipal", replaces=lead.department
    )
    plan = plan_assign(command, inc, tasks, CTX, T0 + H)
    by = {t.department: t for t in plan.tasks}
    assert by[lead.department].status == "cancelled" and by["municipal"].status == "dispatched"
    assert {(m.department, m.kind) for m in plan.messages} == {
        (lead.department, "task.cancelled"),
        ("municipal", "task.created"),
    }
    assert "reassigned" in {h.status for h in plan.history}


def test_a_department_assigned_again_after_rejecting_gets_a_new_message() -> None:
    inc = incident("flooding", 2)
    rejected = {d: replace(t, status="rejected") for d, t in tasks_of(inc).items()}
    department = next(iter(rejected))
    first = plan_assign(
        AssignCommand(**WHO, incident_id="inc-1", department=department), inc, rejected, CTX, T0
    )
    again = AssignCommand(
        **{**WHO, "command_id": "cmd-2"}, incident_id="inc-1", department=department
    )
    second = plan_assign(again, inc, rejected, CTX, T0)
    assert first.messages[0].message_id != second.messages[0].message_id
    assert first.tasks[0].reopened == rejected[department].reopened + 1


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        ({"department": "nobody"}, "no department nobody"),
        ({"replaces": "municipal"}, "municipal has no open task"),
        ({"resolve_deadline": T0 - H}, "not in the future"),
        ({"status": "closed"}, "closed: reopen it first"),
        ({"open": True}, "has an open task on it already"),
    ],
)
def test_assign_refusals_say_why(change: dict[str, Any], refusal: str) -> None:
    inc = incident("flooding", 2, status=change.pop("status", "dispatched"))
    tasks = tasks_of(inc) if change.pop("open", False) else {}
    department = next(iter(tasks), "police")
    command = AssignCommand(**WHO, incident_id="inc-1", **{"department": department, **change})
    with pytest.raises(CommandRefused, match=refusal):
        plan_assign(command, inc, tasks, CTX, T0)


def test_urge_sends_task_urged_once_per_command() -> None:
    task = next(iter(tasks_of(incident("gas_leak", 1)).values()))
    plan = plan_urge(UrgeCommand(**WHO, dispatch_id=task.dispatch_id), task, T0)
    (message,) = plan.messages
    assert message.kind == "task.urged" and message.payload["urged_by"] == "王敏 (api:1)"
    assert message.message_id.endswith("urged-cmd-1")
    with pytest.raises(CommandRefused, match="resolved task cannot be urged"):
        plan_urge(
            UrgeCommand(**WHO, dispatch_id=task.dispatch_id), replace(task, status="resolved"), T0
        )


@pytest.mark.parametrize(
    ("task_status", "verification", "callback", "refusal"),
    [
        ("resolved", "onsite_check", None, None),
        ("resolved", "callback", "satisfied", None),
        ("resolved", "callback", "unreachable", "no satisfied callback"),
        ("in_progress", "onsite_check", None, "tasks still open"),
        ("rejected", "sensor_normal", None, None),
    ],
)
def test_close_needs_every_task_done_and_a_verification(
    task_status: str, verification: str, callback: str | None, refusal: str | None
) -> None:
    inc = incident("flooding", 2, status="resolved")
    command = CloseCommand(**WHO, incident_id="inc-1", verification=verification)  # type: ignore[arg-type]
    tasks = tasks_of(inc, task_status)
    if refusal:
        with pytest.raises(CommandRefused, match=refusal):
            plan_close(command, inc, tasks, callback, T0)
        return
    plan = plan_close(command, inc, tasks, callback, T0)
    assert plan.incident_status == "closed"
    assert plan.incident_fields == {"verification": verification, "closed_at": T0}


def test_reopen_dispatches_resolved_tasks_again_with_who_and_why() -> None:
    inc = incident("flooding", 2, status="closed")
    tasks = tasks_of(incident("flooding", 2), "resolved")
    plan = plan_reopen(ReopenCommand(**WHO, incident_id="inc-1"), inc, tasks, CTX, T0 + H)
    assert {t.status for t in plan.tasks} == {"dispatched"}
    assert {m.kind for m in plan.messages} == {"task.reopened"}
    assert {(h.status, h.actor) for h in plan.history} == {("reopened", "王敏 (api:1)")}
    assert plan.incident_status == "dispatched" and plan.incident_fields == {"closed_at": None}
    with pytest.raises(CommandRefused, match="not finished"):
        plan_reopen(
            ReopenCommand(**WHO, incident_id="inc-1"),
            replace(inc, status="dispatched"),
            tasks,
            CTX,
            T0,
        )


@pytest.mark.parametrize(
    ("outcome", "reopens"), [("satisfied", False), ("unreachable", False), ("unsatisfied", True)]
)
def test_a_callback_is_recorded_and_an_unsatisfied_one_reopens(outcome: str, reopens: bool) -> None:
    inc = incident("flooding", 2, status="resolved")
    command = CallbackCommand(**WHO, incident_id="inc-1", outcome=outcome)  # type: ignore[arg-type]
    plan = plan_callback(command, inc, tasks_of(inc, "resolved"), CTX, T0 + H)
    assert plan.incident_fields["callback"] == outcome
    assert bool(plan.messages) is reopens


def test_a_merged_incident_cancels_its_open_tasks_and_says_into_what() -> None:
    inc = incident("flooding", 2)
    tasks = tasks_of(inc)
    merged = replace(inc, status="closed", merged_into="inc-2")
    plan = plan_incident(merged, tasks, CTX, T0 + H)
    assert {t.status for t in plan.tasks} == {"cancelled"} and len(plan.tasks) == len(tasks)
    assert {m.kind for m in plan.messages} == {"task.cancelled"}
    assert {m.payload["merged_into"] for m in plan.messages} == {"inc-2"}
    assert plan.incident_status == "closed"


def test_an_incident_placed_by_an_operator_leaves_the_operations_center() -> None:
    unplaced = replace(
        incident("flooding", 2), location_status="needs_location", district=None, lon=None, lat=None
    )
    center = replace(
        next(iter(create(unplaced).values())), department=OPS, route="root", status="dispatched"
    )
    placed = incident("flooding", 2)
    plan = plan_incident(placed, {OPS: center}, CTX, T0 + H)
    by = {t.department: t for t in plan.tasks}
    assert by[OPS].status == "cancelled"
    assert any(d != OPS and t.status == "dispatched" for d, t in by.items())
