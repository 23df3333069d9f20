"""The Kafka notifier never sends a message again while its earlier send is still in the
producer's buffer (pure: a topic whose acknowledgement the test controls). A broker-loss
run put a second copy on a department topic this way: the first send timed out waiting for
a new leader, the second found nothing on the topic yet, and the producer then wrote both."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from citybrain.agents.dispatch.notify import kafka as kafka_notify
from citybrain.agents.dispatch.notify import send_once
from citybrain.agents.dispatch.notify.kafka import KafkaNotifier
from citybrain.agents.dispatch.store import Outgoing
from citybrain.dispatch.outbox import Delivery, record_attempt

TOPIC = "dispatch.fire.v1"


class HeldTopic:
    """A department topic whose broker answers only when the test says so."""

    def __init__(self) -> None:
        self.futures: list[asyncio.Future[Any]] = []

    async def send(self, **_: Any) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return future


def _notifier(topic: HeldTopic) -> KafkaNotifier:
    notifier = KafkaNotifier.__new__(KafkaNotifier)
    notifier.timeout = 0.05
    notifier.bootstrap = ["127.0.0.1:1"]
    notifier.client_options = {}
    notifier.unanswered = {}
    notifier.topics = {TOPIC: topic}
    return notifier


def _item(delivery: Delivery) -> Outgoing:
    return Outgoing(delivery, "fire", "task.created", {})


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The topic lookups made; the topic holds nothing yet (the producer has not written)."""
    asked: list[str] = []

    async def nothing_there(_b: Any, _n: str, message_id: str, *_: Any) -> bool:
        asked.append(message_id)
        return False

    monkeypatch.setattr(kafka_notify, "message_on_topic", nothing_there)
    return asked


@pytest.mark.parametrize("answer", ["acknowledged", "failed"])
def test_an_unanswered_send_is_waited_for_not_repeated(answer: str, lookups: list[str]) -> None:
    async def scenario() -> None:
        topic = HeldTopic()
        notifier = _notifier(topic)
        delivery = Delivery(
            delivery_id="dsp-1:created",
            dispatch_id="dsp-1",
            destination=f"kafka:{TOPIC}",
            created_at=datetime.now(UTC),
        )
        first = await send_once(notifier, _item(delivery), b"{}")
        assert first.error_kind == "timeout"
        delivery = record_attempt(delivery, first, datetime.now(UTC))
        # while the producer holds it: no lookup, no second send, unanswered again
        for _ in range(3):
            again = await send_once(notifier, _item(delivery), b"{}")
            assert again.error_kind == "timeout"
            delivery = record_attempt(delivery, again, datetime.now(UTC))
        assert len(topic.futures) == 1 and lookups == []
        if answer == "acknowledged":
            topic.futures[0].set_result("metadata")
            last = await send_once(notifier, _item(delivery), b"{}")
            assert last.status == 200 and "already" in last.detail
            assert len(topic.futures) == 1 and lookups == []  # never sent twice
            assert notifier.unanswered == {}
        else:  # the producer gave it up: looked for on the topic, then sent again
            topic.futures[0].set_exception(RuntimeError("KafkaTimeoutError"))
            last = await send_once(notifier, _item(delivery), b"{}")
            assert lookups == ["dsp-1:created"] and len(topic.futures) == 2
            assert last.error_kind == "timeout"  # the new send is held in its turn
            assert list(notifier.unanswered) == ["dsp-1:created"]

    asyncio.run(scenario())
