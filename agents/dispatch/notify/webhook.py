"""Webhook delivery: one task message POSTed to one endpoint, signed (Standard Webhooks).

Returns the attempt's `Outcome` (an HTTP status with any Retry-After, a timeout or a
connection error); never raises for a failed call, so the outbox can record every attempt.

At most `webhook_concurrency` calls go to one endpoint at once; the others wait their turn
untimed (the timeout is the receiver's, not the queue's), but never past their lease: a
call that could not start in time is recorded as not sent and retried.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import aiohttp

from citybrain.dispatch.channels import Endpoint
from citybrain.dispatch.outbox import Outcome, retry_after_seconds
from citybrain.dispatch.webhooks import headers

if TYPE_CHECKING:
    from citybrain.agents.context import StageContext
    from citybrain.agents.dispatch.store import Outgoing


class WebhookNotifier:
    """Posts to the endpoints the worker's channels configure (with their secrets)."""

    kind = "webhook"

    def __init__(self, ctx: StageContext) -> None:
        self.endpoints = ctx.channels.endpoints
        self.timeout = ctx.settings.webhook_timeout
        self.concurrency = ctx.settings.webhook_concurrency
        self.gates: dict[str, asyncio.Semaphore] = {}
        #: how long a call may wait for its turn: its lease must outlast the wait and the call
        self.turn_wait = turn_wait(ctx.settings.delivery_lease, self.timeout)
        self.session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        return None

    def _client(self) -> aiohttp.ClientSession:
        if self.session is None or self.session.closed:
            self.session = aiohttp.ClientSession(
                headers={"user-agent": "citybrain-dispatch/1"},
                connector=aiohttp.TCPConnector(limit=0),  # the per-endpoint gates limit
            )
        return self.session

    async def send(self, name: str, item: Outgoing, body: bytes) -> Outcome:
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            return Outcome.rejected(f"webhook {name} is not configured on this worker")
        gate = self.gates.setdefault(name, asyncio.Semaphore(self.concurrency))
        try:
            await asyncio.wait_for(gate.acquire(), self.turn_wait)
        except TimeoutError:
            return Outcome.connection_error(
                f"not sent: {self.concurrency} calls to {name} still open after"
                f" {self.turn_wait:g}s in the queue"
            )
        try:
            return await post(self._client(), endpoint, item.message_id, body, self.timeout)
        finally:
            gate.release()

    async def found(self, name: str, item: Outgoing) -> bool:
        """A receiver cannot be asked: the message goes again with the same `webhook-id`,
        which the Standard Webhooks receiver de-duplicates."""
        return False

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None


def turn_wait(lease_s: float, timeout: float) -> float:
    """Seconds a call may wait for a free slot: what its lease leaves after the call's own
    timeout and a margin of 5 s (at least 1 s)."""
    return max(1.0, lease_s - timeout - 5.0)


async def post(
    client: aiohttp.ClientSession, endpoint: Endpoint, message_id: str, body: bytes, timeout: float
) -> Outcome:
    """POST `body` to the endpoint with webhook-id/-timestamp/-signature headers."""
    signed = headers(endpoint.secret, message_id, body, int(time.time()))
    try:
        async with client.post(
            endpoint.url,
            data=body,
            headers=signed,
            timeout=aiohttp.ClientTimeout(total=timeout),
            allow_redirects=False,
        ) as response:
            text = (await response.text(errors="replace"))[:200]
            retry_after = retry_after_seconds(
                response.headers.get("retry-after"), datetime.now(UTC)
            )
            return Outcome.http(response.status, retry_after, text)
    except TimeoutError:
        return Outcome.timeout(f"no answer within {timeout:g}s")
    except (aiohttp.ClientError, OSError) as exc:
        return Outcome.connection_error(type(exc).__name__ + ": " + str(exc)[:160])
    except asyncio.CancelledError:
        raise
