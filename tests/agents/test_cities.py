"""The pipeline in each shipped city, on a real worker, broker and database: a 12345 ticket
that gives only an address in that city (no coordinates) is placed by the city's gazetteer,
becomes an incident in the right district, and is dispatched to the gas company whose zone
it is in (the city pack's jurisdictions and its own departments and routes)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from citybrain.settings import Settings
from citybrain_tools.kafka import start_group_at_end
from tests.agents.normalize.test_agent import produce
from tests.conftest import wait_for

pytestmark = pytest.mark.integration

#: pack -> (the caller's address, its district, the gas company of its zone)
CITIES = {
    "shanghai": ("上海市浦东新区世纪大道2001号楼下", "310115", "gas-pudong"),
    "guiyang": ("贵州省贵阳市云岩区北京路", "520103", "gas-gy-urban"),
}


@pytest.mark.parametrize("pack", sorted(CITIES))
def test_a_ticket_with_only_an_address_is_placed_and_dispatched_in_each_city(
    stack: Settings, worker_factory: Any, pack: str
) -> None:
    address, district, gas_company = CITIES[pack]
    ticket = f"CITY{uuid.uuid4().hex[:10]}"
    group = f"test-city-{pack}-{uuid.uuid4().hex[:6]}"
    start_group_at_end(stack, group)
    worker = worker_factory(CITYBRAIN_APP_ID=group, CITYBRAIN_CITY_PACK=pack)
    at = datetime.now(UTC) - timedelta(minutes=1)
    doc = {
        "ticketNo": ticket,
        "acceptTime": (at + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M:%S"),
        "callerPhone": "13800138000",
        "channel": "电话",
        "category": "燃气-燃气异味",
        "urgency": "特急",
        "content": "市民来电反映：楼道里有很重的燃气味",
        "address": address,
    }
    record = (ticket.encode(), json.dumps(doc, ensure_ascii=False).encode())
    produce(stack, "raw.hotline", [record])

    def dispatched() -> list[tuple[str, str, str, str]]:
        with psycopg.connect(stack.conninfo()) as conn:
            return conn.execute(
                "SELECT i.district, i.status, d.department, d.role FROM incident_reports r"
                " JOIN incidents i ON i.incident_id = r.incident_id"
                " JOIN dispatches d ON d.incident_id = i.incident_id"
                " WHERE r.event_id = %s ORDER BY d.department",
                (f"hotline-12345:{ticket}",),
            ).fetchall()

    assert wait_for(lambda: len(dispatched()) == 3, 180), worker.log()[-3000:]
    found = dispatched()
    assert {row[0] for row in found} == {district}
    assert sorted((row[2], row[3]) for row in found) == sorted(
        [(gas_company, "lead"), ("fire", "helper"), ("police", "helper")]
    )
    with psycopg.connect(stack.conninfo()) as conn:
        placed = conn.execute(
            "SELECT location_status, district FROM events WHERE event_id = %s",
            (f"hotline-12345:{ticket}",),
        ).fetchone()
    assert placed == ("located", district)
