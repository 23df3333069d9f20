"""The dispatch stage's store, the only writer of its tables: tasks (`dispatches`), their
history, and the outbox.

Reads lock the rows they return (`FOR UPDATE`), so that a plan computed from them and
saved in the same transaction cannot race another worker; the outbox and the timers claim
their due rows with `SKIP LOCKED`, so several workers share the work without doing any of
it twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from citybrain.db.commands import UPSERT_COMMAND, command_row
from citybrain.dispatch.batch import DispatchPlans, incident_view, plan_batch, status_report
from citybrain.dispatch.commands import (
    plan_assign,
    plan_callback,
    plan_close,
    plan_reopen,
    plan_urge,
)
from citybrain.dispatch.extension import plan_extension
from citybrain.dispatch.outbox import Attempt, Delivery, delivery_rank
from citybrain.dispatch.plan import (
    DispatchContext,
    IncidentView,
    Plan,
    Task,
    plan_escalations,
    plan_status,
)
from citybrain.logs import get_logger
from citybrain.schemas.commands import (
    AssignCommand,
    CallbackCommand,
    CloseCommand,
    ExtendDeadlineCommand,
    ReopenCommand,
    UrgeCommand,
)
from citybrain.schemas.dispatch_status import StatusReportModel
from citybrain.streams.db import LanedPool
from citybrain.streams.retry import TRANSIENT

log = get_logger(__name__)
#: when the timer looks again at a task whose planning raised (logged with its id)
PLANNING_RETRY = timedelta(minutes=15)

DispatchCommand = (
    ExtendDeadlineCommand
    | AssignCommand
    | UrgeCommand
    | CloseCommand
    | ReopenCommand
    | CallbackCommand
)
#: the tasks' columns, in the order the store reads and writes them
TASK_COLUMNS = (
    "dispatch_id",
    "incident_id",
    "department",
    "role",
    "status",
    "priority",
    "category",
    "ack_deadline",
    "resolve_deadline",
    "sla_clock",
    "created_at",
    "updated_at",
    "report_count",
    "route",
    "acknowledged_at",
    "resolved_at",
    "escalations",
    "next_action_at",
    "note",
    "reason",
    "reopened",
    "details",
)
_SELECT = "SELECT " + ", ".join(TASK_COLUMNS) + " FROM dispatches"


def task_of(row: dict[str, Any]) -> Task:
    values = {c: row[c] for c in TASK_COLUMNS}
    values["escalations"] = tuple(row["escalations"] or ())
    values["details"] = dict(row["details"] or {})
    return Task(**values)


def _task_values(task: Task) -> tuple[Any, ...]:
    values = []
    for c in TASK_COLUMNS:
        v = getattr(task, c)
        if c == "escalations":
            v = list(v)
        elif c == "details":
            v = Jsonb(dict(v))
        values.append(v)
    return tuple(values)


async def tasks_of_incidents(
    conn: AsyncConnection[Any], incident_ids: Sequence[str]
) -> dict[str, dict[str, Task]]:
    """The tasks of these incidents, by incident and department, locked for this transaction."""
    out: dict[str, dict[str, Task]] = {i: {} for i in incident_ids}
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            _SELECT + " WHERE incident_id = ANY(%s) ORDER BY dispatch_id FOR UPDATE",
            (list(incident_ids),),
        )
        for row in await cur.fetchall():
            task = task_of(row)
            out.setdefault(task.incident_id, {})[task.department] = task
    return out


async def stored_incidents(conn: AsyncConnection[Any], incident_ids: Sequence[str]) -> set[str]:
    """Which of these incidents have a row."""
    cur = await conn.execute(
        "SELECT incident_id FROM incidents WHERE incident_id = ANY(%s)",
        (list(incident_ids),),
    )
    return {r[0] for r in await cur.fetchall()}


async def task_by_id(conn: AsyncConnection[Any], dispatch_id: str) -> Task | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_SELECT + " WHERE dispatch_id = %s FOR UPDATE", (dispatch_id,))
        row = await cur.fetchone()
    return task_of(row) if row else None


async def incident_row(conn: AsyncConnection[Any], incident_id: str) -> dict[str, Any] | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT incident_id, category, priority, status, first_seen, last_seen,"
            " reports_total, district, lon, lat, location_status, report_counts AS reports,"
            " callback"
            " FROM incidents WHERE incident_id = %s",
            (incident_id,),
        )
        return await cur.fetchone()


async def due_tasks(conn: AsyncConnection[Any], now: datetime, limit: int) -> list[Task]:
    """Open tasks whose reminder or escalation timer is due, claimed for this transaction."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            _SELECT + " WHERE status IN ('dispatched', 'acknowledged', 'in_progress')"
            " AND next_action_at <= %s ORDER BY next_action_at LIMIT %s"
            " FOR UPDATE SKIP LOCKED",
            (now, limit),
        )
        return [task_of(r) for r in await cur.fetchall()]


