"""The dispatch stage's batch decisions (pure): the newest change of each incident is
planned, changes of incidents the database lacks are handed back, one that fails to plan
does not stop the others; a status report and a stored row in the planner's terms."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from citybrain.dispatch.batch import incident_view, latest_changes, plan_batch, status_report
from citybrain.dispatch.extension import plan_extension
from citybrain.dispatch.plan import DispatchContext
from citybrain.schemas.dispatch_status import StatusReportModel
from tests.citybrain.dispatch.test_plan import CTX, T0, create, incident


def test_only_the_newest_change_of_an_incident_is_planned() -> None:
    changes = [incident("fire", 2, reports=1), incident("fire", 2, reports=5)]
    assert latest_changes(changes) == {"inc-1": 1}
    out = plan_batch(changes, {"inc-1"}, {}, CTX, T0)
    ((index, plan),) = out.plans
    assert index == 1
    assert {t.report_count for t in plan.tasks} == {5}


def test_a_change_of_an_incident_not_stored_is_handed_back() -> None:
    out = plan_batch([incident("fire", 2, incident_id="ghost")], set(), {}, CTX, T0)
    assert out.unknown == [0] and out.plans == []


def test_one_change_that_fails_to_plan_leaves_the_others_planned() -> None:
    broken = DispatchContext(
        routing=CTX.routing, policy=CTX.policy, hours=CTX.hours, jurisdictions=_explode
    )
    changes = [incident("fire", 2, incident_id="a"), incident("fire", 2, incident_id="boom")]
    out = plan_batch(changes, {"a", "boom"}, {}, broken, T0)
    assert [i for i, _ in out.plans] == [0]
    assert [(i, str(e)) for i, e in out.failed] == [(1, "no map for boom")]


def _explode(inc: Any) -> dict[str, str]:
    if inc.incident_id == "boom":
        raise LookupError("no map for boom")
    return {}


def test_status_report_and_incident_view() -> None:
    model = StatusReportModel.model_validate(
        {
            "report_id": "r1",
            "dispatch_id": "d1",
            "department": "fire",
            "status": "rejected",
            "at": "2026-11-24T10:00:00+08:00",
            "reason": "not ours",
        }
    )
    report = status_report(model)
    assert (report.dispatch_id, report.status, report.reason) == ("d1", "rejected", "not ours")
    row = {
        "incident_id": "i",
        "category": "fire",
        "priority": "2",
        "status": "new",
        "first_seen": T0,
        "last_seen": T0,
        "reports_total": 3,
        "district": "310115",
        "lon": 121.5,
        "lat": 31.2,
        "location_status": "located",
        "reports": None,
    }
    view = incident_view(row)
    assert (view.priority, view.reports_total, view.reports) == (2, 3, {})


@pytest.mark.parametrize("status", ["dispatched", "acknowledged", "in_progress"])
def test_an_extension_moves_the_deadline_and_rearms_the_resolve_timers(status: str) -> None:
    task = next(iter(create(incident("fire", 2)).values()))
    task = replace(
        task, status=status, escalations=("ack_reminder", "resolve_reminder", "resolve_supervisor")
    )
    later = task.resolve_deadline + timedelta(days=2)
    at = datetime(2026, 11, 25, tzinfo=UTC)
    plan = plan_extension(task, later, "ops:li", "extension x: parts", at, at)
    (extended,) = plan.tasks
    assert extended.resolve_deadline == later
    assert extended.escalations == ("ack_reminder",)
    assert extended.next_action_at == at
    (entry,) = plan.history
    assert (entry.status, entry.actor, entry.at) == ("deadline_extended", "ops:li", at)
    # applied again (a redelivered command): nothing to do
    assert plan_extension(extended, later, "ops:li", "x", at, at).tasks == []


def test_a_closed_task_is_not_extended() -> None:
    task = replace(next(iter(create(incident("fire", 2)).values())), status="resolved")
    plan = plan_extension(task, task.resolve_deadline + timedelta(days=1), "a", "b", T0, T0)
    assert plan.tasks == [] and plan.history == []
