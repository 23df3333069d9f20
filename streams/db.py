"""The worker's async connection pool to PostgreSQL/TimescaleDB, opened once per process.

The pool checks connections before handing them out, so it recovers from a database
restart; callers retry their transaction on `psycopg.OperationalError`. A connection
returned less than `RECENTLY_USED_S` ago is handed out without the check's round trip (a
report's transactions follow each other closely: each ping was a wait for the database's
process on a busy machine); one that broke meanwhile fails its transaction, which is
retried on a fresh connection.

Two lanes share the pool (`Lanes`): the report path (alarms, calls, incidents, dispatches)
takes connections as it needs them; bulk writes (telemetry readings) hold at most
`db_bulk_connections` at once and wait while a report waits, so a telemetry flood never
leaves a smoke alarm queueing for a connection. Housekeeping asks `Lanes.quiet_for` before
each of its steps.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from weakref import WeakKeyDictionary

import orjson
from psycopg.types.json import set_json_dumps
from psycopg_pool import AsyncConnectionPool

from citybrain.db.connect import connection_kwargs
from citybrain.settings import Settings
from citybrain.streams.sinks.timescale import BatchWriter

set_json_dumps(orjson.dumps)

_pool: LanedPool | None = None
_lock = asyncio.Lock()
#: seconds after its return during which a connection is handed out unchecked
RECENTLY_USED_S = 1.0
_returned: WeakKeyDictionary[Any, float] = WeakKeyDictionary()


async def _note_return(conn: Any) -> None:
    _returned[conn] = time.monotonic()


async def _check_unless_recent(conn: Any) -> None:
    at = _returned.get(conn)
    if at is not None and time.monotonic() - at < RECENTLY_USED_S:
        return
    await AsyncConnectionPool.check_connection(conn)


class Lanes:
    """Admission to one pool by lane. A report connection is never refused for bulk: bulk
    holds at most `bulk_max` connections (fewer than the pool's size), and takes one only
    while no report waits. Pure asyncio; the pool itself does the rest."""

    def __init__(self, bulk_max: int) -> None:
        self.bulk_max = bulk_max
        self.bulk_in_use = 0
        self.reports_waiting = 0
        self.reports_active = 0
        self.last_report_at = 0.0  # monotonic: the last report connection given back
        self._changed = asyncio.Condition()

    @asynccontextmanager
    async def bulk(self) -> AsyncIterator[None]:
        """Hold a bulk slot: wait for one free and for no report waiting."""
        async with self._changed:
            await self._changed.wait_for(
                lambda: self.bulk_in_use < self.bulk_max and self.reports_waiting == 0
            )
            self.bulk_in_use += 1
        try:
            yield
        finally:
            async with self._changed:
                self.bulk_in_use -= 1
                self._changed.notify_all()

    def report_wait(self) -> None:
        """A report starts waiting for a connection: bulk holds back meanwhile."""
        self.reports_waiting += 1

    async def report_started(self, got: bool) -> None:
        """The report's wait ended: with a connection (`got`) or without."""
        self.reports_waiting -= 1
        self.reports_active += got
        async with self._changed:
            self._changed.notify_all()

    def report_done(self) -> None:
        """The report gave its connection back."""
        self.reports_active -= 1
        self.last_report_at = time.monotonic()

    def quiet_for(self, seconds: float) -> bool:
        """No report holds or waits for a connection, and none did for `seconds`."""
        return (
            self.reports_active == 0
            and self.reports_waiting == 0
            and time.monotonic() - self.last_report_at >= seconds
        )


class LanedPool:
    """The worker's pool: `connection()` is the report path's lane, `bulk.connection()`
    the bounded bulk lane; anything else is the psycopg pool's."""

    def __init__(self, pool: AsyncConnectionPool, lanes: Lanes) -> None:
        self.pool = pool
        self.lanes = lanes
        self.bulk = _BulkLane(self)

    @asynccontextmanager
    async def connection(self, timeout: float | None = None) -> AsyncIterator[Any]:
        lanes = self.lanes
        lanes.report_wait()
        waiting = True
        try:
            async with self.pool.connection(timeout=timeout) as conn:
                waiting = False
                await lanes.report_started(got=True)
                try:
                    yield conn
                finally:
                    lanes.report_done()
        finally:
            if waiting:
                await lanes.report_started(got=False)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pool, name)


class _BulkLane:
    """The bulk lane of a `LanedPool`, with the pool's `connection()` interface."""

    def __init__(self, laned: LanedPool) -> None:
        self.laned = laned

    @asynccontextmanager
    async def connection(self, timeout: float | None = None) -> AsyncIterator[Any]:
        async with self.laned.lanes.bulk(), self.laned.pool.connection(timeout=timeout) as conn:
            yield conn


def bulk_slots(settings: Settings) -> int:
    """Connections the bulk lane may hold: the setting, leaving at least one to reports."""
    return max(1, min(settings.db_bulk_connections, settings.db_pool_max - 1))


async def open_pool(settings: Settings) -> AsyncConnectionPool:
    """A new pool that checks its connections (so it survives a database restart)."""
    pool = AsyncConnectionPool(
        settings.conninfo(),
        min_size=1,
        max_size=settings.db_pool_max,
        timeout=5.0,  # a missing database shows up as a retry within seconds
        check=_check_unless_recent,
        reset=_note_return,
        kwargs=connection_kwargs(settings),
        open=False,
    )
    await pool.open(wait=False)
    return pool


async def get_pool(settings: Settings) -> LanedPool:
    """The process-wide pool (its report lane; `.bulk` for bulk), opened on first use."""
    global _pool
    async with _lock:
        if _pool is None:
            _pool = LanedPool(await open_pool(settings), Lanes(bulk_slots(settings)))
    return _pool


async def get_writer(settings: Settings, bulk: bool = False) -> BatchWriter:
    """A batch writer on the process-wide pool's report lane (or its bulk lane), with the
    configured write method."""
    pool = await get_pool(settings)
    return BatchWriter(pool.bulk if bulk else pool, method=settings.db_write_method)  # type: ignore[arg-type]


async def close_pool() -> None:
    """Close the pool (worker shutdown)."""
    global _pool
    if _pool is not None:
        await _pool.close()
        _pool = None