async def save_plan(
    conn: AsyncConnection[Any],
    plan: Plan,
    incident_id: str | None,
    destinations: Callable[[str], Iterable[str]],
    max_attempts: int,
    lease: tuple[datetime, float] | None = None,
) -> list[Outgoing]:
    """Store a plan: tasks upserted, history appended, one outbox row per message and
    destination (a message id seen before is not queued again), the incident's status.
    Returns the outbox rows queued. With `lease` (now, seconds) they are queued already
    leased to this worker, which delivers them itself right after the commit (no claim,
    no wait for the outbox loop); if it dies first, the lease runs out and any worker's
    outbox delivers them."""
    if plan.tasks:
        cols = ", ".join(TASK_COLUMNS)
        marks = ", ".join(["%s"] * len(TASK_COLUMNS))
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in TASK_COLUMNS[3:])
        async with conn.cursor() as cur:
            await cur.executemany(
                f"INSERT INTO dispatches ({cols}) VALUES ({marks})"
                f" ON CONFLICT (dispatch_id) DO UPDATE SET {updates}",
                [_task_values(t) for t in plan.tasks],
            )
    if plan.history:
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO dispatch_history (dispatch_id, at, status, department, incident_id,"
                " actor, note, ack_deadline, resolve_deadline, on_time)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                [
                    (
                        h.dispatch_id,
                        h.at,
                        h.status,
                        h.department,
                        h.incident_id,
                        h.actor,
                        h.note,
                        h.ack_deadline,
                        h.resolve_deadline,
                        h.on_time,
                    )
                    for h in plan.history
                ],
            )
    rows = [
        (
            m.message_id,
            destination,
            m.dispatch_id,
            m.department,
            m.kind,
            Jsonb(dict(m.payload)),
            delivery_rank(m.kind, int(m.payload.get("priority", 4))),
        )
        for m in plan.messages
        for destination in destinations(m.department)
    ]
    queued: list[Outgoing] = []
    if rows:
        columns = list(zip(*rows, strict=True))
        async with conn.cursor(row_factory=dict_row) as cur:
            # one statement for every row; RETURNING gives the new ones only
            await cur.execute(
                "INSERT INTO dispatch_outbox (message_id, destination, dispatch_id, department,"
                " kind, payload, rank, max_attempts, next_attempt_at, leased_attempt)"
                " SELECT m, d, i, dep, k, p, rk, %s,"
                " COALESCE(%s::timestamptz + make_interval(secs => %s), now()), %s"
                " FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[],"
                " %s::jsonb[], %s::smallint[]) AS r(m, d, i, dep, k, p, rk)"
                " ON CONFLICT DO NOTHING RETURNING *",
                (
                    max_attempts,
                    lease[0] if lease else None,
                    lease[1] if lease else 0.0,
                    1 if lease else 0,
                    *(list(c) for c in columns),
                ),
            )
            queued = [_outgoing(r) for r in await cur.fetchall()]
    if incident_id is not None and plan.incident_status is not None:
        await conn.execute(
            "UPDATE incidents SET status = %s, updated_at = now(), version = version + 1"
            " WHERE incident_id = %s AND status <> %s",
            (plan.incident_status, incident_id, plan.incident_status),
        )
    if incident_id is not None and plan.incident_fields:
        fields = {k: v for k, v in plan.incident_fields.items() if k in INCIDENT_FIELDS}
        sets = ", ".join(f"{k} = %s" for k in fields)
        await conn.execute(
            f"UPDATE incidents SET {sets}, updated_at = now() WHERE incident_id = %s",
            (*fields.values(), incident_id),
        )
    return queued


