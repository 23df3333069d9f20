"""The dispatch planner, table by table, on the shipped Shanghai routes and SLA policy and a
fixed clock: the tasks a new incident creates, idempotency under redelivery and many
reports, priority changes, department status reports (rejection re-routes), reopening, and
the reminder and escalation ladders."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from citybrain.dispatch.plan import (
    DispatchContext,
    IncidentView,
    Plan,
    StatusReport,
    Task,
    TransitionError,
    dispatch_id_of,
    incident_status,
    next_action_at,
    plan_escalations,
    plan_incident,
    plan_status,
    report_bucket,
)
from citybrain.dispatch.routing import default_routing
from citybrain.dispatch.sla import WorkingHours, default_sla_policy

GAS = "jurisdiction:gas"
DRAIN = "jurisdiction:drainage"
ZONES: dict[str, dict[str, str]] = {
    "gas_leak": {GAS: "gas-pudong"},
    "flooding": {DRAIN: "drain-pudong"},
}
OPS = "ops-center"
POLICY = default_sla_policy()
CTX = DispatchContext(
    routing=default_routing(),
    policy=POLICY,
    hours=WorkingHours.of(POLICY),
    jurisdictions=lambda inc: ZONES.get(inc.category, {}),
)

# Tuesday 2026-11-24 10:00 in Shanghai: an ordinary working day.
T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
M = timedelta(minutes=1)
H = timedelta(hours=1)
ACK_LADDER = ("ack_reminder", "ack_supervisor", "ack_operations_center")
RESOLVE_LADDER = ("resolve_reminder", "resolve_supervisor", "resolve_operations_center")


def incident(
    category: str,
    priority: int,
    *,
    reports: int = 1,
    status: str = "new",
    at: datetime = T0,
    incident_id: str = "inc-1",
) -> IncidentView:
    return IncidentView(
        incident_id=incident_id,
        category=category,
        priority=priority,
        status=status,
        first_seen=T0,
        last_seen=at,
        reports_total=reports,
        district="310115",
        lon=121.5,
        lat=31.2,
        reports={"citizen_hotline": reports},
    )


def create(inc: IncidentView, at: datetime = T0) -> dict[str, Task]:
    """The incident's tasks by department, as the agent would store them."""
    return by_department(plan_incident(inc, {}, CTX, at))


def by_department(plan: Plan) -> dict[str, Task]:
    return {t.department: t for t in plan.tasks}


def report(task: Task, status: str, at: datetime, **kw: str) -> StatusReport:
    return StatusReport(task.dispatch_id, task.department, status, at, actor="duty-officer", **kw)


def suffixes(plan: Plan) -> list[tuple[str, str, str]]:
    """(the message id after the dispatch id, to whom, kind) of each message."""
    return [(m.message_id.split(":", 1)[1], m.department, m.kind) for m in plan.messages]


# --- ids and buckets ---------------------------------------------------------------------------
def test_dispatch_id_is_deterministic_per_incident_and_department() -> None:
    one = dispatch_id_of("inc-1", "fire")
    assert one == dispatch_id_of("inc-1", "fire")
    assert re.fullmatch(r"dsp-[0-9a-f]{16}", one)
    assert len({one, dispatch_id_of("inc-2", "fire"), dispatch_id_of("inc-1", "police")}) == 3


@pytest.mark.parametrize(
    ("count", "bucket"),
    [(0, 1), (1, 1), (2, 2), (3, 2), (4, 4), (7, 4), (8, 8), (31, 16), (32, 32), (50, 32)],
)
def test_report_bucket(count: int, bucket: int) -> None:
    assert report_bucket(count) == bucket


def test_incident_view_from_message() -> None:
    view = IncidentView.from_message(
        {
            "incident_id": "inc-1",
            "category": "gas_leak",
            "priority": "1",
            "status": "new",
            "first_seen": "2026-11-24T10:00:00+08:00",
            "last_seen": "2026-11-24T10:05:00+08:00",
            "reports_total": 3,
            "district": "310115",
        }
    )
    assert (view.priority, view.reports_total, view.first_seen) == (1, 3, T0)
    assert (view.location_status, view.reports, view.lon) == ("located", {}, None)


