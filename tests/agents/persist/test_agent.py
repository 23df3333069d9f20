"""A poison pill for the persist stage: an event the database refuses (a NUL character in
its text, which only a producer bypassing the normalize stage can send) goes to
events.v1.dlq with its reason; the events around it are stored; the worker goes on."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest

from citybrain.settings import Settings
from citybrain_tools.chaos.poison import event as canonical_event
from citybrain_tools.kafka import start_group_at_end
from tests.agents.normalize.test_agent import collect, produce
from tests.conftest import wait_for

pytestmark = pytest.mark.integration


def event(event_id: str, text: str) -> bytes:
    """A hotline report on events.v1 that persist stores (placed by district only)."""
    doc = canonical_event(
        text,
        event_id=event_id,
        location__status="needs_location",
        location__lon=None,
        location__lat=None,
    )
    return json.dumps(doc).encode()


def test_a_row_the_database_refuses_is_dead_lettered_and_the_rest_stored(
    stack: Settings, worker_factory: Any
) -> None:
    run = uuid.uuid4().hex[:8]
    ids = [f"test-persist:{run}:{n}" for n in range(3)]
    # a group started at the end of every topic: this test's records, not the suite's history
    group = f"test-persist-{uuid.uuid4().hex[:8]}"
    start_group_at_end(stack, group)
    worker = worker_factory(CITYBRAIN_APP_ID=group)
    worker.wait_ready()
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
