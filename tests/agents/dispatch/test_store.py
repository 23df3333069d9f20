"""The dispatch stage's tables on the real PostgreSQL: a plan's outbox rows are queued once
(a replanned message is not queued again), and rows queued leased to the dispatching
worker are not claimed by any outbox until the lease runs out; rows queued without a lease
are due at once; due timers are taken in small transactions, a bounded number a pass."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import AsyncConnection

from citybrain.agents.dispatch.store import (
    Outgoing,
    claim_deliveries,
    escalate_due,
    save_plan,
    tasks_of_incidents,
)
from citybrain.dispatch.plan import plan_incident
from citybrain.settings import Settings
from tests.citybrain.dispatch.test_plan import CTX, incident

pytestmark = pytest.mark.integration


def _destinations(department: str) -> list[str]:
    return [f"kafka:dispatch.{department}.v1"]


def _store_incident(stack: Settings, incident_id: str) -> None:
    with psycopg.connect(stack.conninfo(), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO incidents (incident_id, category, priority, status, first_seen,"
            " last_seen) VALUES (%s, 'gas_leak', 1, 'open', now(), now())",
            (incident_id,),
        )


async def _plan_and_save(
    stack: Settings, incident_id: str, lease: tuple[datetime, float] | None
) -> list[Outgoing]:
    conn = await AsyncConnection.connect(stack.conninfo())
    try:
        async with conn.transaction():
            existing = await tasks_of_incidents(conn, [incident_id])
            view = incident("gas_leak", 1, incident_id=incident_id)
            plan = plan_incident(view, existing[incident_id], CTX, datetime.now(UTC))
            return await save_plan(conn, plan, incident_id, _destinations, 5, lease)
    finally:
        await conn.close()


async def _claimed(stack: Settings, now: datetime, keep: bool = True) -> dict[str, Outgoing]:
    """What an outbox claims at `now`, committed (the lease counts) or, with `keep=False`,
    rolled back (the stack's other rows stay due)."""
    conn: AsyncConnection[Any] = await AsyncConnection.connect(stack.conninfo())
    try:
        async with conn.transaction(force_rollback=not keep):
            return {i.message_id: i for i in await claim_deliveries(conn, now, 60.0, 100_000)}
    finally:
        await conn.close()


async def _claim(stack: Settings, now: datetime) -> set[str]:
    """The message ids an outbox would claim at `now` (rolled back)."""
    return set(await _claimed(stack, now, keep=False))


def test_a_plan_is_queued_once_and_leased_rows_wait_for_their_lease(stack: Settings) -> None:
    incident_id = f"inc-store-{uuid.uuid4().hex[:8]}"
    _store_incident(stack, incident_id)
    now = datetime.now(UTC)
    queued = asyncio.run(_plan_and_save(stack, incident_id, (now, 60.0)))
    assert queued and all(q.delivery.status == "pending" for q in queued)
    assert {q.department for q in queued} >= {"gas-pudong"}
    assert all(q.delivery.next_attempt_at > now + timedelta(seconds=59) for q in queued)
    # planned again (a redelivered incident message): nothing new to send
    assert asyncio.run(_plan_and_save(stack, incident_id, (now, 60.0))) == []
    # no outbox takes them while the lease holds; after it, one does (the sender died)
    ids = {q.message_id for q in queued}
    assert asyncio.run(_claim(stack, datetime.now(UTC))) & ids == set()
    assert asyncio.run(_claim(stack, now + timedelta(seconds=61))) & ids == ids


def test_rows_queued_without_a_lease_are_due_at_once(stack: Settings) -> None:
    incident_id = f"inc-store-{uuid.uuid4().hex[:8]}"
    _store_incident(stack, incident_id)
    queued = asyncio.run(_plan_and_save(stack, incident_id, None))
    ids = {q.message_id for q in queued}
    assert (
        asyncio.run(_claim(stack, datetime.now(UTC) + timedelta(seconds=1))) & ids == ids != set()
    )


def test_a_lease_that_ended_without_an_attempt_is_marked_lost(stack: Settings) -> None:
    incident_id = f"inc-store-{uuid.uuid4().hex[:8]}"
    _store_incident(stack, incident_id)
    now = datetime.now(UTC)
    queued = asyncio.run(_plan_and_save(stack, incident_id, (now, 60.0)))
    ids = {q.message_id for q in queued}
    assert queued and not any(q.lease_lost for q in queued)  # the sender's own lease
    # the sender died: the next claim knows its lease ended with nothing recorded
    later = asyncio.run(_claimed(stack, now + timedelta(seconds=61)))
    assert {i for i, q in later.items() if i in ids and q.lease_lost} == ids
    # an attempt recorded (a failure): the claim after it is an ordinary retry
    first = next(iter(ids))
    with psycopg.connect(stack.conninfo(), autocommit=True) as conn:
        conn.execute(
            "UPDATE dispatch_outbox SET attempts = attempts + 1, status = 'failed'"
            " WHERE message_id = %s",
            (first,),
        )
    again = asyncio.run(_claimed(stack, now + timedelta(seconds=122)))
    assert first in again and not again[first].lease_lost


def test_the_outbox_claims_the_most_urgent_first(stack: Settings) -> None:
    """Due deliveries come in rank order (priority, then kind), oldest first within a rank:
    a P1 gas leak's new task goes ahead of older P4 updates and reminders."""
    run = uuid.uuid4().hex[:8]
    incident_id = f"inc-rank-{run}"
    _store_incident(stack, incident_id)
    asyncio.run(_plan_and_save(stack, incident_id, (datetime.now(UTC), 60.0)))
    dispatch_id = _dispatch_of(stack, incident_id)
    old = datetime.now(UTC) - timedelta(hours=1)
    rows = [  # (message, kind, rank, queued): the urgent one queued last
        (f"m-{run}-reminder", "task.reminder", 11, old),
        (f"m-{run}-update", "task.updated", 10, old + timedelta(seconds=1)),
        (f"m-{run}-p1-update", "task.updated", 1, old + timedelta(seconds=2)),
        (f"m-{run}-p1-new", "task.created", 0, old + timedelta(seconds=3)),
    ]
    with psycopg.connect(stack.conninfo(), autocommit=True) as conn:
        for message_id, kind, rank, at in rows:
            conn.execute(
                "INSERT INTO dispatch_outbox (message_id, destination, dispatch_id, department,"
                " kind, payload, rank, max_attempts, next_attempt_at)"
                " VALUES (%s, 'kafka:dispatch.x.v1', %s, 'x', %s, '{}', %s, 5, %s)",
                (message_id, dispatch_id, kind, rank, at),
            )

    async def claim_order() -> list[str]:
        conn: AsyncConnection[Any] = await AsyncConnection.connect(stack.conninfo())
        try:
            async with conn.transaction(force_rollback=True):
                claimed = await claim_deliveries(conn, datetime.now(UTC), 60.0, 100_000)
        finally:
            await conn.close()
        ours = {r[0] for r in rows}
        return [c.message_id for c in claimed if c.message_id in ours]

    assert asyncio.run(claim_order()) == [
        f"m-{run}-p1-new",
        f"m-{run}-p1-update",
        f"m-{run}-update",
        f"m-{run}-reminder",
    ]


def test_a_plan_queues_its_messages_with_their_rank(stack: Settings) -> None:
    incident_id = f"inc-rank-{uuid.uuid4().hex[:8]}"
    _store_incident(stack, incident_id)  # a P1 gas leak
    queued = asyncio.run(_plan_and_save(stack, incident_id, None))
    with psycopg.connect(stack.conninfo()) as conn:
        ranks = conn.execute(
            "SELECT DISTINCT kind, rank FROM dispatch_outbox WHERE message_id = ANY(%s)",
            ([q.message_id for q in queued],),
        ).fetchall()
    assert ranks == [("task.created", 0)]


def _dispatch_of(stack: Settings, incident_id: str) -> str:
    with psycopg.connect(stack.conninfo()) as conn:
        row = conn.execute(
            "SELECT dispatch_id FROM dispatches WHERE incident_id = %s LIMIT 1", (incident_id,)
        ).fetchone()
    assert row is not None
    return str(row[0])


def test_due_timers_are_taken_in_small_transactions_and_bounded_a_pass(stack: Settings) -> None:
    """A backlog of due reminders never holds one long transaction: with chunk 2 and most 5,
    a pass takes the 5 most overdue tasks in 3 transactions and leaves the rest."""
    from psycopg_pool import AsyncConnectionPool

    run = uuid.uuid4().hex[:8]
    incidents = [f"inc-due-{run}-{n}" for n in range(3)]
    for incident_id in incidents:
        _store_incident(stack, incident_id)
        asyncio.run(_plan_and_save(stack, incident_id, None))
    with psycopg.connect(stack.conninfo(), autocommit=True) as conn:
        # overdue before anything else in the table, so this pass takes ours first
        conn.execute(
            "UPDATE dispatches SET next_action_at = '2000-01-01T00:00:00Z'::timestamptz"
            " + make_interval(secs => ascii(right(incident_id, 1)) * 10 + length(department))"
            " WHERE incident_id = ANY(%s)",
            (incidents,),
        )
        ours = conn.execute(
            "SELECT count(*) FROM dispatches WHERE incident_id = ANY(%s)", (incidents,)
        ).fetchone()
    assert ours is not None and ours[0] > 5

    async def one_pass() -> None:
        async with AsyncConnectionPool(stack.conninfo(), min_size=1, max_size=2) as pool:
            await escalate_due(
                pool,  # type: ignore[arg-type]
                CTX,
                _destinations,
                5,
                datetime.now(UTC),
                chunk=2,
                most=5,
            )

    asyncio.run(one_pass())
    with psycopg.connect(stack.conninfo()) as conn:
        rows = conn.execute(
            "SELECT xmin::text, next_action_at > '2000-01-02' FROM dispatches"
            " WHERE incident_id = ANY(%s)",
            (incidents,),
        ).fetchall()
    taken = [xmin for xmin, moved in rows if moved]
    assert len(taken) == 5
    assert len(set(taken)) == 3  # 2 + 2 + 1: one transaction a chunk


def test_a_due_task_of_an_unknown_department_does_not_stop_the_pass(stack: Settings) -> None:
    """The most overdue task belongs to a department this configuration does not have (CI
    once saw the whole pass fail on it with a KeyError, every minute): it is escalated to
    the operations center and its timer stops; the task behind it is still handled."""
    from psycopg_pool import AsyncConnectionPool

    run = uuid.uuid4().hex[:8]
    orphan_incident, known_incident = f"inc-orphan-{run}", f"inc-known-{run}"
    for incident_id in (orphan_incident, known_incident):
        _store_incident(stack, incident_id)
        asyncio.run(_plan_and_save(stack, incident_id, None))
    with psycopg.connect(stack.conninfo(), autocommit=True) as conn:
        conn.execute(
            "UPDATE dispatches SET department = 'gone-' || department,"
            " next_action_at = '1999-01-01T00:00:00Z' WHERE incident_id = %s",
            (orphan_incident,),
        )
        conn.execute(
            "UPDATE dispatches SET next_action_at = '1999-01-02T00:00:00Z' WHERE incident_id = %s",
            (known_incident,),
        )

    async def one_pass() -> None:
        async with AsyncConnectionPool(stack.conninfo(), min_size=1, max_size=2) as pool:
            # a day on: every step of both ladders is due; ours are the most overdue
            later = datetime.now(UTC) + timedelta(days=1)
            await escalate_due(pool, CTX, _destinations, 5, later, most=10)  # type: ignore[arg-type]

    asyncio.run(one_pass())
    with psycopg.connect(stack.conninfo()) as conn:
        rows = conn.execute(
            "SELECT incident_id, next_action_at, escalations FROM dispatches"
            " WHERE incident_id = ANY(%s)",
            ([orphan_incident, known_incident],),
        ).fetchall()
        to_center = conn.execute(
            "SELECT count(*) FROM dispatch_outbox o JOIN dispatches d USING (dispatch_id)"
            " WHERE d.incident_id = %s AND o.message_id LIKE %s",
            (orphan_incident, f"%:department_unknown:{CTX.routing.operations_center}"),
        ).fetchone()
    orphans = [r for r in rows if r[0] == orphan_incident]
    known = [r for r in rows if r[0] == known_incident]
    assert orphans and all(r[1] is None and "department_unknown" in r[2] for r in orphans)
    assert to_center == (len(orphans),)
    assert known and all(r[1] is None or r[1].year > 2000 for r in known)