# --- a new incident ----------------------------------------------------------------------------
CREATE_CASES = [
    # category, priority, lead, helpers, route, ack deadline, resolve deadline, clock
    (
        "gas_leak",
        1,
        "gas-pudong",
        ("fire", "police"),
        "root/gas/gas-zone/gas-zone-urgent",
        T0 + 3 * M,
        T0 + 1 * H,
        "calendar",
    ),
    ("gas_leak", 3, "gas-pudong", (), "root/gas/gas-zone", T0 + 5 * M, T0 + 2 * H, "calendar"),
    ("fire_smoke", 3, "fire", (), "root/fire", T0 + 5 * M, T0 + 2 * H, "calendar"),
    (
        "fire_smoke",
        1,
        "fire",
        ("police",),
        "root/fire/fire-urgent",
        T0 + 3 * M,
        T0 + 1 * H,
        "calendar",
    ),
    (
        "flooding",
        2,
        "drain-pudong",
        (),
        "root/drainage/drainage-zone",
        T0 + 15 * M,
        T0 + 6 * H,
        "calendar",
    ),
    ("manhole", 1, "municipal", (), "root/municipal", T0 + 10 * M, T0 + 2 * H, "calendar"),
    # no route of its own: the operations center, on the default policy
    ("unknown_thing", 1, OPS, (), "root", T0 + 15 * M, T0 + 4 * H, "calendar"),
    # office hours: Tue 10:00 + 4 working hours = 14:00; + 3 working days (8h30m each) =
    # Tue 7h30m, Wed 8h30m, Thu 8h30m, Fri 1h -> Fri 10:00 (Shanghai)
    (
        "streetlight_out",
        3,
        "streetlight",
        (),
        "root/streetlight",
        datetime(2026, 11, 24, 6, 0, tzinfo=UTC),
        datetime(2026, 11, 27, 2, 0, tzinfo=UTC),
        "working",
    ),
]


@pytest.mark.parametrize(
    ("category", "priority", "lead", "helpers", "route", "ack_at", "resolve_at", "clock"),
    CREATE_CASES,
)
def test_new_incident_creates_the_tasks_of_its_route(
    category: str,
    priority: int,
    lead: str,
    helpers: tuple[str, ...],
    route: str,
    ack_at: datetime,
    resolve_at: datetime,
    clock: str,
) -> None:
    inc = incident(category, priority, reports=3)
    plan = plan_incident(inc, {}, CTX, T0)

    tasks = by_department(plan)
    assert [t.department for t in plan.tasks] == [lead, *helpers]
    assert {d: t.role for d, t in tasks.items()} == {
        lead: "lead",
        **{h: "helper" for h in helpers},
    }
    for department, task in tasks.items():
        assert task.dispatch_id == dispatch_id_of("inc-1", department)
        assert (task.status, task.priority, task.category) == ("dispatched", priority, category)
        assert (task.ack_deadline, task.resolve_deadline, task.sla_clock) == (
            ack_at,
            resolve_at,
            clock,
        )
        assert (task.created_at, task.updated_at, task.report_count) == (T0, T0, 3)
        assert task.route == route
        assert (task.escalations, task.reopened, task.acknowledged_at) == ((), 0, None)
        assert task.details["lead"] == lead
        assert task.details["helpers"] == list(helpers)
        assert task.next_action_at == next_action_at(task, CTX)
        assert task.next_action_at is not None and T0 < task.next_action_at < ack_at

    assert [(m.message_id, m.department, m.kind) for m in plan.messages] == [
        (f"{t.dispatch_id}:created", t.department, "task.created") for t in plan.tasks
    ]
    for message, task in zip(plan.messages, plan.tasks, strict=True):
        assert message.payload["message_id"] == message.message_id
        assert message.payload["kind"] == "task.created"
        assert message.payload["role"] == task.role
        assert message.payload["ack_deadline"] == ack_at.isoformat()
    assert [(h.dispatch_id, h.status, h.at, h.note) for h in plan.history] == [
        (t.dispatch_id, "dispatched", T0, f"route {route}") for t in plan.tasks
    ]
    assert plan.incident_status == "dispatched"
    # the same incident planned afresh gives the same ids
    assert plan_incident(inc, {}, CTX, T0) == plan


def test_the_reminder_lands_in_working_time() -> None:
    # Friday 2026-11-27 16:00 in Shanghai: 1h30m of Friday, then Monday
    friday = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    [task] = create(incident("streetlight_out", 3, at=friday), friday).values()
    assert task.ack_deadline == datetime(2026, 11, 30, 3, 30, tzinfo=UTC)  # Mon 11:30
    assert task.next_action_at == datetime(2026, 11, 30, 2, 42, tzinfo=UTC)  # 80%: Mon 10:42
    saturday = friday + 24 * H
    assert plan_escalations(task, CTX, saturday, OPS) == Plan()


# --- idempotency -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("category", "priority"), [(c[0], c[1]) for c in CREATE_CASES], ids=lambda v: str(v)
)
def test_planning_the_same_incident_again_changes_nothing(category: str, priority: int) -> None:
    inc = incident(category, priority, reports=3)
    tasks = create(inc)
    again = plan_incident(inc, tasks, CTX, T0 + 10 * M)
    assert (again.tasks, again.history, again.messages) == ([], [], [])
    assert again.incident_status == "dispatched"


