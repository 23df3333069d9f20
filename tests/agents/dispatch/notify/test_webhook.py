"""The webhook notifier against a real local HTTP endpoint: at most `webhook_concurrency`
calls are open to one endpoint at once, the rest wait their turn and all arrive; a call
that cannot start before its lease would run out is not sent and says so."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from aiohttp import web

from citybrain.agents.dispatch.notify.webhook import WebhookNotifier, turn_wait
from citybrain.agents.dispatch.store import Outgoing
from citybrain.dispatch.channels import Endpoint
from citybrain.dispatch.outbox import Delivery
from citybrain.dispatch.webhooks import generate_secret, verify
from citybrain.settings import Settings


class SlowReceiver:
    """Answers 200 after `hold` s; counts the calls open at once and the ids received."""

    def __init__(self, secret: str, hold: float) -> None:
        self.secret, self.hold = secret, hold
        self.open = self.most_open = 0
        self.received: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        verify(self.secret, dict(request.headers), body)
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            await asyncio.sleep(self.hold)
        finally:
            self.open -= 1
        self.received.append(request.headers["webhook-id"])
        return web.Response(text="ok")


def _item(n: int) -> Outgoing:
    delivery = Delivery(
        delivery_id=f"dsp-{n}:created",
        dispatch_id=f"dsp-{n}",
        destination="webhook:hook",
        created_at=datetime.now(UTC),
    )
    return Outgoing(delivery, "fire", "task.created", {"n": n})


async def _send_all(
    concurrency: int, hold: float, count: int, wait: float | None = None
) -> tuple[SlowReceiver, list[Any]]:
    secret = generate_secret()
    receiver = SlowReceiver(secret, hold)
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    endpoint = Endpoint("hook", "fire", f"http://127.0.0.1:{port}/hook", (secret,))
    settings = Settings(webhook_concurrency=concurrency, webhook_timeout=5.0)
    ctx = SimpleNamespace(settings=settings, channels=SimpleNamespace(endpoints={"hook": endpoint}))
    notifier = WebhookNotifier(ctx)  # type: ignore[arg-type]
    if wait is not None:
        notifier.turn_wait = wait
    try:
        outcomes = await asyncio.gather(
            *(notifier.send("hook", _item(n), b'{"n": %d}' % n) for n in range(count))
        )
    finally:
        await notifier.close()
        await runner.cleanup()
    return receiver, outcomes


def test_calls_to_one_endpoint_are_gated_and_all_arrive() -> None:
    receiver, outcomes = asyncio.run(_send_all(concurrency=4, hold=0.1, count=30))
    assert [o.status for o in outcomes] == [200] * 30
    assert receiver.most_open == 4
    assert sorted(receiver.received) == sorted(f"dsp-{n}:created" for n in range(30))


def test_a_call_that_cannot_start_in_time_is_not_sent() -> None:
    receiver, outcomes = asyncio.run(_send_all(concurrency=1, hold=1.0, count=2, wait=0.2))
    sent = [o for o in outcomes if o.status == 200]
    waited = [o for o in outcomes if o.error_kind == "connection"]
    assert (len(sent), len(waited)) == (1, 1)
    assert "not sent" in waited[0].detail
    assert len(receiver.received) == 1


def test_the_turn_leaves_room_for_the_call_within_the_lease() -> None:
    assert turn_wait(60.0, 5.0) == 50.0
    assert turn_wait(60.0, 58.0) == 1.0
