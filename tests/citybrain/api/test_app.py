"""The department API on the real database and broker: every department sees and changes
only its own tasks (404 for the others'), the operations center sees all; errors name the
field; limits on body size and rate; Open311 documents and errors; and an OpenAPI-driven
fuzz run that finds no 5xx."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import permutations
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from citybrain.api.app import create_app
from citybrain.api.store import store_token
from citybrain.api.tokens import new_token
from citybrain.settings import Settings
from tests.agents.normalize.test_agent import collect

pytestmark = pytest.mark.integration

DEPARTMENTS = ["gas-pudong", "fire", "police", "municipal"]


class World:
    """One incident with a task for each of four departments, and a token for each."""

    def __init__(self, settings: Settings) -> None:
        self.run = uuid.uuid4().hex[:10]
        self.incident = f"inc-api-{self.run}"
        self.tasks = {d: f"dsp-api-{self.run}-{d}" for d in DEPARTMENTS}
        self.tokens: dict[str, str] = {}
        now = self.created = datetime.now(UTC)
        with psycopg.connect(settings.conninfo(), autocommit=True) as conn:
            conn.execute(
                "INSERT INTO incidents (incident_id, category, priority, status, first_seen,"
                " last_seen, reports_total, lon, lat, district)"
                " VALUES (%s, 'gas_leak', 1, 'dispatched', %s, %s, 1, 121.55, 31.22, '310115')",
                (self.incident, now, now),
            )
            for department, dispatch_id in self.tasks.items():
                conn.execute(
                    "INSERT INTO dispatches (dispatch_id, incident_id, department, role, status,"
                    " priority, category, ack_deadline, resolve_deadline, created_at)"
                    " VALUES (%s, %s, %s, 'lead', 'dispatched', 1, 'gas_leak', %s, %s, %s)",
                    (
                        dispatch_id,
                        self.incident,
                        department,
                        now + timedelta(minutes=5),
                        now + timedelta(hours=2),
                        now,
                    ),
                )
            for who in [*DEPARTMENTS, "operations", "open311"]:
                token = new_token()
                role = who if who in ("operations", "open311") else "department"
                department = who if role == "department" else None
                store_token(conn, token, role, department, f"test {self.run}", rotate=False)
                self.tokens[who] = token.plain

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


@pytest.fixture(scope="module")
def world(stack: Settings) -> World:
    return World(stack)


@pytest.fixture(scope="module")
def client(stack: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(stack)) as c:
        yield c


@pytest.mark.parametrize(("a", "b"), list(permutations(DEPARTMENTS, 2)))
def test_a_department_can_neither_see_nor_change_another_departments_task(
    client: TestClient, world: World, a: str, b: str
) -> None:
    theirs = world.tasks[b]
    listed = client.get("/api/v1/tasks", params={"limit": 500}, headers=world.auth(a)).json()
    ids = {t["dispatch_id"] for t in listed["tasks"]}
    assert world.tasks[a] in ids and theirs not in ids
    assert client.get(f"/api/v1/tasks/{theirs}", headers=world.auth(a)).status_code == 404
    for action, body in (
        ("acknowledge", None),
        ("start", None),
        ("resolve", {"note": "done"}),
        ("reject", {"reason": "not ours"}),
        ("extension", {"resolve_deadline": "2030-01-01T00:00:00+08:00", "reason": "parts"}),
    ):
        answer = client.post(f"/api/v1/tasks/{theirs}/{action}", json=body, headers=world.auth(a))
        assert answer.status_code == 404, (action, answer.text)
        assert answer.json() == {"detail": "no such task"}  # the same as for no task at all
    assert client.get("/api/v1/tasks/dsp-nothing", headers=world.auth(a)).json() == {
        "detail": "no such task"
    }


def test_the_operations_center_sees_every_task(client: TestClient, world: World) -> None:
    listed = client.get(
        "/api/v1/tasks", params={"limit": 500}, headers=world.auth("operations")
    ).json()
    assert set(world.tasks.values()) <= {t["dispatch_id"] for t in listed["tasks"]}


def test_paging_walks_every_task_once(stack: Settings, world: World) -> None:
    # pages of one over the tasks made since the world's (its four share one created_at:
    # the keyset's tie-break is what walks them); no rate limit in the way
    unlimited = stack.model_copy(update={"api_rate": 10_000.0, "api_burst": 10_000.0})
    with TestClient(create_app(unlimited)) as client:
        seen = walk(client, world)
    assert len(seen) == len(set(seen)) and set(world.tasks.values()) <= set(seen)


def walk(client: TestClient, world: World) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {
            "limit": 1,
            "district": "310115",
            "since": (world.created - timedelta(seconds=1)).isoformat(),
        }
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/v1/tasks", params=params, headers=world.auth("operations")).json()
        seen += [t["dispatch_id"] for t in page["tasks"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


def test_acknowledging_its_own_task_sends_a_status_report(
    client: TestClient, world: World, stack: Settings
) -> None:
    mine = world.tasks["municipal"]
    answer = client.post(f"/api/v1/tasks/{mine}/acknowledge", headers=world.auth("municipal"))
    assert answer.status_code == 202, answer.text
    report_id = answer.json()["report_id"]
    sent = [
        json.loads(m.value)
        for m in collect(stack, ["dispatch.status.v1"], 3)
        if json.loads(m.value).get("report_id") == report_id
    ]
    assert len(sent) == 1
    assert sent[0]["department"] == "municipal" and sent[0]["status"] == "acknowledged"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("resolve", {"note": ""}, "body.note"),
        ("resolve", {"note": "ok", "photo_url": "ftp://x"}, "body.photo_url"),
        ("reject", {}, "body.reason"),
        (
            "extension",
            {"resolve_deadline": "2030-01-01T00:00:00", "reason": "x"},
            "body.resolve_deadline",
        ),
    ],
)
def test_invalid_input_gets_400_naming_the_field(
    client: TestClient, world: World, path: str, body: dict[str, Any], field: str
) -> None:
    answer = client.post(
        f"/api/v1/tasks/{world.tasks['fire']}/{path}", json=body, headers=world.auth("fire")
    )
    assert answer.status_code == 400
    assert field in {p["field"] for p in answer.json()["detail"]}


def test_no_token_a_bad_token_and_an_open311_key_are_refused(
    client: TestClient, world: World
) -> None:
    assert client.get("/api/v1/tasks").status_code == 401
    bad = {"Authorization": "Bearer cbt_000000000000_" + "x" * 43}
    assert client.get("/api/v1/tasks", headers=bad).status_code == 401
    assert client.get("/api/v1/tasks", headers=world.auth("open311")).status_code == 403


def test_a_body_over_the_limit_gets_413(client: TestClient, world: World) -> None:
    big = {"note": "x" * 70_000}
    answer = client.post(
        f"/api/v1/tasks/{world.tasks['fire']}/resolve", json=big, headers=world.auth("fire")
    )
    assert answer.status_code == 413


def test_a_department_over_its_rate_gets_429(stack: Settings, world: World) -> None:
    limited = stack.model_copy(update={"api_rate": 0.5, "api_burst": 3})
    with TestClient(create_app(limited)) as c:
        codes = [c.get("/api/v1/tasks", headers=world.auth("police")).status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200] and codes[3] == 429
        retry = c.get("/api/v1/tasks", headers=world.auth("police"))
        assert int(retry.headers["retry-after"]) >= 1


def test_open311_services_and_errors(client: TestClient, world: World, stack: Settings) -> None:
    services = client.get("/open311/v2/services.json").json()
    assert {s["service_code"] for s in services} >= {"flooding", "gas", "streetlight"}
    assert set(services[0]) == {
        "service_code",
        "service_name",
        "description",
        "metadata",
        "type",
        "keywords",
        "group",
    }
    xml = client.get("/open311/v2/services.xml")
    assert xml.headers["content-type"].startswith("text/xml") and b"<services>" in xml.content
    marker = f"no-location-{world.run}"
    bad = client.post(
        "/open311/v2/requests.json",
        data={
            "api_key": world.tokens["open311"],
            "service_code": "flooding",
            "description": marker,
        },
    )
    assert bad.status_code == 400
    assert bad.json()[0]["code"] == 400 and "lat" in bad.json()[0]["description"]
    forbidden = client.post(
        "/open311/v2/requests.json",
        data={"service_code": "flooding", "lat": "31.2", "long": "121.5"},
    )
    assert forbidden.status_code == 403
    unknown = client.get("/open311/v2/requests/cb-0000000000000000.json")
    assert unknown.status_code == 404 and unknown.json()[0]["code"] == 404
    assert not [m for m in collect(stack, ["raw.open311"], 2) if marker.encode() in m.value]


def test_ready_when_the_database_and_the_broker_answer(client: TestClient) -> None:
    answer = client.get("/readyz")
    assert answer.status_code == 200, answer.text
    assert answer.json()["checks"] == {"database": "ok", "kafka": "ok"}