@pytest.mark.parametrize(
    ("category", "priority", "departments"),
    [
        ("gas_leak", 1, {"gas-pudong", "fire", "police"}),
        ("flooding", 2, {"drain-pudong"}),
        ("fire_smoke", 1, {"fire", "police"}),
    ],
)
def test_fifty_reports_make_one_task_per_department(
    category: str, priority: int, departments: set[str]
) -> None:
    tasks: dict[str, Task] = {}
    messages = []
    created = Counter[str]()
    for n in range(1, 51):
        at = T0 + n * M
        plan = plan_incident(incident(category, priority, reports=n, at=at), tasks, CTX, at)
        created.update(t.department for t in plan.tasks if t.department not in tasks)
        tasks.update(by_department(plan))
        messages += plan.messages

    assert set(tasks) == departments
    assert created == dict.fromkeys(departments, 1)
    assert all(t.report_count == 50 for t in tasks.values())
    assert all(t.dispatch_id == dispatch_id_of("inc-1", d) for d, t in tasks.items())
    ids = [m.message_id for m in messages]
    assert len(ids) == len(set(ids))
    for department, task in tasks.items():
        mine = [m for m in messages if m.department == department]
        assert [(m.kind, m.message_id) for m in mine] == [
            ("task.created", f"{task.dispatch_id}:created"),
            *(("task.updated", f"{task.dispatch_id}:reports-{b}") for b in (2, 4, 8, 16, 32)),
        ]
        assert [m.payload["report_count"] for m in mine] == [1, 2, 4, 8, 16, 32]

    # a redelivered last message, or a late older one, sends nothing and loses no report
    for n in (50, 10):
        late = plan_incident(incident(category, priority, reports=n), tasks, CTX, T0 + 60 * M)
        assert late.messages == []
        assert all(t.report_count == 50 for t in late.tasks)


# --- priority changes --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("category", "old", "new", "at", "ack_at", "resolve_at", "new_helpers"),
    [
        # tightened from the creation time, not from the raise
        ("gas_leak", 3, 1, T0 + 1 * M, T0 + 3 * M, T0 + 1 * H, ("fire", "police")),
        ("gas_leak", 4, 3, T0 + 10 * M, T0 + 5 * M, T0 + 2 * H, ()),
        ("flooding", 3, 1, T0 + 30 * M, T0 + 10 * M, T0 + 3 * H, ()),
        ("fire_smoke", 3, 1, T0 + 2 * M, T0 + 3 * M, T0 + 1 * H, ("police",)),
        # priority 2 of gas_leak allows what priority 3 does: nothing to tighten
        ("gas_leak", 3, 2, T0 + 1 * M, T0 + 5 * M, T0 + 2 * H, ()),
    ],
)
def test_a_raised_priority_tightens_the_deadlines(
    category: str,
    old: int,
    new: int,
    at: datetime,
    ack_at: datetime,
    resolve_at: datetime,
    new_helpers: tuple[str, ...],
) -> None:
    tasks = create(incident(category, old))
    [(lead, before)] = tasks.items()
    plan = plan_incident(incident(category, new, at=at), tasks, CTX, at)

    after = by_department(plan)[lead]
    assert after.dispatch_id == before.dispatch_id
    assert (after.priority, after.ack_deadline, after.resolve_deadline) == (new, ack_at, resolve_at)
    assert after.ack_deadline <= before.ack_deadline
    assert after.resolve_deadline <= before.resolve_deadline
    assert (after.created_at, after.updated_at) == (T0, at)
    assert after.next_action_at == next_action_at(after, CTX)
    updated = [m for m in plan.messages if m.kind == "task.updated"]
    assert [(m.message_id, m.department) for m in updated] == [
        (f"{before.dispatch_id}:priority-{new}", lead)
    ]
    assert updated[0].payload["priority"] == new
    assert [h.status for h in plan.history if h.dispatch_id == before.dispatch_id] == [
        "priority_raised"
    ]
    # helpers the more urgent route asks for are created at the new priority, counted from now
    created = [t for t in plan.tasks if t.department != lead]
    assert [(t.department, t.role, t.created_at) for t in created] == [
        (h, "helper", at) for h in new_helpers
    ]
    assert [m.kind for m in plan.messages if m.department != lead] == ["task.created"] * len(
        new_helpers
    )
    # the same raised incident again: nothing more
    tasks.update(by_department(plan))
    again = plan_incident(incident(category, new, at=at), tasks, CTX, at + M)
    assert (again.tasks, again.messages) == ([], [])


