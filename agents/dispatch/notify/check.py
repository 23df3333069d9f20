"""`citybrain departments test DEPT`: one test message through every channel of a
department, with the worker's own notifiers (a Kafka topic by a plain producer), each
result returned. The message is a task message marked as a test (its message id ends in
`:test`, its title says 测试 / TEST), for no real task."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from citybrain.dispatch.outbox import Delivery, Outcome, destination_kind
from citybrain.dispatch.plan import TASK_SCHEMA
from citybrain.settings import Settings


def probe_payload(department: str, now: datetime) -> dict[str, Any]:
    """A task message that names itself a test."""
    dispatch_id = "dsp-" + uuid.uuid4().hex[:16]
    return {
        "schema": TASK_SCHEMA,
        "kind": "task.created",
        "message_id": f"{dispatch_id}:test",
        "dispatch_id": dispatch_id,
        "incident_id": "inc-test",
        "department": department,
        "role": "lead",
        "status": "dispatched",
        "category": "device_fault",
        "priority": 4,
        "ack_deadline": (now + timedelta(hours=1)).isoformat(),
        "resolve_deadline": (now + timedelta(hours=24)).isoformat(),
        "sla_clock": "calendar",
        "report_count": 1,
        "route": "test",
        "reopened": 0,
        "details": {"location_status": "needs_location", "address": "测试消息，无需处理"},
    }


async def send_test_messages(settings: Settings, department: str) -> list[tuple[str, Outcome]]:
    """Send the test message to each destination of `department`; KeyError if unknown."""
    import orjson

    from citybrain.agents.context import StageContext
    from citybrain.agents.dispatch.notify.email import EmailNotifier
    from citybrain.agents.dispatch.notify.robot import RobotNotifier
    from citybrain.agents.dispatch.notify.webhook import WebhookNotifier
    from citybrain.agents.dispatch.store import Outgoing

    ctx = StageContext(None, settings)  # type: ignore[arg-type]  # no Faust app: no Kafka here
    if department not in ctx.dispatch.routing.by_code:
        known = ", ".join(sorted(ctx.dispatch.routing.by_code))
        raise KeyError(f"unknown department {department!r}; known: {known}")
    now = datetime.now(UTC)
    payload = probe_payload(department, now)
    body = orjson.dumps(payload)
    results: list[tuple[str, Outcome]] = []
    for destination in ctx.channels.of_department(department):
        kind = destination_kind(destination)
        name = destination.split(":", 1)[1]
        item = Outgoing(
            Delivery(
                delivery_id=payload["message_id"],
                dispatch_id=payload["dispatch_id"],
                destination=destination,
                created_at=now,
            ),
            department,
            "task.created",
            payload,
        )
        if kind == "kafka":
            outcome = _send_kafka(settings, name, item, body)
        else:
            notifier: Any
            if kind == "webhook":
                notifier = WebhookNotifier(ctx)
            elif kind == "email":
                notifier = EmailNotifier(ctx)
            else:
                notifier = RobotNotifier(ctx, kind)
            try:
                outcome = await notifier.send(name, item, body)
            finally:
                await notifier.close()
        results.append((destination, outcome))
    return results


def _send_kafka(settings: Settings, topic: str, item: Any, body: bytes) -> Outcome:
    from kafka import KafkaProducer

    from citybrain.streams.clients import kafka_python_options

    producer = KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_list,
        acks="all",
        **kafka_python_options(settings),
    )
    try:
        producer.send(
            topic,
            key=item.delivery.dispatch_id.encode(),
            value=body,
            headers=[("message-id", item.message_id.encode()), ("kind", b"task.created")],
        ).get(timeout=settings.webhook_timeout * 2)
    except Exception as exc:
        return Outcome.connection_error(f"{type(exc).__name__}: {exc}"[:200])
    finally:
        producer.close()
    return Outcome.http(200, detail=f"on {topic}")