#: the incident columns a plan may set besides its status (an operator's decisions)
INCIDENT_FIELDS = frozenset({"verification", "callback", "closed_at"})


# --- the stage's transactions ------------------------------------------------------------
Destinations = Callable[[str], Iterable[str]]


async def dispatch_incidents(
    pool: LanedPool,
    incidents: Sequence[IncidentView],
    ctx: DispatchContext,
    destinations: Destinations,
    max_attempts: int,
    lease: tuple[datetime, float] | None,
    now: datetime,
) -> tuple[list[Outgoing], DispatchPlans]:
    """Plan (`citybrain.dispatch.batch.plan_batch`) and store a batch of incident changes
    in one transaction; each plan is saved in its own savepoint, so one that the database
    refuses is handed back as failed and the rest are dispatched. Returns the outbox rows
    queued (leased to this worker with `lease`) and the plans."""
    queued: list[Outgoing] = []
    # in a pipeline: statements go out together and wait for the database only where a
    # result is needed (the reads, each incident's outbox rows, its savepoint, the commit)
    async with pool.connection() as conn, conn.pipeline(), conn.transaction():
        stored = await stored_incidents(conn, [i.incident_id for i in incidents])
        existing = await tasks_of_incidents(conn, [i for i in stored])
        plans = plan_batch(incidents, stored, existing, ctx, now)
        # in incident id order, as the correlate stage writes them: two transactions that
        # lock the same incidents in the same order cannot deadlock (each deadlock held the
        # report path for the server's deadlock_timeout, a second, before one was retried)
        for index, plan in sorted(plans.plans, key=lambda p: incidents[p[0]].incident_id):
            incident_id = incidents[index].incident_id
            try:
                async with conn.transaction():  # a savepoint
                    queued += await save_plan(
                        conn, plan, incident_id, destinations, max_attempts, lease
                    )
            except TRANSIENT:
                raise  # the database is away: the whole batch is retried
            except Exception as exc:
                plans.failed.append((index, exc))
    return queued, plans


async def escalate_due(
    pool: LanedPool,
    ctx: DispatchContext,
    destinations: Destinations,
    max_attempts: int,
    now: datetime,
    chunk: int = 25,
    most: int = 500,
) -> int:
    """Plan and store the reminders and escalations that are due, `chunk` tasks to a
    transaction and at most `most` in a pass (a backlog of due timers never holds a
    connection or its locks for long: the report path's commands and reports on the same
    tasks wait at most one chunk); how many messages were queued."""
    queued = taken = 0
    while taken < most:
        async with pool.connection() as conn, conn.pipeline(), conn.transaction():
            due = await due_tasks(conn, now, min(chunk, most - taken))
            for task in due:
                try:
                    plan = plan_escalations(task, ctx, now, ctx.routing.operations_center)
                except Exception:  # one task's bad data never stops the others' timers
                    log.exception("escalation planning failed", dispatch_id=task.dispatch_id)
                    plan = Plan(tasks=[replace(task, next_action_at=now + PLANNING_RETRY)])
                queued += len(await save_plan(conn, plan, None, destinations, max_attempts))
        taken += len(due)
        if len(due) < chunk:
            break
        await asyncio.sleep(0)  # what waits for the pool goes first
    return queued