@pytest.mark.parametrize(
    ("category", "old", "new"), [("gas_leak", 1, 3), ("flooding", 1, 4), ("fire_smoke", 2, 4)]
)
def test_a_lowered_priority_changes_no_deadline(category: str, old: int, new: int) -> None:
    tasks = create(incident(category, old))
    plan = plan_incident(incident(category, new), tasks, CTX, T0 + 5 * M)
    assert (plan.tasks, plan.messages, plan.history) == ([], [], [])
    # with more reports the tasks are updated, but keep their priority and deadlines
    plan = plan_incident(incident(category, new, reports=2), tasks, CTX, T0 + 5 * M)
    for task in plan.tasks:
        before = tasks[task.department]
        assert (task.priority, task.ack_deadline, task.resolve_deadline) == (
            before.priority,
            before.ack_deadline,
            before.resolve_deadline,
        )
    assert {m.kind for m in plan.messages} == {"task.updated"}
    assert all(m.message_id.endswith(":reports-2") for m in plan.messages)


# --- status reports ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("at", "on_time"),
    [(T0 + 2 * M, True), (T0 + 3 * M, True), (T0 + 3 * M + timedelta(seconds=1), False)],
)
def test_acknowledge(at: datetime, on_time: bool) -> None:
    tasks = create(incident("gas_leak", 1))
    lead = tasks["gas-pudong"]
    now = at + timedelta(seconds=5)
    plan = plan_status(report(lead, "acknowledged", at), lead, tasks, None, CTX, now)

    [task] = plan.tasks
    assert (task.status, task.acknowledged_at, task.updated_at) == ("acknowledged", at, now)
    assert task.next_action_at == T0 + 48 * M  # only the resolve ladder is left
    [row] = plan.history
    assert (row.status, row.at, row.on_time, row.actor) == (
        "acknowledged",
        at,
        on_time,
        "duty-officer",
    )
    assert plan.messages == []
    assert plan.incident_status == "acknowledged"
    # the same report again is a no-op
    tasks["gas-pudong"] = task
    assert plan_status(report(task, "acknowledged", at), task, tasks, None, CTX, now) == Plan()


@pytest.mark.parametrize(
    ("steps", "at", "acknowledged_at", "on_time"),
    [
        ((), T0 + 30 * M, T0 + 30 * M, True),  # resolved straight away counts as acknowledged
        (("acknowledged",), T0 + 30 * M, T0 + 1 * M, True),
        (("acknowledged", "in_progress"), T0 + 2 * H, T0 + 1 * M, False),
        (("in_progress",), T0 + 1 * H, T0 + 1 * M, True),
    ],
)
def test_resolve(
    steps: tuple[str, ...], at: datetime, acknowledged_at: datetime, on_time: bool
) -> None:
    tasks = create(incident("gas_leak", 1))
    task = tasks["gas-pudong"]
    for status in steps:
        [task] = plan_status(report(task, status, T0 + M), task, tasks, None, CTX, T0 + M).tasks
        tasks[task.department] = task
    plan = plan_status(
        report(task, "resolved", at, note="valve closed"), task, tasks, None, CTX, at
    )

    [done] = plan.tasks
    assert (done.status, done.note, done.resolved_at) == ("resolved", "valve closed", at)
    assert done.acknowledged_at == acknowledged_at
    assert done.next_action_at is None
    assert [(h.status, h.on_time, h.note) for h in plan.history] == [
        ("resolved", on_time, "valve closed")
    ]
    # the lead is done: so is the incident, whatever the helpers still do
    assert plan.incident_status == "resolved"
    assert tasks["fire"].status == "dispatched"


@pytest.mark.parametrize(
    ("current", "status"),
    [
        ("rejected", "resolved"),
        ("rejected", "acknowledged"),
        ("resolved", "acknowledged"),
        ("resolved", "rejected"),
        ("in_progress", "acknowledged"),
        ("cancelled", "resolved"),
        ("dispatched", "done"),  # no such status
        ("dispatched", "dispatched_again"),
    ],
)
def test_transitions_that_do_not_fit_raise(current: str, status: str) -> None:
    tasks = create(incident("gas_leak", 1))
    task = replace(tasks["gas-pudong"], status=current)
    with pytest.raises(TransitionError):
        plan_status(report(task, status, T0 + M), task, tasks, None, CTX, T0 + M)


@pytest.mark.parametrize("status", ["acknowledged", "resolved", "rejected"])
def test_only_the_department_reports_on_its_task(status: str) -> None:
    tasks = create(incident("gas_leak", 1))
    task = tasks["gas-pudong"]
    wrong = replace(report(task, status, T0 + M), department="fire")
    with pytest.raises(PermissionError):
        plan_status(wrong, task, tasks, None, CTX, T0 + M)


