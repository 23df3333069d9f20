"""Deadline extensions reach `dispatches` through the dispatch stage, its only writer: the
API records the decision and sends an approval as a command on commands.v1; a worker that
runs only the `status` stage applies it (the deadline moves, the resolve timers re-arm,
the history says who and why); the same command again changes nothing; a denial sends
nothing."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from kafka import KafkaProducer

from citybrain.settings import Settings
from citybrain.streams.topics import TOPICS
from tests.agents.normalize.test_agent import collect
from tests.citybrain.api.test_app import World, client, world  # noqa: F401 (fixtures)
from tests.conftest import wait_for

pytestmark = pytest.mark.integration
NEW_DEADLINE = "2031-03-01T18:00:00+08:00"


def commands_for(settings: Settings, dispatch_id: str) -> list[Any]:
    return [
        m
        for m in collect(settings, [TOPICS.commands.name], 3)
        if json.loads(m.value).get("dispatch_id") == dispatch_id
    ]


def task(settings: Settings, dispatch_id: str) -> tuple[datetime, list[str], int]:
    with psycopg.connect(settings.conninfo()) as conn:
        deadline, escalations = conn.execute(
            "SELECT resolve_deadline, escalations FROM dispatches WHERE dispatch_id = %s",
            (dispatch_id,),
        ).fetchone() or (None, None)
        (extended,) = conn.execute(
            "SELECT count(*) FROM dispatch_history WHERE dispatch_id = %s"
            " AND status = 'deadline_extended' AND actor LIKE '%%(api:%%'"
            " AND note LIKE 'extension %%'",
            (dispatch_id,),
        ).fetchone() or (0,)
    return deadline, list(escalations or []), extended


def test_an_approved_extension_is_applied_by_a_status_only_worker_once(
    stack: Settings,
    client: TestClient,  # noqa: F811
    world: World,  # noqa: F811
    worker_factory: Any,
) -> None:
    dispatch_id = world.tasks["police"]
    with psycopg.connect(stack.conninfo(), autocommit=True) as conn:
        conn.execute(
            "UPDATE dispatches SET escalations = ARRAY['resolve_reminder'] WHERE dispatch_id = %s",
            (dispatch_id,),
        )
    asked = client.post(
        f"/api/v1/tasks/{dispatch_id}/extension",
        json={"resolve_deadline": NEW_DEADLINE, "reason": "待更换燃气管件 parts on order"},
        headers=world.auth("police"),
    )
    assert asked.status_code == 201, asked.text
    extension_id = asked.json()["extension_id"]
    approved = client.post(
        f"/api/v1/extensions/{extension_id}/approve", headers=world.auth("operations")
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    (command,) = commands_for(stack, dispatch_id)
    body = json.loads(command.value)
    assert (body["command"], body["command_id"]) == ("extend_deadline", extension_id)
    before, _, _ = task(stack, dispatch_id)
    assert before != datetime.fromisoformat(NEW_DEADLINE)  # the API did not write the task

    worker = worker_factory(CITYBRAIN_STAGES="status")
    wanted = datetime.fromisoformat(NEW_DEADLINE)
    assert wait_for(lambda: task(stack, dispatch_id)[0] == wanted, 90), worker.log()
    _, escalations, extended = task(stack, dispatch_id)
    assert escalations == [] and extended == 1
    # the same command again (a redelivery): applied once
    producer = KafkaProducer(bootstrap_servers=stack.kafka_bootstrap_list)
    producer.send(TOPICS.commands.name, command.value, key=command.key).get(30)
    producer.close()
    assert wait_for(lambda: "command already answered" in worker.log(), 30), worker.log()
    assert task(stack, dispatch_id)[2] == 1
    assert worker.alive()
    agents = {line for line in worker.log().splitlines() if '"stages"' in line}
    assert agents and all('"status"' in line for line in agents)


def test_a_denied_extension_sends_no_command(
    stack: Settings,
    client: TestClient,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    dispatch_id = world.tasks["municipal"]
    asked = client.post(
        f"/api/v1/tasks/{dispatch_id}/extension",
        json={"resolve_deadline": NEW_DEADLINE, "reason": "more time"},
        headers=world.auth("municipal"),
    )
    extension_id = asked.json()["extension_id"]
    denied = client.post(
        f"/api/v1/extensions/{extension_id}/deny", headers=world.auth("operations")
    )
    assert denied.json()["status"] == "denied"
    assert commands_for(stack, dispatch_id) == []
    again = client.post(
        f"/api/v1/extensions/{extension_id}/approve", headers=world.auth("operations")
    )
    assert again.status_code == 404
