"""Operators' commands end to end, on a real worker, broker, database and the API: a call
with no usable address is placed by an operator and routed; urged; worked by its
department; called back and closed; reopened; two incidents merged; a task reassigned; a
command the state does not allow is refused with the reason; a department may not command.
Then the worker is killed with -9 and restarted: incidents, tasks and the correlator's
state are as the commands left them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from citybrain.api.app import create_app
from citybrain.api.store import store_token
from citybrain.api.tokens import new_token
from citybrain.geo.crs import from_wgs84
from citybrain.settings import Settings
from citybrain_tools.kafka import start_group_at_end
from tests.agents.normalize.test_agent import produce
from tests.conftest import WorkerProcess, wait_for

OPEN = ("dispatched", "acknowledged", "in_progress")

pytestmark = pytest.mark.integration

#: a point in Pudong inside the gas company gas-pudong's zone (the routes send gas there)
PUDONG_POINT = (121.5447, 31.2219)


class Desk:
    """The operations center's and the departments' API tokens, and the API."""

    def __init__(self, settings: Settings, client: TestClient) -> None:
        self.settings = settings
        self.client = client
        self.run = uuid.uuid4().hex[:8]
        self.tokens: dict[str, str] = {}
        with psycopg.connect(settings.conninfo(), autocommit=True) as conn:
            for who in ("operations", "gas-pudong", "municipal", "fire", "police"):
                token = new_token()
                role = "operations" if who == "operations" else "department"
                label = f"值班长 {self.run}" if who == "operations" else who
                store_token(conn, token, role, None if who == "operations" else who, label, False)
                self.tokens[who] = token.plain

    def post(self, path: str, who: str = "operations", **body: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return self.client.post(f"/api/v1{path}", json=body, headers=headers)

    def get(self, path: str, who: str = "operations") -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return self.client.get(f"/api/v1{path}", headers=headers)

    def command(self, path: str, **body: Any) -> dict[str, Any]:
        """Send a command, wait until the stage answered it; its final state."""
        answer = self.post(path, reason="值班长核实 / checked by the duty officer", **body)
        assert answer.status_code == 202, answer.text
        url = answer.json()["status_url"].removeprefix("/api/v1")

        def answered() -> bool:
            return self.get(url).json()["status"] != "accepted"

        assert wait_for(answered, 60), self.get(url).json()
        state: dict[str, Any] = self.get(url).json()
        return state

    def incident(self, incident_id: str) -> dict[str, Any]:
        answer = self.get(f"/incidents/{incident_id}")
        assert answer.status_code == 200, answer.text
        detail: dict[str, Any] = answer.json()
        return detail

    def tasks(self, incident_id: str) -> dict[str, dict[str, Any]]:
        return {t["department"]: t for t in self.incident(incident_id)["tasks_detail"]}


@pytest.fixture(scope="module")
def client(stack: Settings) -> Iterator[TestClient]:
    unlimited = stack.model_copy(update={"api_rate": 10_000.0, "api_burst": 10_000.0})
    with TestClient(create_app(unlimited)) as c:
        yield c


def call(
    settings: Settings,
    address: str,
    minutes_ago: float = 1.0,
    at: tuple[float, float] | None = None,
) -> str:
    """A 12345 ticket about a gas smell (with the desk's GCJ-02 coordinates of a WGS-84
    point `at`, or none); its event id."""
    ticket = f"CMD{uuid.uuid4().hex[:10]}"
    extra: dict[str, float] = {}
    if at is not None:
        glon, glat = from_wgs84([at[0]], [at[1]], "GCJ-02")
        extra = {"lng": round(float(glon[0]), 6), "lat": round(float(glat[0]), 6)}
    when = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    doc = {
        "ticketNo": ticket,
        "acceptTime": (when + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M:%S"),
        "callerPhone": "13800138000",
        "channel": "电话",
        "category": "燃气-燃气异味",
        "urgency": "特急",
        "content": "市民来电反映：楼道里有燃气味",
        "address": address,
        **extra,
    }
    produce(settings, "raw.hotline", [(ticket.encode(), json.dumps(doc).encode())])
    return f"hotline-12345:{ticket}"


def incident_of(settings: Settings, event_id: str) -> Callable[[], str | None]:
    def find() -> str | None:
        with psycopg.connect(settings.conninfo()) as conn:
            row = conn.execute(
                "SELECT incident_id FROM incident_reports WHERE event_id = %s", (event_id,)
            ).fetchone()
        return None if row is None else str(row[0])

    return find


def wait_incident(settings: Settings, event_id: str) -> str:
    find = incident_of(settings, event_id)
    assert wait_for(lambda: find() is not None, 120)
    found = find()
    assert found is not None
    return found


def test_the_command_center_loop_and_a_restart(
    stack: Settings, client: TestClient, worker_factory: Any
) -> None:
    group = f"test-cmd-{uuid.uuid4().hex[:6]}"
    start_group_at_end(stack, group)
    worker: WorkerProcess = worker_factory(CITYBRAIN_APP_ID=group)
    desk = Desk(stack, client)

    # 受理: a caller gives only the district; the incident waits for an operator
    vague = wait_incident(stack, call(stack, "浦东新区"))
    assert desk.incident(vague)["location_status"] == "needs_location"
    queue = desk.client.get(
        "/api/v1/incidents",
        params={"queue": "needs_location", "q": vague},
        headers={"Authorization": f"Bearer {desk.tokens['operations']}"},
    ).json()["incidents"]
    assert [i["incident_id"] for i in queue] == [vague]

    # 派单: the operator places it; it is routed to the gas company of its zone
    lon, lat = PUDONG_POINT
    placed = desk.command(f"/incidents/{vague}/place", lon=lon, lat=lat, address="世纪大道")
    assert placed["status"] == "applied", placed
    assert wait_for(lambda: "gas-pudong" in desk.tasks(vague), 60), desk.tasks(vague)
    detail = desk.incident(vague)
    assert (detail["location_status"], detail["district"]) == ("located", "310115")
    center = desk.tasks(vague).get("ops-center")
    assert center is None or center["status"] == "cancelled"

    # 督办, 承办: urged; the gas company acknowledges and resolves
    task = desk.tasks(vague)["gas-pudong"]
    urged = desk.command(f"/tasks/{task['dispatch_id']}/urge")
    assert urged["status"] == "applied"
    with psycopg.connect(stack.conninfo()) as conn:
        kinds = conn.execute(
            "SELECT kind FROM dispatch_outbox WHERE dispatch_id = %s", (task["dispatch_id"],)
        ).fetchall()
    assert ("task.urged",) in kinds
    for department, t in desk.tasks(vague).items():
        if t["status"] in OPEN:
            who = department if department in desk.tokens else "operations"
            assert desk.post(f"/tasks/{t['dispatch_id']}/acknowledge", who).status_code == 202
            resolved = desk.post(f"/tasks/{t['dispatch_id']}/resolve", who, note="已关阀维修")
            assert resolved.status_code == 202

    # the incident is resolved with its lead task; wait for the helpers' resolves too
    # (each is a command of its own, answered in its own time)
    def all_resolved() -> bool:
        detail = desk.incident(vague)
        open_tasks = [t for t in detail["tasks_detail"] if t["status"] in OPEN]
        return detail["status"] == "resolved" and not open_tasks

    assert wait_for(all_resolved, 60), desk.tasks(vague)

    # a close the state does not allow yet is answered 409 with the reason
    early = desk.post(f"/incidents/{vague}/close", verification="callback", reason="x")
    assert early.status_code == 409 and "callback" in early.json()["detail"]

    # 回访, 办结: a satisfied callback, then closed
    assert desk.command(f"/incidents/{vague}/callback", outcome="satisfied")["status"] == "applied"
    closed = desk.command(f"/incidents/{vague}/close", verification="callback")
    assert closed["status"] == "applied", closed
    assert desk.incident(vague)["status"] == "closed"

    # reopened: its tasks are dispatched again
    assert desk.command(f"/incidents/{vague}/reopen")["status"] == "applied"
    assert wait_for(lambda: desk.tasks(vague)["gas-pudong"]["status"] == "dispatched", 30)

    # 改派: the task handed to another department by hand, with a deadline
    deadline = (datetime.now(UTC) + timedelta(hours=5)).isoformat()
    reassigned = desk.command(
        f"/incidents/{vague}/assign",
        department="municipal",
        replaces="gas-pudong",
        resolve_deadline=deadline,
    )
    assert reassigned["status"] == "applied", reassigned
    tasks = desk.tasks(vague)
    assert tasks["gas-pudong"]["status"] == "cancelled"
    assert tasks["municipal"]["status"] == "dispatched"

    # merge: a second located call about the same leak, 2 km away, is merged in
    other_call = call(stack, "浦东新区", at=(lon + 0.02, lat))
    other = wait_incident(stack, other_call)
    assert other != vague
    merged = desk.command(f"/incidents/{other}/merge", into=vague)
    assert merged["status"] == "applied", merged
    assert wait_for(lambda: desk.incident(other)["status"] == "closed", 30)
    assert all(t["status"] in ("cancelled", "rejected") for t in desk.tasks(other).values()), (
        desk.tasks(other)
    )
    assert desk.incident(vague)["reports_total"] >= 2

    # split: that report was another problem after all; it leaves for a new incident
    split = desk.command(f"/incidents/{vague}/split", event_ids=[other_call])
    assert split["status"] == "applied", split
    parted = split["result"].rsplit(" ", 1)[-1]
    assert wait_incident(stack, other_call) == parted
    assert wait_for(lambda: "gas-pudong" in desk.tasks(parted), 60), desk.tasks(parted)
    assert other_call not in {r["event_id"] for r in desk.incident(vague)["reports"]}

    # a department may not command; every command is in the timeline with its actor
    assert desk.post(f"/incidents/{vague}/reopen", "gas-pudong", reason="x").status_code == 403
    commands = [t for t in desk.incident(vague)["timeline"] if t["source"] == "command"]
    assert {c["what"].split()[0] for c in commands} >= {"place", "close", "reopen", "assign"}
    assert all(c["actor"].startswith(f"值班长 {desk.run}") for c in commands)

    # kill -9 and restart: the state is as the commands left it
    worker.kill()
    restarted = worker_factory(CITYBRAIN_APP_ID=group)
    near = call(stack, "浦东新区", minutes_ago=0.5, at=(lon + 0.0005, lat))
    assert wait_incident(stack, near) == vague, restarted.log()[-2000:]
    tasks = desk.tasks(vague)
    assert (tasks["gas-pudong"]["status"], tasks["municipal"]["status"]) == (
        "cancelled",
        "dispatched",
    )
    assert desk.incident(other)["status"] == "closed"
    beside = call(stack, "浦东新区", minutes_ago=0.5, at=(lon + 0.0205, lat))
    assert wait_incident(stack, beside) == parted  # the split-out incident holds its place
    assert restarted.alive()