@pytest.mark.parametrize(
    ("category", "priority", "rejecting", "lead", "route", "created"),
    [
        # the zone's gas company says "not ours": the center assigns it, fire and police
        # already help (no second task for them)
        ("gas_leak", 1, "gas-pudong", OPS, "root/gas/gas-urgent-center", [OPS]),
        ("gas_leak", 3, "gas-pudong", OPS, "root/gas", [OPS]),
        ("flooding", 2, "drain-pudong", OPS, "root/drainage", [OPS]),
        ("fire_smoke", 3, "fire", OPS, "root", [OPS]),
        # a helper that declines changes nobody's lead
        ("gas_leak", 1, "fire", "gas-pudong", "root/gas/gas-zone/gas-zone-urgent", []),
        ("fire_smoke", 1, "police", "fire", "root/fire/fire-urgent", []),
    ],
)
def test_a_rejection_reroutes_without_the_rejecting_department(
    category: str,
    priority: int,
    rejecting: str,
    lead: str,
    route: str,
    created: list[str],
) -> None:
    inc = incident(category, priority)
    tasks = create(inc)
    task = tasks[rejecting]
    at = T0 + 2 * M
    plan = plan_status(report(task, "rejected", at, reason="not ours"), task, tasks, inc, CTX, at)

    rejected, *new = plan.tasks
    assert (rejected.department, rejected.status, rejected.reason) == (
        rejecting,
        "rejected",
        "not ours",
    )
    assert rejected.next_action_at is None
    assert [t.department for t in new] == created
    for t in new:
        assert (t.role, t.status, t.route, t.created_at) == ("lead", "dispatched", route, at)
        assert t.dispatch_id == dispatch_id_of("inc-1", t.department)
        assert t.ack_deadline > at
    assert [(m.department, m.kind) for m in plan.messages] == [(d, "task.created") for d in created]
    assert [h.status for h in plan.history] == ["rejected"] + ["dispatched"] * len(created)
    assert plan.history[0].note == "not ours"
    assert plan.incident_status == "dispatched"

    # the new lead's task counts for the incident; the rejected one never again
    tasks.update(by_department(plan))
    leads = [t for t in tasks.values() if t.role == "lead" and t.status != "rejected"]
    assert [t.department for t in leads] == [lead]
    assert plan_escalations(tasks[rejecting], CTX, T0 + 3 * H, OPS) == Plan()
    # resolving the (new) lead's task resolves the incident
    done = leads[0]
    resolved = plan_status(report(done, "resolved", T0 + H), done, tasks, inc, CTX, T0 + H)
    assert resolved.incident_status == "resolved"
    # the incident planned again (redelivered) does not bring back the rejected department
    again = plan_incident(inc, tasks, CTX, T0 + H)
    assert (again.tasks, again.messages) == ([], [])


@pytest.mark.parametrize(
    ("tasks", "current", "expected"),
    [
        ([("lead", "dispatched"), ("helper", "dispatched")], "new", "dispatched"),
        ([("lead", "dispatched"), ("helper", "acknowledged")], "new", "acknowledged"),
        ([("lead", "in_progress"), ("helper", "dispatched")], "new", "acknowledged"),
        ([("lead", "resolved"), ("helper", "dispatched")], "new", "resolved"),
        (
            [("lead", "rejected"), ("lead", "resolved"), ("helper", "in_progress")],
            "new",
            "resolved",
        ),
        (
            [("lead", "rejected"), ("lead", "dispatched"), ("helper", "resolved")],
            "new",
            "acknowledged",
        ),
        ([("lead", "resolved"), ("helper", "dispatched")], "reopened", "resolved"),
        ([("helper", "resolved"), ("helper", "resolved")], "new", "resolved"),  # no lead left
        ([("lead", "rejected")], "reopened", "reopened"),  # nothing live: unchanged
        ([], "new", "new"),
    ],
)
def test_incident_status(tasks: list[tuple[str, str]], current: str, expected: str) -> None:
    [template] = create(incident("fire_smoke", 3)).values()
    rows = [
        replace(template, department=f"d{i}", role=role, status=status)
        for i, (role, status) in enumerate(tasks)
    ]
    assert incident_status(rows, current) == expected


