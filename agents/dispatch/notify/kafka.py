"""Kafka delivery: a task message on its department's topic `dispatch.<dept>.v1`, keyed
by dispatch id, acknowledged by the broker within the delivery timeout."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from citybrain.dispatch.outbox import Outcome
from citybrain.streams.topics import dispatch_topic_spec, topic

if TYPE_CHECKING:
    from citybrain.agents.context import StageContext
    from citybrain.agents.dispatch.store import Outgoing


class KafkaNotifier:
    """Sends to the department topics the worker's channels name."""

    kind = "kafka"

    def __init__(self, ctx: StageContext) -> None:
        self.timeout = ctx.settings.webhook_timeout
        self.topics: dict[str, Any] = {
            name: topic(ctx.app, dispatch_topic_spec(name.split(".")[1]))
            for name in ctx.channels.kafka_topics()
        }

    async def start(self) -> None:
        for department_topic in self.topics.values():  # before the first send
            await department_topic.maybe_declare()

    async def send(self, name: str, item: Outgoing, body: bytes) -> Outcome:
        target = self.topics.get(name)
        if target is None:
            return Outcome.rejected(f"topic {name} is not declared on this worker")
        try:
            future = await target.send(
                key=item.delivery.dispatch_id.encode(),
                value=body,
                headers={"message-id": item.message_id.encode(), "kind": item.kind.encode()},
            )
            await asyncio.wait_for(future, timeout=self.timeout)
        except TimeoutError:
            return Outcome.timeout("the broker did not acknowledge in time")
        except Exception as exc:
            return Outcome.connection_error(f"{type(exc).__name__}: {exc}"[:200])
        return Outcome.http(200)

    async def close(self) -> None:
        return None
