"""What the departments received, counted where duplicates can happen: the task messages
on every `dispatch.<department>.v1` topic for a run's incidents, read back from Kafka.

- `duplicate_tasks`: tasks created more than once for one incident and department, as the
  departments see them (distinct `task.created` message ids beyond one per incident and
  department). The platform promises one task per incident and department whatever the
  restarts: this must be 0, and no database constraint makes it so.
- `redelivered`: copies of a message beyond the first (the same message id twice). A worker
  killed between a send and its record leaves its lease to run out; the next worker looks
  for the message on the topic before it sends again (`agents/dispatch/notify/kafka.py`),
  so this must be 0 too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from citybrain.settings import Settings
from citybrain.streams.clients import kafka_python_options

DEPARTMENT_TOPIC = re.compile(r"^dispatch\.(?!status\.)[a-z0-9-]+\.v1$")


@dataclass(frozen=True)
class Delivered:
    messages: int = 0  # task messages for the run's incidents, every copy
    distinct: int = 0  # distinct message ids among them
    tasks: int = 0  # distinct (incident, department) pairs with a task.created
    duplicate_tasks: int = 0
    redelivered: int = 0


def count(messages: Iterable[Mapping[str, Any]], incidents: Collection[str]) -> Delivered:
    """Count task messages (decoded payloads) of the given incidents (pure)."""
    copies: dict[str, int] = {}
    created: dict[tuple[str, str], set[str]] = {}
    for m in messages:
        if m.get("incident_id") not in incidents:
            continue
        message_id = str(m.get("message_id"))
        copies[message_id] = copies.get(message_id, 0) + 1
        if m.get("kind") == "task.created":
            key = (str(m["incident_id"]), str(m.get("department")))
            created.setdefault(key, set()).add(message_id)
    return Delivered(
        messages=sum(copies.values()),
        distinct=len(copies),
        tasks=len(created),
        duplicate_tasks=sum(len(ids) - 1 for ids in created.values()),
        redelivered=sum(n - 1 for n in copies.values()),
    )


def delivered(
    settings: Settings, incidents: Collection[str], since: datetime | None = None
) -> Delivered:
    """Read every department topic, from the first message written at or after `since` (a
    moment before the run's first incident; None: from the beginning) to its end, and count
    the run's task messages."""
    from kafka import KafkaConsumer

    from citybrain_tools.kafka import partitions, read_to_end

    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_list,
        **kafka_python_options(settings),
        enable_auto_commit=False,
        max_partition_fetch_bytes=8_000_000,
    )
    try:
        topics = sorted(t for t in consumer.topics() if DEPARTMENT_TOPIC.match(t))
        if not topics:
            return Delivered()
        since_ms = None if since is None else int(since.timestamp() * 1000)
        messages = read_to_end(consumer, partitions(consumer, topics), since_ms)
        return count((_payload(m.value) for m in messages), set(incidents))
    finally:
        consumer.close()


def _payload(value: bytes | None) -> Mapping[str, Any]:
    try:
        doc = json.loads(value or b"{}")
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}
