"""A poison pill for the persist stage: an event the database refuses (a NUL character in
its text, which only a producer bypassing the normalize stage can send) goes to
events.v1.dlq with its reason; the events around it are stored; the worker goes on."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from citybrain.settings import Settings
from tests.agents.test_normalize import collect, produce
from tests.conftest import wait_for

pytestmark = pytest.mark.integration


def event(event_id: str, text: str) -> bytes:
    now = datetime.now(UTC).isoformat()
    return json.dumps(
        {
            "schema": "citybrain.event/1",
            "event_id": event_id,
            "source_kind": "hotline",
            "feed": "hotline-12345",
            "kind": "report",
            "category": "noise",
            "severity": 4,
            "observed_at": now,
            "received_at": now,
            "location": {
                "status": "needs_location",
                "lon": None,
                "lat": None,
                "source_crs": None,
                "address": None,
                "device_id": None,
                "method": None,
                "district": "310115",
                "street": None,
                "community": None,
                "grid_cell": None,
                "jurisdiction": {},
                "match_confidence": None,
            },
            "raw_ref": {"topic": "raw.hotline", "partition": 0, "offset": 0, "key": None},
            "text": text,
            "caller_phone_masked": None,
            "attributes": {},
        }
    ).encode()


def test_a_row_the_database_refuses_is_dead_lettered_and_the_rest_stored(
    stack: Settings, worker_factory: Any
) -> None:
    run = uuid.uuid4().hex[:8]
    ids = [f"test-persist:{run}:{n}" for n in range(3)]
    worker = worker_factory()
    time.sleep(8)
    produce(
        stack,
        "events.v1",
        [
            (b"k", event(ids[0], "楼下很吵")),
            (b"k", event(ids[1], "poison\u0000pill")),
            (b"k", event(ids[2], "还是很吵")),
        ],
    )

    def stored() -> set[str]:
        with psycopg.connect(stack.conninfo()) as conn:
            rows = conn.execute(
                "SELECT event_id FROM events WHERE event_id = ANY(%s)", (ids,)
            ).fetchall()
        return {r[0] for r in rows}

    assert wait_for(lambda: stored() == {ids[0], ids[2]}, 90), worker.log()[-3000:]
    dead = [
        m
        for m in collect(stack, ["events.v1.dlq"], 3)
        if json.loads(m.value).get("event_id") == ids[1]
    ]
    assert len(dead) == 1 and dict(dead[0].headers)["dlq.reason"] == b"storage_rejected"
    assert dict(dead[0].headers)["dlq.stage"] == b"persist"
    assert worker.alive()
