"""The worker's maintenance pass on the real PostgreSQL (plain mode)."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from citybrain.agents.maintenance.store import LOCK_ID, run_maintenance
from citybrain.settings import Settings

pytestmark = pytest.mark.integration


def test_a_pass_refreshes_the_views(stack: Settings) -> None:
    department = f"maint-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(stack.conninfo(), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO dispatch_history (dispatch_id, at, status, department, incident_id, "
            "on_time) VALUES ('m-d1', now(), 'resolved', %s, 'm-i1', true)",
            (department,),
        )
    assert run_maintenance(stack).startswith("partitions")
    with psycopg.connect(stack.conninfo()) as conn:
        row = conn.execute(
            "SELECT sum(resolved_on_time) FROM sla_daily WHERE department = %s", (department,)
        ).fetchone()
    assert row == (1,)


def test_only_one_worker_runs_a_pass_at_a_time(stack: Settings) -> None:
    with psycopg.connect(stack.conninfo(), autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (LOCK_ID,))
        try:
            assert run_maintenance(stack) == "skipped (another worker holds the lock)"
        finally:
            other.execute("SELECT pg_advisory_unlock(%s)", (LOCK_ID,))
