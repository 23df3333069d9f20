"""When the outbox looks for a message before sending it again (pure): after a lost lease,
and after an attempt whose answer never came (a timeout, a broken connection: the broker
may have written it); never after an answer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from citybrain.agents.dispatch.notify import send_once
from citybrain.agents.dispatch.store import Outgoing
from citybrain.dispatch.outbox import Delivery, Outcome


class Recorder:
    """A notifier that says whether the message is there and counts sends."""

    kind = "kafka"

    def __init__(self, there: bool | None) -> None:
        self.there, self.sent, self.asked = there, 0, 0

    async def start(self) -> None:
        return None

    async def send(self, name: str, item: Outgoing, body: bytes) -> Outcome:
        self.sent += 1
        return Outcome.http(200)

    async def found(self, name: str, item: Outgoing) -> bool | None:
        self.asked += 1
        return self.there

    async def close(self) -> None:
        return None


def _item(
    status: str, attempts: int, last_error: str | None, lease_lost: bool, max_attempts: int = 14
) -> Outgoing:
    delivery = Delivery(
        max_attempts=max_attempts,
        delivery_id="dsp-1:created",
        dispatch_id="dsp-1",
        destination="kafka:dispatch.fire.v1",
        status=status,  # type: ignore[arg-type]
        attempts=attempts,
        last_error=last_error,
        created_at=datetime.now(UTC),
    )
    return Outgoing(delivery, "fire", "task.created", {}, lease_lost=lease_lost)


@pytest.mark.parametrize(
    ("status", "attempts", "last_error", "lease_lost", "looked"),
    [
        ("pending", 0, None, False, False),  # a first send
        ("pending", 0, None, True, True),  # its worker died after sending
        ("failed", 1, "timeout: the broker did not acknowledge in time", False, True),
        ("failed", 2, "connection: KafkaConnectionError", False, True),
        ("failed", 1, "HTTP 503: busy", False, False),  # an answer: it was not taken
    ],
)
def test_when_the_message_is_looked_for(
    status: str, attempts: int, last_error: str | None, lease_lost: bool, looked: bool
) -> None:
    for there in (True, False):
        notifier = Recorder(there)
        item = _item(status, attempts, last_error, lease_lost)
        outcome = asyncio.run(send_once(notifier, item, b"{}"))
        assert outcome.status == 200
        assert notifier.asked == int(looked)
        assert notifier.sent == (0 if looked and there else 1)


@pytest.mark.parametrize(
    ("attempts", "max_attempts", "sent"),
    [
        (1, 14, 0),  # cannot tell yet: asked again on the next attempt, nothing sent
        (12, 14, 0),
        (13, 14, 1),  # the last attempt sends regardless: at least once, never lost
        (0, 1, 1),
    ],
)
def test_a_channel_that_cannot_tell_yet_is_asked_again_not_sent_to(
    attempts: int, max_attempts: int, sent: int
) -> None:
    notifier = Recorder(None)
    item = _item("failed", attempts, "timeout: still buffered", False, max_attempts)
    outcome = asyncio.run(send_once(notifier, item, b"{}"))
    assert notifier.asked == 1 and notifier.sent == sent
    if sent:
        assert outcome.status == 200
    else:
        # an unanswered attempt again: the next claim looks for it again
        assert outcome.error_kind == "timeout"