class UnknownDispatch(LookupError):
    """A report or command names a task that does not exist."""


async def apply_status_report(
    pool: LanedPool,
    model: StatusReportModel,
    ctx: DispatchContext,
    destinations: Destinations,
    max_attempts: int,
    now: datetime,
) -> tuple[Plan, str, str | None]:
    """Apply one department report in one transaction: the plan, the task's incident and
    the incident's status before it. Raises `UnknownDispatch`, `PermissionError` (not the
    department's task) or `TransitionError` (a change the task's state does not allow)."""
    async with pool.connection() as conn, conn.transaction():
        task = await task_by_id(conn, model.dispatch_id)
        if task is None:
            raise UnknownDispatch(f"no dispatch {model.dispatch_id}")
        row = await incident_row(conn, task.incident_id)
        incident = incident_view(row) if row else None
        tasks = (await tasks_of_incidents(conn, [task.incident_id]))[task.incident_id]
        plan = plan_status(status_report(model), task, tasks, incident, ctx, now)
        await save_plan(conn, plan, task.incident_id, destinations, max_attempts)
    return plan, task.incident_id, incident.status if incident else None


async def apply_command(
    pool: LanedPool,
    command: DispatchCommand,
    ctx: DispatchContext,
    destinations: Destinations,
    max_attempts: int,
    now: datetime,
) -> tuple[Plan, str | None, str | None]:
    """Apply one operator's task command in one transaction, answered in
    `operator_commands` in the same one: the plan, the incident and its status before.
    Raises `UnknownDispatch` / `LookupError` for a task or incident that does not exist,
    `CommandRefused` when the state does not allow it (the caller records the refusal)."""
    async with pool.connection() as conn, conn.transaction():
        if isinstance(command, ExtendDeadlineCommand | UrgeCommand):
            task = await task_by_id(conn, command.dispatch_id)
            if task is None:
                raise UnknownDispatch(f"no task {command.dispatch_id}")
            incident_id = task.incident_id
            if isinstance(command, UrgeCommand):
                plan = plan_urge(command, task, now)
            else:
                plan = plan_extension(
                    task,
                    command.resolve_deadline,
                    command.actor,
                    f"extension {command.command_id}: {command.reason}",
                    command.at,
                    now,
                )
            before = None
        else:
            incident_id = command.incident_id
            row = await incident_row(conn, incident_id)
            if row is None:
                raise LookupError(f"no incident {incident_id}")
            incident = incident_view(row)
            before = incident.status
            tasks = (await tasks_of_incidents(conn, [incident_id]))[incident_id]
            if isinstance(command, AssignCommand):
                plan = plan_assign(command, incident, tasks, ctx, now)
            elif isinstance(command, CloseCommand):
                plan = plan_close(command, incident, tasks, row["callback"], now)
            elif isinstance(command, ReopenCommand):
                plan = plan_reopen(command, incident, tasks, ctx, now)
            else:
                plan = plan_callback(command, incident, tasks, ctx, now)
        await save_plan(conn, plan, incident_id, destinations, max_attempts)
        answer = command_row(command, "applied", summary(plan), incident_id)
        await conn.execute(UPSERT_COMMAND, answer)
    return plan, incident_id, before


async def refuse_command(pool: LanedPool, command: Any, reason: str) -> None:
    """Answer a command `refused`, with the reason."""
    async with pool.connection() as conn:
        await conn.execute(UPSERT_COMMAND, command_row(command, "refused", reason))


def summary(plan: Plan) -> str:
    """What a command changed, in a few words (`operator_commands.result`)."""
    parts = [f"{h.status} {h.department}" for h in plan.history]
    if plan.incident_status:
        parts.append(f"incident {plan.incident_status}")
    parts += [f"{k} {v}" for k, v in plan.incident_fields.items() if v is not None]
    return "; ".join(parts) or "nothing to change"


