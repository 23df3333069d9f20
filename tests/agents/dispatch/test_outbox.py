"""The outbox after a worker died between a send and its record, on a real worker, broker
and database: the next worker finds the message already on the department's topic and
records it sent without a second copy; a message the dead worker never got out is sent,
once."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from kafka import KafkaProducer

from citybrain.settings import Settings
from citybrain_tools.kafka import start_group_at_end
from tests.agents.dispatch.test_store import _plan_and_save, _store_incident
from tests.agents.normalize.test_agent import collect
from tests.conftest import wait_for

pytestmark = pytest.mark.integration


def test_a_lost_lease_is_looked_up_on_the_topic_before_sending_again(
    stack: Settings, worker_factory: Any
) -> None:
    incident_id = f"inc-outbox-{uuid.uuid4().hex[:8]}"
    _store_incident(stack, incident_id)
    # queued leased to a worker that died: the lease ran out a minute ago, nothing recorded
    died_at = datetime.now(UTC) - timedelta(seconds=120)
    queued = asyncio.run(_plan_and_save(stack, incident_id, (died_at, 60.0)))
    assert len(queued) == 3, queued  # gas_leak: the gas company, fire, police
    topics = sorted(q.delivery.destination.removeprefix("kafka:") for q in queued)
    sent_before_death, never_sent = queued[0], queued[1:]
    producer = KafkaProducer(bootstrap_servers=stack.kafka_bootstrap_list, acks="all")
    producer.send(
        sent_before_death.delivery.destination.removeprefix("kafka:"),
        key=sent_before_death.delivery.dispatch_id.encode(),
        value=json.dumps(sent_before_death.payload).encode(),  # as the dead worker sent it
        headers=[
            ("message-id", sent_before_death.message_id.encode()),
            ("kind", sent_before_death.kind.encode()),
        ],
    ).get(timeout=30)
    producer.close()

    group = f"test-outbox-{uuid.uuid4().hex[:8]}"
    start_group_at_end(stack, group)
    worker = worker_factory(
        CITYBRAIN_APP_ID=group, CITYBRAIN_STAGES="dispatch", CITYBRAIN_DELIVERY_INTERVAL="0.3"
    )

    def statuses() -> dict[str, str]:
        with psycopg.connect(stack.conninfo()) as conn:
            rows = conn.execute(
                "SELECT message_id, status FROM dispatch_outbox WHERE message_id = ANY(%s)",
                ([q.message_id for q in queued],),
            ).fetchall()
        return dict(rows)

    assert wait_for(lambda: set(statuses().values()) == {"sent"}, 120), (
        statuses(),
        worker.log()[-3000:],
    )
    copies: dict[str, int] = {}
    for m in collect(stack, topics, 4):
        ids = [v.decode() for k, v in m.headers if k == "message-id"]
        if ids and ids[0] in {q.message_id for q in queued}:
            copies[ids[0]] = copies.get(ids[0], 0) + 1
    # every message exactly once on its topic: the one sent before the death is not repeated
    assert copies == {q.message_id: 1 for q in queued}, copies
    log = worker.log()
    assert "delivery found after a lost lease" in log and sent_before_death.message_id in log
    assert not any(q.message_id in line for q in never_sent for line in _found_lines(log))
    with psycopg.connect(stack.conninfo()) as conn:
        attempts = conn.execute(
            "SELECT message_id, outcome, error FROM delivery_attempts WHERE message_id = ANY(%s)",
            ([q.message_id for q in queued],),
        ).fetchall()
    assert sorted(a[0] for a in attempts) == sorted(q.message_id for q in queued)
    assert all(a[1] == "sent" for a in attempts)


def _found_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if "delivery found after a lost lease" in line]
