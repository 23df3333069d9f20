"""The incident API on the real database: the center's queues and filters, keyset paging,
one incident's reports (callers' numbers masked), tasks, suggestions and timeline; a
department sees only incidents it has a task on, and on them only its own tasks."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from citybrain.api.app import create_app
from citybrain.api.store import store_token
from citybrain.api.tokens import new_token
from citybrain.privacy import mask_phones_in_text
from citybrain.settings import Settings

pytestmark = pytest.mark.integration

PHONE = "13912345678"


class World:
    """Four incidents, one per queue, with their reports, tasks, history and deliveries:

    - `overdue`: located, a task of `water` past its deadline, one of `roads` rejected
    - `vague`: placed only by its district, a caller's number in the address, suggested
      for a merge into `overdue`
    - `unrouted`: located, no task
    - `rejected`: located, its only task (of `roads`) rejected
    """

    def __init__(self, settings: Settings) -> None:
        run = uuid.uuid4().hex[:8]
        self.run = run
        self.id = {
            name: f"inc-q-{run}-{name}" for name in ("overdue", "vague", "unrouted", "rejected")
        }
        self.word = f"词{run}"  # a word only this run's caller said
        self.water, self.roads = f"water-{run}", f"roads-{run}"
        now = datetime.now(UTC)
        self.now = now
        self.tokens: dict[str, str] = {}
        with psycopg.connect(settings.conninfo(), autocommit=True) as conn:
            for n, (name, status, where) in enumerate(
                [
                    ("overdue", "dispatched", "located"),
                    ("vague", "open", "needs_location"),
                    ("unrouted", "open", "located"),
                    ("rejected", "dispatched", "located"),
                ]
            ):
                seen = now - timedelta(minutes=n)
                conn.execute(
                    "INSERT INTO incidents (incident_id, category, priority, status, first_seen,"
                    " last_seen, reports_total, lon, lat, location_status, district)"
                    " VALUES (%s, 'flooding', 2, %s, %s, %s, 1, %s, %s, %s, %s)",
                    (
                        self.id[name],
                        status,
                        seen - timedelta(hours=1),
                        seen,
                        None if where != "located" else 121.5,
                        None if where != "located" else 31.2,
                        where,
                        "310104" if name == "vague" else "310115",
                    ),
                )
                event = f"hotline-12345:Q{run}{n}"
                conn.execute(
                    "INSERT INTO events (event_id, observed_at, received_at, source_kind, feed,"
                    " category, location_status, address, body)"
                    " VALUES (%s, %s, %s, 'hotline', 'hotline-12345', 'flooding', %s, %s, %s)",
                    (
                        event,
                        seen,
                        seen,
                        where,
                        f"徐汇区{self.word}小区门口 电话{PHONE}" if name == "vague" else "路口",
                        "积水",
                    ),
                )
                conn.execute(
                    "INSERT INTO incident_reports (event_id, incident_id, source_kind,"
                    " observed_at) VALUES (%s, %s, 'hotline', %s)",
                    (event, self.id[name], seen),
                )
                conn.execute(
                    "INSERT INTO incident_history (incident_id, at, change, status, category,"
                    " district, priority, reports_total)"
                    " VALUES (%s, %s, 'opened', 'open', 'flooding', '310115', 2, 1)",
                    (self.id[name], seen - timedelta(hours=1)),
                )
            tasks = [
                ("overdue", self.water, "dispatched", now - timedelta(minutes=5)),
                ("overdue", self.roads, "rejected", now + timedelta(hours=1)),
                ("rejected", self.roads, "rejected", now + timedelta(hours=1)),
            ]
            self.tasks = {}
            for name, department, status, deadline in tasks:
                dispatch_id = f"dsp-q-{run}-{name}-{department}"
                self.tasks[(name, department)] = dispatch_id
                conn.execute(
                    "INSERT INTO dispatches (dispatch_id, incident_id, department, status,"
                    " priority, category, ack_deadline, resolve_deadline)"
                    " VALUES (%s, %s, %s, %s, 2, 'flooding', %s, %s)",
                    (dispatch_id, self.id[name], department, status, deadline, deadline),
                )
                conn.execute(
                    "INSERT INTO dispatch_history (dispatch_id, at, status, department,"
                    " incident_id, actor) VALUES (%s, %s, 'created', %s, %s, 'dispatch')",
                    (dispatch_id, now - timedelta(minutes=50), department, self.id[name]),
                )
            water_task = self.tasks[("overdue", self.water)]
            conn.execute(
                "INSERT INTO dispatch_outbox (message_id, destination, dispatch_id, department,"
                " kind, payload, max_attempts) VALUES (%s, 'kafka:t', %s, %s, 'task.created',"
                " '{}', 5)",
                (f"msg-{run}", water_task, self.water),
            )
            conn.execute(
                "INSERT INTO delivery_attempts (message_id, destination, attempt, at, outcome,"
                " duration_ms) VALUES (%s, 'kafka:t', 1, %s, 'sent', 3)",
                (f"msg-{run}", now - timedelta(minutes=49)),
            )
            conn.execute(
                "INSERT INTO incident_merge_suggestions (incident_id, candidate_id, score,"
                " reasons, suggested_at) VALUES (%s, %s, 0.6, '[\"same family flooding\"]', %s)",
                (self.id["vague"], self.id["overdue"], now),
            )
            for who in ("operations", self.water, self.roads):
                token = new_token()
                role = "operations" if who == "operations" else "department"
                department = None if who == "operations" else who
                store_token(conn, token, role, department, f"张三 {run}", rotate=False)
                self.tokens[who] = token.plain

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


@pytest.fixture(scope="module")
def world(stack: Settings) -> World:
    return World(stack)


@pytest.fixture(scope="module")
def client(stack: Settings) -> Iterator[TestClient]:
    unlimited = stack.model_copy(update={"api_rate": 10_000.0, "api_burst": 10_000.0})
    with TestClient(create_app(unlimited)) as c:
        yield c


def walk(client: TestClient, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    """Every page of a listing, 2 at a time."""
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/incidents", params=query, headers=headers)
        assert page.status_code == 200, page.text
        seen += page.json()["incidents"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return seen


@pytest.mark.parametrize(
    ("queue", "expected"),
    [
        ("needs_location", {"vague"}),
        ("unrouted", {"unrouted"}),
        ("rejected_by_all", {"rejected"}),
        ("overdue", {"overdue"}),
    ],
)
def test_each_queue_holds_its_incidents(
    client: TestClient, world: World, queue: str, expected: set[str]
) -> None:
    since = (world.now - timedelta(minutes=10)).isoformat()
    found = walk(client, world.auth("operations"), queue=queue, since=since)
    ours = {i["incident_id"] for i in found} & set(world.id.values())
    assert ours == {world.id[name] for name in expected}
    assert len(found) == len({i["incident_id"] for i in found})  # each once over the pages


def test_queue_counts_agree_with_the_listed_queues(client: TestClient, world: World) -> None:
    counts = client.get("/api/v1/queues", headers=world.auth("operations")).json()
    for queue in ("needs_location", "unrouted", "rejected_by_all", "overdue"):
        listed = walk(client, world.auth("operations"), queue=queue)
        assert counts[queue] == len(listed) >= 1, queue
    assert counts["merge_suggestions"] >= 1


def test_filters_and_free_text(client: TestClient, world: World) -> None:
    ops = world.auth("operations")
    by_word = walk(client, ops, q=world.word)
    assert [i["incident_id"] for i in by_word] == [world.id["vague"]]
    by_id = walk(client, ops, q=world.id["unrouted"])
    assert [i["incident_id"] for i in by_id] == [world.id["unrouted"]]
    assert walk(client, ops, q="%") == walk(client, ops, q="%_%") == []  # not wildcards
    in_district = walk(client, ops, district="310104", q=world.word)
    assert [i["incident_id"] for i in in_district] == [world.id["vague"]]
    assert walk(client, ops, district="310115", q=world.word) == []
    later = (world.now + timedelta(minutes=1)).isoformat()
    assert walk(client, ops, since=later, q=world.word) == []


def test_bad_queries_get_400_naming_the_field(client: TestClient, world: World) -> None:
    ops = world.auth("operations")
    for params, field in (
        ({"queue": "everything"}, "query.queue"),
        ({"cursor": "nonsense"}, "query.cursor"),
        ({"since": "yesterday"}, "query.since"),
        ({"limit": 0}, "query.limit"),
        ({"district": "a b"}, "query.district"),
    ):
        answer = client.get("/api/v1/incidents", params=params, headers=ops)
        assert answer.status_code == 400, params
        assert answer.json()["detail"][0]["field"] == field


def test_an_incident_in_full_for_the_operations_center(client: TestClient, world: World) -> None:
    answer = client.get(f"/api/v1/incidents/{world.id['vague']}", headers=world.auth("operations"))
    assert answer.status_code == 200, answer.text
    vague = answer.json()
    (report,) = vague["reports"]
    assert PHONE not in answer.text and world.word in report["address"]
    assert mask_phones_in_text(PHONE) in report["address"]  # the masked form, as everywhere
    (suggestion,) = vague["suggestions"]
    assert suggestion["candidate_id"] == world.id["overdue"]
    assert suggestion["reasons"] == ["same family flooding"] and suggestion["score"] == 0.6

    overdue = client.get(
        f"/api/v1/incidents/{world.id['overdue']}", headers=world.auth("operations")
    ).json()
    assert overdue["overdue"] is True
    assert {t["department"] for t in overdue["tasks_detail"]} == {world.water, world.roads}
    timeline = overdue["timeline"]
    assert [t["at"] for t in timeline] == sorted(t["at"] for t in timeline)
    assert {t["source"] for t in timeline} == {"incident", "task", "delivery"}
    (delivery,) = [t for t in timeline if t["source"] == "delivery"]
    assert delivery["what"] == "sent task.created" and delivery["department"] == world.water


def test_a_department_sees_only_incidents_with_its_tasks(client: TestClient, world: World) -> None:
    water, roads = world.auth(world.water), world.auth(world.roads)
    assert {i["incident_id"] for i in walk(client, water)} == {world.id["overdue"]}
    assert {i["incident_id"] for i in walk(client, roads)} == {
        world.id["overdue"],
        world.id["rejected"],
    }
    for name in ("vague", "unrouted", "rejected"):
        answer = client.get(f"/api/v1/incidents/{world.id[name]}", headers=water)
        assert answer.status_code == 404 and answer.json() == {"detail": "no such incident"}
    shared = client.get(f"/api/v1/incidents/{world.id['overdue']}", headers=water).json()
    assert [t["department"] for t in shared["tasks_detail"]] == [world.water]
    assert {t["department"] for t in shared["timeline"]} <= {None, world.water}
    assert shared["suggestions"] == []
    counts = client.get("/api/v1/queues", headers=water).json()
    assert counts["overdue"] == 1 and counts["needs_location"] == 0
