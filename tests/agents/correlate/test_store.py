"""The correlate stage's writes on the real PostgreSQL: a batch's merge suggestions are
stored with the incidents, once per pair (a batch written again changes nothing)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import psycopg
import pytest

from citybrain.agents.correlate.store import write_incidents
from citybrain.correlation.batch import correlate_batch
from citybrain.correlation.core import Correlator
from citybrain.settings import Settings
from tests.citybrain.correlation.test_core import T0, ev

pytestmark = pytest.mark.integration


def test_suggestions_are_stored_once_with_their_incidents(stack: Settings) -> None:
    run = uuid.uuid4().hex[:8]
    located, vague = ev(f"a-{run}"), ev(f"v-{run}", status="needs_location", minutes=5)
    out = correlate_batch(Correlator(), [located, vague], T0 + timedelta(minutes=30))
    assert out.suggestions
    asyncio.run(write_incidents(stack, out))
    asyncio.run(write_incidents(stack, out))  # redelivered: the same rows
    (for_incident, candidate, *_) = out.suggestions[0]
    with psycopg.connect(stack.conninfo()) as conn:
        rows = conn.execute(
            "SELECT candidate_id, status, reasons FROM incident_merge_suggestions"
            " WHERE incident_id = %s",
            (for_incident,),
        ).fetchall()
        incidents = conn.execute(
            "SELECT count(*) FROM incidents WHERE incident_id IN (%s, %s)",
            (for_incident, candidate),
        ).fetchone()
    assert [(r[0], r[1]) for r in rows] == [(candidate, "open")]
    assert "same family flooding" in rows[0][2]
    assert incidents == (2,)
