"""Counting what the departments received (pure): a task created twice for one incident
and department is a duplicate task; the same message id twice is a redelivery."""

from __future__ import annotations

from typing import Any

from citybrain_tools.chaos.delivered import DEPARTMENT_TOPIC, count


def m(
    message_id: str, incident: str = "i1", department: str = "fire", kind: str = "task.created"
) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "incident_id": incident,
        "department": department,
        "kind": kind,
    }


def test_one_task_per_incident_and_department_delivered_once() -> None:
    got = count(
        [m("d1:created"), m("d2:created", department="police"), m("x", incident="other")], {"i1"}
    )
    assert (got.messages, got.tasks, got.duplicate_tasks, got.redelivered) == (2, 2, 0, 0)


def test_a_second_task_for_the_same_incident_and_department_is_a_duplicate() -> None:
    got = count([m("d1:created"), m("d9:created")], {"i1"})
    assert got.duplicate_tasks == 1


def test_the_same_message_again_is_a_redelivery_not_a_duplicate_task() -> None:
    got = count([m("d1:created"), m("d1:created"), m("d1:r2", kind="task.updated")], {"i1"})
    assert (got.duplicate_tasks, got.redelivered, got.distinct) == (0, 1, 2)


def test_department_topics_are_told_from_the_status_topic() -> None:
    assert DEPARTMENT_TOPIC.match("dispatch.fire.v1")
    assert DEPARTMENT_TOPIC.match("dispatch.gas-pudong.v1")
    assert not DEPARTMENT_TOPIC.match("dispatch.status.v1")
    assert not DEPARTMENT_TOPIC.match("dispatch.deliveries.dlq")
