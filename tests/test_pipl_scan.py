"""PIPL scan: callers' numbers written into every free-text field of hotline tickets and an
Open311 request (placed, unplaceable and malformed ones) go through a real worker; then no
relation the Grafana reader may read, no worker log line, no dead letter and no API
response holds one of them in clear (in any form they were written in). Only
`personal_contacts`, which no reader may read, keeps them."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from citybrain.api.app import create_app
from citybrain.api.store import store_token
from citybrain.api.tokens import new_token
from citybrain.db.roles import READER_RELATIONS
from citybrain.settings import Settings
from citybrain_tools.kafka import start_group_at_end
from tests.agents.normalize.test_agent import collect, produce
from tests.agents.test_open311 import a_place_in
from tests.conftest import wait_for
from tests.grafana.test_panel_sql import reader

pytestmark = pytest.mark.integration


def forms(number: str) -> list[str]:
    """The ways the number is written below (what must not show anywhere)."""
    return [
        number,
        f"{number[:3]} {number[3:7]} {number[7:]}",
        f"{number[:3]}-{number[3:7]}-{number[7:]}",
    ]


def ticket(
    run: str, i: int, numbers: list[str], lon: float | None, lat: float | None, at: str
) -> bytes:
    n = numbers[i]
    return json.dumps(
        {
            "ticketNo": f"PIPL{run}{i:02d}",
            "acceptTime": at,
            "callerPhone": n,
            "channel": "电话",
            "category": "市政-井盖缺失",
            "urgency": "紧急",
            "content": f"来电人电话{n}，另一联系人 {forms(numbers[i + 1])[1]}，井盖缺失",
            "address": f"徐汇区漕溪北路 联系 {forms(numbers[i + 2])[2]}",
            "lng": lon,
            "lat": lat,
        },
        ensure_ascii=False,
    ).encode()


def test_no_readable_place_holds_a_callers_number(stack: Settings, worker_factory: Any) -> None:
    rng = random.Random()
    run = uuid.uuid4().hex[:8]
    numbers = [f"139{rng.randint(10**7, 10**8 - 1)}" for _ in range(12)]
    tokens = {}
    with psycopg.connect(stack.conninfo(), autocommit=True) as conn:
        for role in ("open311", "operations"):
            token = new_token()
            store_token(conn, token, role, None, f"pipl {run}", rotate=False)  # type: ignore[arg-type]
            tokens[role] = token.plain
    # a group started at the end of every topic: the worker reads this test's records, not
    # the history of every test before it (which took minutes)
    group = f"test-pipl-{run}"
    start_group_at_end(stack, group)
    worker = worker_factory(CITYBRAIN_APP_ID=group)
    worker.wait_ready()
    lon, lat = a_place_in("310104", rng)
    now = (datetime.now(UTC) + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M:%S")
    produce(
        stack,
        "raw.hotline",
        [
            (f"PIPL{run}00".encode(), ticket(run, 0, numbers, lon, lat, now)),  # placed
            (f"PIPL{run}03".encode(), ticket(run, 3, numbers, None, None, now)),  # unplaceable
            (f"PIPL{run}06".encode(), ticket(run, 6, numbers, lon, lat, "yesterday")),  # DLQ
        ],
    )
    with TestClient(create_app(stack)) as client:
        posted = client.post(
            "/open311/v2/requests.json",
            data={
                "api_key": tokens["open311"],
                "service_code": "manhole",
                "lat": f"{lat:.6f}",
                "long": f"{lon:.6f}",
                "address_string": f"漕溪北路 {forms(numbers[9])[2]}",
                "description": f"PIPL{run} 井盖缺失 请回电 {numbers[10]}",
                "phone": numbers[11],
            },
        )
        assert posted.status_code == 200, posted.text
        request_id = posted.json()[0]["service_request_id"]

        def stored() -> int:
            with psycopg.connect(stack.conninfo()) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM events WHERE event_id LIKE %s OR event_id = %s",
                    (f"%PIPL{run}%", f"open311:{request_id}"),
                ).fetchone()
            return int(row[0]) if row else 0

        assert wait_for(lambda: stored() >= 3, 120), worker.log()[-3000:]

        def incidents() -> list[str]:
            with psycopg.connect(stack.conninfo()) as conn:
                return [
                    r[0]
                    for r in conn.execute(
                        "SELECT incident_id FROM incident_reports WHERE event_id LIKE %s",
                        (f"%PIPL{run}%",),
                    ).fetchall()
                ]

        assert wait_for(lambda: _tasks(stack, incidents()) != [], 120), worker.log()[-3000:]
        answers = [client.get(f"/open311/v2/requests/{request_id}.json").text]
        auth = {"Authorization": f"Bearer {tokens['operations']}"}
        for dispatch_id in _tasks(stack, incidents()):
            answer = client.get(f"/api/v1/tasks/{dispatch_id}", headers=auth)
            assert answer.status_code == 200, answer.text
            answers.append(answer.text)
        answers.append(client.get("/api/v1/tasks?limit=200", headers=auth).text)

    needles = [f for n in numbers for f in forms(n)]
    # the store keeps them where it must: personal_contacts (unreadable by the reader)
    with psycopg.connect(stack.conninfo()) as conn:
        kept = conn.execute(
            "SELECT count(*) FROM personal_contacts WHERE caller_phone = ANY(%s)", (numbers,)
        ).fetchone()
    assert kept and kept[0] >= 1  # the test's numbers did reach the platform
    found: dict[str, list[str]] = {}
    with reader(stack) as conn:
        for relation in sorted(READER_RELATIONS):
            columns = [
                r[0]
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema ="
                    " 'public' AND table_name = %s AND data_type IN ('text', 'jsonb', 'json',"
                    " 'character varying')",
                    (relation,),
                ).fetchall()
            ]
            if not columns:
                continue
            # one scan a relation: its text columns joined by a character no number holds
            texts = [sql.SQL("{}::text").format(sql.Identifier(c)) for c in columns]
            hits = conn.execute(
                sql.SQL(
                    "SELECT {cols} FROM {rel} WHERE concat_ws(chr(1), {cols}) LIKE ANY(%s) LIMIT 3"
                ).format(cols=sql.SQL(", ").join(texts), rel=sql.Identifier(relation)),
                ([f"%{n}%" for n in needles],),
            ).fetchall()
            for row in hits:
                for column, value in zip(columns, row, strict=True):
                    if value is not None and any(n in value for n in needles):
                        found.setdefault(f"{relation}.{column}", []).append(value[:120])
    dead = [
        (m.value or b"").decode("utf-8", "replace") + str(m.headers)
        for m in collect(stack, ["raw.hotline.dlq"], 3)
        if f"PIPL{run}".encode() in (m.value or b"")
    ]
    assert dead, "the malformed ticket was not dead-lettered"
    for where, texts in (("worker log", [worker.log()]), ("dead letters", dead), ("API", answers)):
        leaked = [n for n in needles if any(n in t for t in texts)]
        if leaked:
            found[where] = leaked
    assert not found, f"callers' numbers in clear: {found}"


def _tasks(settings: Settings, incidents: list[str]) -> list[str]:
    with psycopg.connect(settings.conninfo()) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT dispatch_id FROM dispatches WHERE incident_id = ANY(%s)", (incidents,)
            ).fetchall()
        ]
