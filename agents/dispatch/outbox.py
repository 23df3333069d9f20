"""The dispatch stage's delivery loop and escalation timer. Deliveries are claimed from the
outbox table (leased: one worker sends each), sent by their destination kind's notifier
(`notify/`; a lost lease's message is looked for first), every attempt stored, retried with
backoff, dead-lettered after the last; state is in the database, so delivery resumes after
a restart. The timer queues reminders and escalations as deadlines near and pass (once)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime

import orjson

from citybrain.agents.context import StageContext
from citybrain.agents.dispatch.notify import Unconfigured, notifiers, send_once
from citybrain.agents.dispatch.store import (
    Outgoing,
    claim_deliveries,
    escalate_due,
    record_delivery,
)
from citybrain.dispatch.outbox import attempt_record, destination_kind, record_attempt
from citybrain.logs import get_logger
from citybrain.metrics import DELIVERIES
from citybrain.streams.db import get_pool
from citybrain.streams.dlq import delivery_dead_letter_headers
from citybrain.streams.topics import TOPICS, declare_on_start, topic

STAGE = "dispatch"
log = get_logger(__name__)
#: deliveries the dispatch agent sends itself at once; beyond, the outbox loop takes them
DIRECT_MAX = 200


class Outbox:
    """One worker's delivery of the outbox."""

    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.notifiers = notifiers(ctx)
        self.dead_letters = topic(ctx.app, TOPICS.dispatch_dead_letters)
        declare_on_start(ctx.app, self.dead_letters)
        self.in_flight: set[asyncio.Future[None]] = set()
        self.started = False  # notifiers started: before, a send auto-created a Kafka topic

    @property
    def can_deliver_directly(self) -> bool:
        """Whether the agent sends what it queued (else the loop, after notifiers start)."""
        return self.started and len(self.in_flight) < DIRECT_MAX

    def deliver_now(self, queued: list[Outgoing]) -> None:
        """Send what the agent just queued (leased to it) without waiting for it: the
        stored lease, not this task, is what makes a delivery happen once."""
        for item in queued:
            future = asyncio.ensure_future(self.deliver_one(item))
            self.in_flight.add(future)
            future.add_done_callback(self.in_flight.discard)

    async def run(self) -> None:
        """Deliver as soon as something is queued (`ctx.outbox_wake`), and at least every
        `delivery_interval` (retries fall due with time)."""
        for notifier in self.notifiers.values():
            await notifier.start()
        self.started = True
        wake = self.ctx.outbox_wake
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=self.settings.delivery_interval)
                wake.clear()
                try:
                    await self.deliver()
                except Exception as exc:  # never let the loop die
                    log.error("outbox pass failed", error=str(exc))
        finally:
            for notifier in self.notifiers.values():
                await notifier.close()

    async def deliver(self) -> None:
        """Send every due delivery; loop while there are more (a backlog drains at once)."""
        while True:
            try:
                pool, lease = await get_pool(self.settings), self.settings.delivery_lease
                async with pool.connection() as conn, conn.transaction():
                    claimed = await claim_deliveries(conn, datetime.now(UTC), lease, 200)
            except Exception as exc:  # the database is away: try again on the next tick
                log.warning("outbox unavailable", error=str(exc))
                return
            if not claimed:
                return
            await asyncio.gather(*(self.deliver_one(item) for item in claimed))

    async def deliver_one(self, item: Outgoing) -> None:
        s = self.settings
        body = orjson.dumps(item.payload)
        started = time.perf_counter()
        kind = destination_kind(item.delivery.destination)
        notifier = self.notifiers.get(kind) or Unconfigured(kind)
        outcome = await send_once(notifier, item, body)
        now = datetime.now(UTC)
        after = record_attempt(
            item.delivery,
            outcome,
            now,
            base_s=s.delivery_backoff_base,
            cap_s=s.delivery_backoff_cap,
        )
        attempt = attempt_record(after, outcome, now, int((time.perf_counter() - started) * 1000))
        fields = attempt.log_fields()
        log.info("delivery attempt", department=item.department, kind=item.kind, **fields)
        DELIVERIES.labels(kind, attempt.outcome).inc()
        try:
            pool = await get_pool(s)
            async with pool.connection() as conn, conn.transaction():
                await record_delivery(conn, after, attempt)
        except Exception as exc:  # the lease runs out and the delivery is tried again
            log.warning("delivery state not stored", error=str(exc), message_id=item.message_id)
            return
        if after.status == "dead":
            await self.dead_letters.send(
                key=item.message_id.encode(),
                value=body,
                headers=delivery_dead_letter_headers(
                    stage=STAGE,
                    destination=item.delivery.destination,
                    attempts=after.attempts,
                    error=after.last_error or "",
                ),
            )

    async def escalate(self) -> None:
        """Queue the reminders and escalations that are due; deliver them at once."""
        try:
            pool = await get_pool(self.settings)
            queued = await escalate_due(
                pool,
                self.ctx.dispatch,
                self.ctx.channels.of_department,
                self.settings.delivery_max_attempts,
                datetime.now(UTC),
            )
        except Exception as exc:
            log.warning("escalation pass failed; next pass retries", error=str(exc))
            return
        if queued:
            self.ctx.outbox_wake.set()
