"""Sending one task message to one webhook endpoint, signed (Standard Webhooks).

Returns the attempt's `Outcome` (an HTTP status with any Retry-After, a timeout or a
connection error); never raises for a failed call, so the outbox can record every attempt.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import aiohttp

from citybrain.dispatch.channels import Endpoint
from citybrain.dispatch.outbox import Outcome, retry_after_seconds
from citybrain.dispatch.webhooks import headers

_session: aiohttp.ClientSession | None = None


def _client() -> aiohttp.ClientSession:
    global _session
    if _session is None or _session.closed:
        _session = aiohttp.ClientSession(
            headers={"user-agent": "citybrain-dispatch/1"},
            connector=aiohttp.TCPConnector(limit=32),
        )
    return _session


async def post(endpoint: Endpoint, message_id: str, body: bytes, timeout: float) -> Outcome:
    """POST `body` to the endpoint with webhook-id/-timestamp/-signature headers."""
    signed = headers(endpoint.secret, message_id, body, int(time.time()))
    try:
        async with _client().post(
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


async def close() -> None:
    global _session
    if _session is not None:
        await _session.close()
        _session = None