# --- the outbox ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Outgoing:
    """A claimed outbox row: a message on its way to one destination."""

    delivery: Delivery
    department: str
    kind: str
    payload: dict[str, Any]
    #: an earlier lease ended with no attempt recorded: its worker died after (or while)
    #: sending, so the message may be at its destination already
    lease_lost: bool = False

    @property
    def message_id(self) -> str:
        return self.delivery.delivery_id

    @property
    def may_be_there(self) -> bool:
        """Whether the message may have reached its destination already: its last lease
        ended with nothing recorded, or its last attempt timed out or lost its connection
        (a broker that wrote it but whose answer never came)."""
        last = self.delivery.last_error or ""
        unanswered = self.delivery.status == "failed" and last.startswith(("timeout", "connection"))
        return self.lease_lost or unanswered


async def claim_deliveries(
    conn: AsyncConnection[Any], now: datetime, lease_s: float, limit: int
) -> list[Outgoing]:
    """Due deliveries, the most urgent first (`delivery_rank`: the task's priority, then
    the message's kind), leased to this worker for `lease_s` (a worker that dies mid-way
    leaves them to be retried when the lease runs out; the next claim sees `lease_lost`)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "UPDATE dispatch_outbox o"
            " SET next_attempt_at = %(now)s + make_interval(secs => %(lease)s),"
            " leased_attempt = o.attempts + 1"
            " FROM (SELECT message_id, destination, leased_attempt, next_attempt_at AS due_at"
            "       FROM dispatch_outbox"
            "       WHERE status IN ('pending', 'failed') AND next_attempt_at <= %(now)s"
            "       ORDER BY rank, next_attempt_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED) due"
            " WHERE o.message_id = due.message_id AND o.destination = due.destination"
            " RETURNING o.*, due.leased_attempt > o.attempts AS lease_lost, due.due_at",
            {"now": now, "lease": lease_s, "limit": limit},
        )
        rows = await cur.fetchall()
    # RETURNING keeps no order: the most urgent first again, as the subquery chose them
    rows.sort(key=lambda r: (r["rank"], r["due_at"]))
    return [_outgoing(r) for r in rows]


def _outgoing(r: dict[str, Any]) -> Outgoing:
    """An outbox row as a delivery on its way."""
    return Outgoing(
        Delivery(
            delivery_id=r["message_id"],
            dispatch_id=r["dispatch_id"],
            destination=r["destination"],
            status=r["status"],
            attempts=r["attempts"],
            max_attempts=r["max_attempts"],
            last_error=r["last_error"],
            next_attempt_at=r["next_attempt_at"],
            created_at=r["created_at"],
            sent_at=r["sent_at"],
        ),
        r["department"],
        r["kind"],
        dict(r["payload"]),
        lease_lost=bool(r.get("lease_lost", False)),
    )


async def record_delivery(conn: AsyncConnection[Any], after: Delivery, attempt: Attempt) -> None:
    """Store a delivery's state after an attempt, and the attempt itself."""
    await conn.execute(
        "UPDATE dispatch_outbox SET status = %s, attempts = %s, last_error = %s,"
        " next_attempt_at = COALESCE(%s, next_attempt_at), sent_at = %s"
        " WHERE message_id = %s AND destination = %s",
        (
            after.status,
            after.attempts,
            after.last_error,
            after.next_attempt_at,
            after.sent_at,
            after.delivery_id,
            after.destination,
        ),
    )
    await conn.execute(
        "INSERT INTO delivery_attempts (message_id, destination, attempt, at, outcome,"
        " status_code, error, duration_ms) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT DO NOTHING",
        (
            attempt.delivery_id,
            attempt.destination,
            attempt.number,
            attempt.at,
            attempt.outcome,
            attempt.status_code,
            attempt.error,
            attempt.duration_ms,
        ),
    )