# --- reopen ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("priority", "reopened_priority", "ack", "resolve"),
    [(1, 1, 3 * M, 1 * H), (1, 3, 5 * M, 2 * H), (3, 1, 3 * M, 1 * H)],
)
def test_a_reopened_incident_reopens_its_resolved_tasks(
    priority: int, reopened_priority: int, ack: timedelta, resolve: timedelta
) -> None:
    tasks = create(incident("gas_leak", priority))
    for department, task in tasks.items():
        task = replace(task, escalations=("ack_reminder",))
        done = plan_status(
            report(task, "resolved", T0 + 30 * M, note="fixed"), task, tasks, None, CTX, T0 + 30 * M
        )
        tasks[department] = done.tasks[0]
    assert incident_status(tasks.values(), "new") == "resolved"

    # new reports while the incident is resolved (not reopened) change no task's status
    later = T0 + 2 * H
    quiet = plan_incident(incident("gas_leak", priority, reports=2, at=later), tasks, CTX, later)
    assert quiet.messages == []
    assert {t.status for t in quiet.tasks} == {"resolved"}
    assert quiet.incident_status == "resolved"

    t1 = T0 + 3 * H
    inc = incident("gas_leak", reopened_priority, reports=5, status="reopened", at=t1)
    plan = plan_incident(inc, tasks, CTX, t1)

    reopened = {t.department: t for t in plan.tasks if t.department in tasks}
    assert set(reopened) == set(tasks)
    for department, task in reopened.items():
        assert task.dispatch_id == tasks[department].dispatch_id
        assert (task.status, task.reopened, task.report_count) == ("dispatched", 1, 5)
        assert (task.created_at, task.updated_at) == (t1, t1)
        assert (task.ack_deadline, task.resolve_deadline) == (t1 + ack, t1 + resolve)
        assert task.priority == reopened_priority
        assert (task.acknowledged_at, task.resolved_at, task.escalations) == (None, None, ())
        assert task.next_action_at == next_action_at(task, CTX)
        assert task.next_action_at is not None and task.next_action_at > t1
    reopen_messages = [m for m in plan.messages if m.kind == "task.reopened"]
    assert sorted((m.message_id, m.department) for m in reopen_messages) == sorted(
        (f"{t.dispatch_id}:reopened-1", d) for d, t in reopened.items()
    )
    reopened_ids = {t.dispatch_id for t in reopened.values()}
    assert {h.status for h in plan.history if h.dispatch_id in reopened_ids} == {"reopened"}
    assert plan.incident_status == "dispatched"

    # the reopened incident redelivered: nothing more
    tasks.update(by_department(plan))
    again = plan_incident(inc, tasks, CTX, t1 + M)
    assert (again.tasks, again.messages) == ([], [])


def test_a_rejected_task_is_not_reopened() -> None:
    inc = incident("gas_leak", 3)
    tasks = create(inc)
    task = tasks["gas-pudong"]
    tasks.update(
        by_department(plan_status(report(task, "rejected", T0 + M), task, tasks, inc, CTX, T0 + M))
    )
    center = tasks[OPS]
    tasks.update(
        by_department(
            plan_status(report(center, "resolved", T0 + H), center, tasks, inc, CTX, T0 + H)
        )
    )
    t1 = T0 + 3 * H
    plan = plan_incident(replace(inc, status="reopened", reports_total=2), tasks, CTX, t1)
    assert [(t.department, t.status) for t in plan.tasks] == [(OPS, "dispatched")]
    assert [m.message_id for m in plan.messages] == [f"{center.dispatch_id}:reopened-1"]


# --- reminders and escalations -----------------------------------------------------------------
# gas_leak priority 1, on the calendar clock: acknowledge within 3m, resolve within 1h;
# remind at 80%, supervisor at the deadline, operations center at 150%.
ESCALATION_CASES = [
    # at, messages (action:to, to, kind), next look
    (T0 + 2 * M, [], T0 + 2 * M + timedelta(seconds=24)),
    (
        T0 + 2 * M + timedelta(seconds=30),
        [("ack_reminder:gas-pudong", "gas-pudong", "task.reminder")],
        T0 + 3 * M,
    ),
    (
        T0 + 3 * M,
        [("ack_supervisor:gas-pudong", "gas-pudong", "task.escalated")],
        T0 + 4 * M + timedelta(seconds=30),
    ),
    (
        T0 + 5 * M,
        [("ack_operations_center:ops-center", OPS, "task.escalated")],
        T0 + 48 * M,
    ),
    (
        T0 + 50 * M,
        [
            ("ack_operations_center:ops-center", OPS, "task.escalated"),
            ("resolve_reminder:gas-pudong", "gas-pudong", "task.reminder"),
        ],
        T0 + 1 * H,
    ),
    (
        T0 + 1 * H,
        [
            ("ack_operations_center:ops-center", OPS, "task.escalated"),
            ("resolve_supervisor:gas-pudong", "gas-pudong", "task.escalated"),
        ],
        T0 + 90 * M,
    ),
    (
        T0 + 2 * H,
        [
            ("ack_operations_center:ops-center", OPS, "task.escalated"),
            ("resolve_operations_center:ops-center", OPS, "task.escalated"),
        ],
        None,
    ),
]


