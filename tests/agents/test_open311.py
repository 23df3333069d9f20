"""An Open311 round trip through the whole pipeline: services, POST a request; it is
geo-tagged, fused and dispatched; the responsible department resolves it through the API;
GET requests/{id} shows it closed with the department's note."""

from __future__ import annotations

import random
import uuid
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from citybrain.api.app import create_app
from citybrain.api.store import store_token
from citybrain.api.tokens import new_token
from citybrain.geo.index import GeoIndex
from citybrain.geo.pack import load_pack
from citybrain.settings import Settings
from citybrain_tools.kafka import start_group_at_end
from tests.conftest import wait_for

pytestmark = pytest.mark.integration


def a_place_in(district: str, rng: random.Random) -> tuple[float, float]:
    index = GeoIndex(load_pack("shanghai"))
    while True:
        lon, lat = rng.uniform(121.38, 121.50), rng.uniform(31.12, 31.22)
        if index.code_of(index.tag([lon], [lat]), "district", 0) == district:
            return lon, lat


def test_open311_request_dispatched_resolved_and_closed(
    stack: Settings, worker_factory: Any
) -> None:
    tokens = {}
    with psycopg.connect(stack.conninfo(), autocommit=True) as conn:
        for role, department in (("open311", None), ("department", "municipal")):
            token = new_token()
            store_token(conn, token, role, department, "round trip", rotate=False)  # type: ignore[arg-type]
            tokens[department or role] = token.plain
    # a group started at the end of every topic: this test's records, not the suite's history
    group = f"test-open311-{uuid.uuid4().hex[:8]}"
    start_group_at_end(stack, group)
    worker = worker_factory(CITYBRAIN_APP_ID=group)
    worker.wait_ready()
    lon, lat = a_place_in("310104", random.Random())  # 徐汇区
    marker = uuid.uuid4().hex[:8]
    with TestClient(create_app(stack)) as client:
        services = client.get("/open311/v2/services.json").json()
        assert "manhole" in {s["service_code"] for s in services}
        posted = client.post(
            "/open311/v2/requests.json",
            data={
                "api_key": tokens["open311"],
                "service_code": "manhole",
                "lat": f"{lat:.6f}",
                "long": f"{lon:.6f}",
                "address_string": "徐汇区某路口",
                "description": f"井盖不见了，很危险 {marker} 请回电 13812345678",
                "phone": "13912345678",
            },
        )
        assert posted.status_code == 200, posted.text
        request_id = posted.json()[0]["service_request_id"]
        with psycopg.connect(stack.conninfo()) as conn:
            stored = conn.execute(
                "SELECT description FROM open311_requests WHERE service_request_id = %s",
                (request_id,),
            ).fetchone()
        assert stored and "13812345678" not in stored[0] and "*******5678" in stored[0]

        def request() -> dict[str, Any]:
            answer = client.get(f"/open311/v2/requests/{request_id}.json")
            assert answer.status_code == 200, answer.text
            return dict(answer.json()[0])

        assert request()["status"] == "open"
        # geo-tagged, fused into an incident and dispatched to the municipal department
        assert wait_for(lambda: request()["agency_responsible"] is not None, 120), worker.log()[
            -3000:
        ]
        shown = request()
        assert shown["status"] == "open" and shown["agency_responsible"] == "市政设施管理"
        assert shown["expected_datetime"] is not None  # the task's resolve deadline
        mine = client.get(
            "/api/v1/tasks",
            params={"status": "dispatched", "limit": 500},
            headers={"Authorization": f"Bearer {tokens['municipal']}"},
        ).json()["tasks"]
        task = next(
            t
            for t in mine
            if any(
                r["event_id"] == f"open311:{request_id}"
                for r in client.get(
                    f"/api/v1/tasks/{t['dispatch_id']}",
                    headers={"Authorization": f"Bearer {tokens['municipal']}"},
                ).json()["reports"]
            )
        )
        detail = client.get(
            f"/api/v1/tasks/{task['dispatch_id']}",
            headers={"Authorization": f"Bearer {tokens['municipal']}"},
        ).json()
        ours = next(r for r in detail["reports"] if r["event_id"] == f"open311:{request_id}")
        assert "13912345678" not in str(detail)  # personal data never in the task view
        assert marker in (ours["text"] or "")
        note = f"井盖已更换 {marker}"
        resolved = client.post(
            f"/api/v1/tasks/{task['dispatch_id']}/resolve",
            json={"note": note},
            headers={"Authorization": f"Bearer {tokens['municipal']}"},
        )
        assert resolved.status_code == 202, resolved.text
        assert wait_for(lambda: request()["status"] == "closed", 60), worker.log()[-3000:]
        closed = request()
        assert closed["status_notes"] == note
        assert closed["updated_datetime"] >= closed["requested_datetime"]
        xml = client.get(f"/open311/v2/requests/{request_id}.xml")
        assert b"<status>closed</status>" in xml.content
