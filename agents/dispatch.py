"""Stage `dispatch`: incidents.v1 -> tasks for departments, their delivery, their timers.

Thin: `citybrain.dispatch.plan` decides. Three loops:

- the `dispatch` agent takes batches of incident changes, locks the incidents' tasks, plans
  (route, deadlines, one task per department) and stores tasks, history and outbox rows in
  one transaction, then lets the offsets go;
- the outbox timer claims due deliveries and sends each to its destination: the
  department's Kafka topic or a signed webhook; every attempt is stored; failures are
  retried with backoff and jitter and dead-lettered after the last attempt. State lives in
  the database, so delivery resumes after a restart;
- the escalation timer sends reminders and escalations as deadlines approach and pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from datetime import UTC, datetime
from functools import partial
from typing import Any

import faust
import orjson

from citybrain.dispatch.channels import Channels
from citybrain.dispatch.outbox import Outcome, attempt_record, destination_kind, record_attempt
from citybrain.dispatch.places import Jurisdictions
from citybrain.dispatch.plan import DispatchContext, IncidentView, plan_escalations, plan_incident
from citybrain.dispatch.routing import DEPARTMENTS_FILE, ROUTES_FILE, load_routing
from citybrain.dispatch.sla import SLA_FILE, WorkingHours, load_sla_policy
from citybrain.geo.pack import load_pack
from citybrain.logs import get_logger
from citybrain.metrics import BATCH_SECONDS, DELIVERIES, RECORDS
from citybrain.settings import Settings, get_settings
from citybrain.streams.app import app
from citybrain.streams.db import get_pool
from citybrain.streams.dispatch_store import (
    Outgoing,
    claim_deliveries,
    due_tasks,
    record_delivery,
    save_plan,
    stored_incidents,
    tasks_of_incidents,
)
from citybrain.streams.dlq import declare_dead_letter_topics, send_dead_letter
from citybrain.streams.retry import TRANSIENT, retry_transient
from citybrain.streams.sinks import webhook
from citybrain.streams.take import take_ready
from citybrain.streams.topics import TOPICS, declare_on_start, dispatch_topic_spec, topic

STAGE = "dispatch"
log = get_logger(__name__)
# created at start: a first dead letter to a missing topic races the producer's metadata
declare_dead_letter_topics(app, TOPICS.incidents.name)
settings = get_settings()


def configuration() -> tuple[DispatchContext, Channels]:
    """Routes, departments, SLA policy and channels, loaded once per worker."""
    routing = load_routing(
        settings.departments_file or DEPARTMENTS_FILE, settings.routes_file or ROUTES_FILE
    )
    policy = load_sla_policy(settings.sla_file or SLA_FILE)
    ctx = DispatchContext(
        routing=routing,
        policy=policy,
        hours=WorkingHours.of(policy),
        jurisdictions=Jurisdictions(load_pack(settings.city_pack)),
    )
    return ctx, Channels.of(routing, os.environ)


CTX, CHANNELS = configuration()
incidents_topic = topic(app, TOPICS.incidents)
dead_letters = topic(app, TOPICS.dispatch_dead_letters)
department_topics = {
    name: topic(app, dispatch_topic_spec(name.split(".")[1])) for name in CHANNELS.kafka_topics()
}
declare_on_start(app, dead_letters)
_wake = asyncio.Event()  # set when new deliveries are queued
#: seconds a delivery is leased to the worker sending it (then any worker may retry it)
LEASE_S = 60.0
#: deliveries the dispatch agent sends itself at once; beyond, the outbox loop takes them
DIRECT_MAX = 200
_in_flight: set[asyncio.Future[None]] = set()


def wake_outbox() -> None:
    """Deliver what was just queued without waiting for the next tick."""
    _wake.set()


@app.task(on_leader=False)
async def _say_which_webhooks_are_off() -> None:
    for hook in CHANNELS.disabled:
        log.warning("webhook disabled: no signing secret in the environment", webhook=hook)


@app.agent(incidents_topic, name="dispatch")
async def dispatch(stream: faust.StreamT[bytes]) -> None:
    async for events in take_ready(stream, 500, within=settings.batch_wait):
        started = time.perf_counter()
        latest: dict[str, IncidentView] = {}  # the newest state of each incident in the batch
        by_incident: dict[str, Any] = {}
        for event in events:
            try:
                incident = IncidentView.from_message(orjson.loads(event.message.value))
            except Exception as exc:
                await send_dead_letter(
                    app, event, stage=STAGE, error=exc, reason="schema_violation"
                )
                continue
            latest[incident.incident_id] = incident
            by_incident[incident.incident_id] = event
        if latest:
            direct = len(_in_flight) < DIRECT_MAX  # else the outbox loop delivers them
            queued, unknown, failed = await retry_transient(
                partial(_dispatch, settings, list(latest.values()), direct), what=STAGE
            )
            for incident_id in unknown:
                await send_dead_letter(
                    app,
                    by_incident[incident_id],
                    stage=STAGE,
                    error=LookupError(f"incident {incident_id} is not in the database"),
                    reason="unknown_incident",
                )
            for incident_id, error in failed:
                await send_dead_letter(
                    app,
                    by_incident[incident_id],
                    stage=STAGE,
                    error=error,
                    reason="planning_failed",
                )
            if queued and direct:
                _deliver_now(queued)
            elif queued:
                wake_outbox()
        RECORDS.labels(STAGE, "ok").inc(len(events))
        BATCH_SECONDS.labels(STAGE).observe(time.perf_counter() - started)


async def _dispatch(
    s: Settings, incidents: list[IncidentView], direct: bool = False
) -> tuple[list[Outgoing], list[str], list[tuple[str, Exception]]]:
    """Plan and store the batch; the outbox rows queued (leased to this worker when
    `direct`), the incidents not stored (whose messages cannot be dispatched: the correlate
    stage writes the row before the message), and the incidents whose planning or storing
    raised (each in its own savepoint, so one poison pill is dead-lettered and the rest of
    the batch is dispatched)."""
    pool = await get_pool(s)
    now = datetime.now(UTC)
    lease = (now, LEASE_S) if direct else None
    queued: list[Outgoing] = []
    failed: list[tuple[str, Exception]] = []
    # in a pipeline: statements go out together and wait for the database only where a
    # result is needed (the reads, each incident's outbox rows, its savepoint, the commit)
    async with pool.connection() as conn, conn.pipeline(), conn.transaction():
        stored = await stored_incidents(conn, [i.incident_id for i in incidents])
        unknown = [i.incident_id for i in incidents if i.incident_id not in stored]
        incidents = [i for i in incidents if i.incident_id in stored]
        existing = await tasks_of_incidents(conn, [i.incident_id for i in incidents])
        for incident in incidents:
            try:
                plan = plan_incident(incident, existing.get(incident.incident_id, {}), CTX, now)
                async with conn.transaction():  # a savepoint
                    queued += await save_plan(
                        conn,
                        plan,
                        incident.incident_id,
                        CHANNELS.of_department,
                        s.delivery_max_attempts,
                        lease,
                    )
            except TRANSIENT:
                raise  # the database is away: the whole batch is retried
            except Exception as exc:
                log.warning(
                    "incident not dispatched", incident_id=incident.incident_id, error=str(exc)
                )
                failed.append((incident.incident_id, exc))
    return queued, unknown, failed


def _deliver_now(queued: list[Outgoing]) -> None:
    """Send what the agent just queued (leased to it) without waiting for it: the
    stored lease, not this task, is what makes a delivery happen once."""
    for item in queued:
        future = asyncio.ensure_future(_deliver_one(item))
        _in_flight.add(future)
        future.add_done_callback(_in_flight.discard)


# --- the outbox --------------------------------------------------------------------------------
@app.task
async def outbox() -> None:
    """Deliver as soon as something is queued, and at least every `delivery_interval`
    (retries fall due with time)."""
    for department_topic in department_topics.values():  # before the first send
        await department_topic.maybe_declare()
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_wake.wait(), timeout=settings.delivery_interval)
        _wake.clear()
        try:
            await deliver()
        except Exception as exc:  # never let the loop die
            log.error("outbox pass failed", error=str(exc))


async def deliver() -> None:
    """Send every due delivery; loop while there are more (a backlog drains at once)."""
    while True:
        try:
            pool = await get_pool(settings)
            async with pool.connection() as conn, conn.transaction():
                claimed = await claim_deliveries(conn, datetime.now(UTC), LEASE_S, 200)
        except Exception as exc:  # the database is away: try again on the next tick
            log.warning("outbox unavailable", error=str(exc))
            return
        if not claimed:
            return
        await asyncio.gather(*(_deliver_one(item) for item in claimed))


async def _deliver_one(item: Outgoing) -> None:
    body = orjson.dumps(item.payload)
    started = time.perf_counter()
    kind = destination_kind(item.delivery.destination)
    name = item.delivery.destination.split(":", 1)[1]
    if kind == "kafka":
        outcome = await _to_kafka(name, item, body)
    else:
        endpoint = CHANNELS.endpoints.get(name)
        if endpoint is None:
            outcome = Outcome.rejected(f"webhook {name} is not configured on this worker")
        else:
            outcome = await webhook.post(endpoint, item.message_id, body, settings.webhook_timeout)
    now = datetime.now(UTC)
    after = record_attempt(
        item.delivery,
        outcome,
        now,
        base_s=settings.delivery_backoff_base,
        cap_s=settings.delivery_backoff_cap,
    )
    attempt = attempt_record(after, outcome, now, int((time.perf_counter() - started) * 1000))
    log.info("delivery attempt", department=item.department, kind=item.kind, **attempt.log_fields())
    DELIVERIES.labels(kind, attempt.outcome).inc()
    try:
        pool = await get_pool(settings)
        async with pool.connection() as conn, conn.transaction():
            await record_delivery(conn, after, attempt)
    except Exception as exc:  # the lease runs out and the delivery is tried again
        log.warning("delivery state not stored", error=str(exc), message_id=item.message_id)
        return
    if after.status == "dead":
        await dead_letters.send(
            key=item.message_id.encode(),
            value=body,
            headers={
                "dlq.stage": STAGE.encode(),
                "dlq.reason": b"delivery_failed",
                "dlq.destination": item.delivery.destination.encode(),
                "dlq.attempts": str(after.attempts).encode(),
                "dlq.message": (after.last_error or "").encode()[:1000],
            },
        )


async def _to_kafka(topic_name: str, item: Outgoing, body: bytes) -> Outcome:
    target = department_topics.get(topic_name)
    if target is None:
        return Outcome.rejected(f"topic {topic_name} is not declared on this worker")
    try:
        future = await target.send(
            key=item.delivery.dispatch_id.encode(),
            value=body,
            headers={"message-id": item.message_id.encode(), "kind": item.kind.encode()},
        )
        await asyncio.wait_for(future, timeout=settings.webhook_timeout)
    except TimeoutError:
        return Outcome.timeout("the broker did not acknowledge in time")
    except Exception as exc:
        return Outcome.connection_error(f"{type(exc).__name__}: {exc}"[:200])
    return Outcome.http(200)


# --- reminders and escalations -----------------------------------------------------------------
@app.timer(interval=settings.escalation_interval)
async def escalate() -> None:
    """Send the reminders and escalations that are due (each once)."""
    try:
        queued = await _escalate(settings)
    except Exception as exc:
        log.warning("escalation pass failed; next pass retries", error=str(exc))
        return
    if queued:
        _wake.set()


async def _escalate(s: Settings) -> int:
    pool = await get_pool(s)
    now = datetime.now(UTC)
    queued = 0
    async with pool.connection() as conn, conn.pipeline(), conn.transaction():
        for task in await due_tasks(conn, now, 500):
            plan = plan_escalations(task, CTX, now, CTX.routing.operations_center)
            queued += len(
                await save_plan(conn, plan, None, CHANNELS.of_department, s.delivery_max_attempts)
            )
    return queued


def describe() -> dict[str, Any]:
    """What this worker dispatches to (for logs and `citybrain doctor`)."""
    return {
        "departments": len(CTX.routing.by_code),
        "kafka_topics": len(department_topics),
        "webhooks": sorted(CHANNELS.endpoints),
        "webhooks_disabled": list(CHANNELS.disabled),
    }