@pytest.mark.parametrize(("at", "expected", "next_at"), ESCALATION_CASES)
def test_escalations_due_at(
    at: datetime, expected: list[tuple[str, str, str]], next_at: datetime | None
) -> None:
    task = create(incident("gas_leak", 1))["gas-pudong"]
    plan = plan_escalations(task, CTX, at, OPS)

    assert suffixes(plan) == expected
    if not expected:
        assert plan == Plan()
        assert task.next_action_at == next_at
        return
    [changed] = plan.tasks
    assert changed.next_action_at == next_at
    assert changed.updated_at == at
    # the furthest step of a ladder stands for the steps it skipped: none is sent later
    sent = {m.message_id.split(":")[1] for m in plan.messages}
    for ladder in (ACK_LADDER, RESOLVE_LADDER):
        reached = [a for a in ladder if a in sent]
        if reached:
            assert set(ladder[: ladder.index(reached[-1]) + 1]) <= set(changed.escalations)
    assert [(h.status, h.note) for h in plan.history] == [
        ("reminded" if kind == "task.reminder" else "escalated", suffix.split(":")[0])
        for suffix, _, kind in expected
    ]
    for message in plan.messages:
        assert message.payload["action"] == message.message_id.split(":")[1]
        assert message.payload["department"] == "gas-pudong"
    # the same timer pass again sends nothing
    assert plan_escalations(changed, CTX, at, OPS) == Plan()


def test_the_escalation_ladder_step_by_step() -> None:
    task = create(incident("gas_leak", 1))["gas-pudong"]
    times = [T0 + i * timedelta(seconds=30) for i in range(240)]  # every 30s for 2h
    ids: list[str] = []
    looks: list[datetime] = []
    for at in times:
        plan = plan_escalations(task, CTX, at, OPS)
        ids += [m.message_id for m in plan.messages]
        if plan.tasks:
            [task] = plan.tasks
        if task.next_action_at is not None and (not looks or looks[-1] != task.next_action_at):
            looks.append(task.next_action_at)
    assert [i.split(":", 1)[1] for i in ids] == [
        "ack_reminder:gas-pudong",
        "ack_supervisor:gas-pudong",
        "ack_operations_center:ops-center",
        "resolve_reminder:gas-pudong",
        "resolve_supervisor:gas-pudong",
        "resolve_operations_center:ops-center",
    ]
    assert looks == sorted(looks)
    assert task.next_action_at is None
    assert set(task.escalations) == set(ACK_LADDER + RESOLVE_LADDER)


@pytest.mark.parametrize(
    ("category", "priority", "department", "deadline", "targets", "supervisor"),
    [
        # escalate_to is the operations center: the department's channels only
        ("gas_leak", 1, "gas-pudong", T0 + 3 * M, ["gas-pudong"], "抢修调度值班长"),
        ("fire_smoke", 1, "fire", T0 + 3 * M, ["fire"], "指挥中心值班长"),
        # the streetlight office escalates to municipal as well
        (
            "streetlight_out",
            1,
            "streetlight",
            T0 + 30 * M,
            ["streetlight", "municipal"],
            "路灯管理所值班长",
        ),
        # the operations center's own task: told once
        ("unknown_thing", 2, OPS, T0 + 30 * M, [OPS], "城运中心值班长"),
    ],
)
def test_supervisor_escalation_targets(
    category: str,
    priority: int,
    department: str,
    deadline: datetime,
    targets: list[str],
    supervisor: str,
) -> None:
    task = create(incident(category, priority))[department]
    assert task.ack_deadline == deadline
    plan = plan_escalations(task, CTX, deadline, OPS)
    assert suffixes(plan) == [(f"ack_supervisor:{t}", t, "task.escalated") for t in targets]
    assert {m.payload["supervisor"] for m in plan.messages} == {supervisor}
    assert {m.payload["deadline"] for m in plan.messages} == {deadline.isoformat()}
    assert len(plan.history) == 1
    # past 150%: the operations center, once
    [task] = plan.tasks
    late = plan_escalations(task, CTX, T0 + (deadline - T0) * 3 / 2, OPS)
    assert suffixes(late) == [("ack_operations_center:ops-center", OPS, "task.escalated")]


