"""Retrying a database transaction through an outage: pause, back off, never drop.

While a batch keeps failing with a connection-level error, the agent stays inside this
call, so it stops taking new records and its offsets stay uncommitted: consumption
pauses and resumes where it left off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import psycopg

from citybrain.backoff import backoff_delay
from citybrain.logs import get_logger
from citybrain.metrics import DB_RETRIES

T = TypeVar("T")
log = get_logger(__name__)

#: Errors that mean "the database is not there right now", not "this batch is bad".
TRANSIENT = (psycopg.OperationalError, psycopg.errors.AdminShutdown, TimeoutError)


async def retry_transient(
    operation: Callable[[], Awaitable[T]], *, what: str, cap: float = 15.0
) -> T:
    """Run `operation` until it succeeds, backing off on transient database errors."""
    attempt = 0
    while True:
        try:
            return await operation()
        except TRANSIENT as exc:
            attempt += 1
            delay = backoff_delay(attempt, base=0.2, cap=cap)
            DB_RETRIES.labels(what).inc()
            log.warning(
                "database unavailable, retrying",
                operation=what,
                attempt=attempt,
                delay_s=round(delay, 2),
                error=f"{type(exc).__name__}: {exc}",
            )
            await asyncio.sleep(delay)
