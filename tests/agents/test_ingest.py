"""Streetlight records POSTed over HTTP (`/ingest/v1/streetlight`, JSON lines) go through
the whole pipeline: normalized, geo-tagged, fused into incidents and dispatched to the
streetlight department; the line the answer named as not JSON is a dead letter with that
reason."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg
import pytest
from fastapi.testclient import TestClient

from citybrain.api.app import create_app
from citybrain.api.ingest_store import store_ingest_token
from citybrain.api.tokens import new_token
from citybrain.settings import Settings
from citybrain_tools.kafka import start_group_at_end
from tests.agents.normalize.test_agent import collect
from tests.conftest import wait_for

pytestmark = pytest.mark.integration

#: two lamps far apart (杨浦区, 闵行区): two incidents
PLACES = [(121.5142, 31.3012), (121.3816, 31.1128)]


def test_streetlight_records_posted_over_http_become_dispatched_incidents(
    stack: Settings, worker_factory: Any
) -> None:
    token = new_token()
    with psycopg.connect(stack.conninfo(), autocommit=True) as conn:
        store_ingest_token(conn, token, "streetlight", "路灯管理平台", rotate=False)
    group = f"test-ingest-{uuid.uuid4().hex[:8]}"
    start_group_at_end(stack, group)  # this test's records, not the suite's history
    worker = worker_factory(CITYBRAIN_APP_ID=group)
    worker.wait_ready()
    run = uuid.uuid4().hex[:8]
    now = datetime.now(UTC).isoformat(timespec="seconds")
    lamps = [
        {
            "lampId": f"SL-E2E-{run}-{n}",
            "eventCode": code,
            "eventTime": now,
            "gps": {"lon": lon, "lat": lat},
            "circuit": "C1",
            "powerW": 0,
        }
        for n, (code, (lon, lat)) in enumerate(
            zip(("LAMP_OFF", "CABLE_THEFT"), PLACES, strict=True)
        )
    ]
    broken = f'{{"lampId": "SL-E2E-{run}-broken",'.encode()
    body = b"\n".join([orjson.dumps(lamps[0]), broken, orjson.dumps(lamps[1])])
    with TestClient(create_app(stack)) as client:
        answer = client.post(
            "/ingest/v1/streetlight",
            content=body,
            headers={
                "Authorization": f"Bearer {token.plain}",
                "Content-Type": "application/x-ndjson",
                "Idempotency-Key": f"e2e-{run}",
            },
        )
    assert answer.status_code == 202, answer.text
    assert answer.json()["accepted"] == 3
    assert [(n["line"], n["reason"]) for n in answer.json()["records"]] == [(2, "malformed_json")]
    events = [f"streetlight:{lamp['lampId']}:{now}:{lamp['eventCode']}" for lamp in lamps]

    def departments() -> dict[str, set[str]]:
        with psycopg.connect(stack.conninfo()) as conn:
            found = conn.execute(
                "SELECT r.event_id, d.department FROM incident_reports r"
                " JOIN dispatches d USING (incident_id) WHERE r.event_id = ANY(%s)",
                (events,),
            ).fetchall()
        out: dict[str, set[str]] = {}
        for event_id, department in found:
            out.setdefault(event_id, set()).add(department)
        return out

    assert wait_for(lambda: len(departments()) == 2, 120), worker.log()[-3000:]
    assert all("streetlight" in d for d in departments().values()), departments()
    with psycopg.connect(stack.conninfo()) as conn:
        incidents = conn.execute(
            "SELECT count(DISTINCT incident_id) FROM incident_reports WHERE event_id = ANY(%s)",
            (events,),
        ).fetchone()
    assert incidents == (2,)
    dead = [m for m in collect(stack, ["raw.iot.streetlight.dlq"], 4) if m.value == broken]
    assert len(dead) == 1
    assert dict(dead[0].headers)["dlq.reason"] == b"malformed_json"