def test_a_task_of_a_department_the_configuration_lost_goes_to_the_operations_center_once() -> None:
    """A department removed from departments.yaml (or another city's, on the same
    database): its due task is escalated to the operations center once, to be reassigned,
    and its timers stop; it never raises in the timer pass."""
    task = replace(create(incident("gas_leak", 1))["gas-pudong"], department="gas-elsewhere")
    plan = plan_escalations(task, CTX, T0 + 4 * M, OPS)
    assert suffixes(plan) == [("department_unknown:ops-center", OPS, "task.escalated")]
    assert [(h.status, h.note) for h in plan.history] == [("escalated", "department_unknown")]
    [stopped] = plan.tasks
    assert stopped.next_action_at is None
    assert "department_unknown" in stopped.escalations
    # later passes (a stale timer) send nothing again
    again = plan_escalations(replace(stopped, next_action_at=T0), CTX, T0 + 3 * H, OPS)
    assert again.messages == [] and again.history == []
    assert [t.next_action_at for t in again.tasks] == [None]


@pytest.mark.parametrize("status", ["acknowledged", "in_progress"])
def test_an_acknowledged_task_only_climbs_the_resolve_ladder(status: str) -> None:
    tasks = create(incident("gas_leak", 1))
    task = tasks["gas-pudong"]
    [task] = plan_status(report(task, status, T0 + M), task, tasks, None, CTX, T0 + M).tasks
    assert task.next_action_at == T0 + 48 * M

    for at in (T0 + 3 * M, T0 + 5 * M, T0 + 47 * M):
        assert plan_escalations(task, CTX, at, OPS) == Plan()
    # a stale next look is moved on without a message
    stale = plan_escalations(replace(task, next_action_at=T0 + 2 * M), CTX, T0 + 5 * M, OPS)
    assert stale.messages == []
    assert [t.next_action_at for t in stale.tasks] == [T0 + 48 * M]

    expected = [
        (T0 + 50 * M, "resolve_reminder:gas-pudong", T0 + 1 * H),
        (T0 + 1 * H, "resolve_supervisor:gas-pudong", T0 + 90 * M),
        (T0 + 90 * M, "resolve_operations_center:ops-center", None),
    ]
    for at, message, next_at in expected:
        plan = plan_escalations(task, CTX, at, OPS)
        assert [s for s, _, _ in suffixes(plan)] == [message]
        [task] = plan.tasks
        assert task.next_action_at == next_at
        assert plan_escalations(task, CTX, at, OPS) == Plan()
    assert not any(a.startswith("ack_") for a in task.escalations)


@pytest.mark.parametrize("status", ["resolved", "rejected", "cancelled"])
def test_a_closed_task_is_never_escalated(status: str) -> None:
    task = create(incident("gas_leak", 1))["gas-pudong"]
    closed = replace(task, status=status, next_action_at=None)
    assert next_action_at(closed, CTX) is None
    for at in (T0 + 3 * M, T0 + 1 * H, T0 + 3 * H):
        assert plan_escalations(closed, CTX, at, OPS) == Plan()


def test_messages_keep_unique_ids_across_a_whole_incident() -> None:
    """Creation, reports, a raise, a rejection, escalations and a reopen: no id twice."""
    ids: list[str] = []
    tasks: dict[str, Task] = {}

    def take(plan: Plan) -> None:
        ids.extend(m.message_id for m in plan.messages)
        tasks.update(by_department(plan))

    take(plan_incident(incident("gas_leak", 3), tasks, CTX, T0))
    take(plan_incident(incident("gas_leak", 3, reports=4, at=T0 + M), tasks, CTX, T0 + M))
    take(plan_incident(incident("gas_leak", 1, reports=4, at=T0 + M), tasks, CTX, T0 + M))
    for at in (T0 + 4 * M, T0 + 5 * M, T0 + 2 * H):
        for task in list(tasks.values()):
            take(plan_escalations(task, CTX, at, OPS))
    lead = tasks["gas-pudong"]
    inc = incident("gas_leak", 1, reports=4, at=T0 + 2 * H)
    take(plan_status(report(lead, "rejected", T0 + 2 * H), lead, tasks, inc, CTX, T0 + 2 * H))
    for task in list(tasks.values()):
        if task.status != "rejected":
            at = T0 + 3 * H
            take(plan_status(report(task, "resolved", at), task, tasks, inc, CTX, at))
    t1 = T0 + 5 * H
    take(plan_incident(replace(inc, status="reopened", reports_total=9), tasks, CTX, t1))

    assert len(ids) == len(set(ids))
    assert any(i.endswith(":priority-1") for i in ids)
    assert sum(i.endswith(":reopened-1") for i in ids) == 3  # ops-center, fire, police
    assert tasks["gas-pudong"].status == "rejected"
