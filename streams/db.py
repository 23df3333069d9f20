"""The worker's async connection pool to PostgreSQL/TimescaleDB, opened once per process.

The pool checks connections before handing them out, so it recovers from a database
restart; callers retry their transaction on `psycopg.OperationalError`.
"""

from __future__ import annotations

import asyncio

import orjson
from psycopg.types.json import set_json_dumps
from psycopg_pool import AsyncConnectionPool

from citybrain.db.connect import connection_kwargs
from citybrain.settings import Settings
from streams.sinks.timescale import BatchWriter

set_json_dumps(orjson.dumps)

_pool: AsyncConnectionPool | None = None
_lock = asyncio.Lock()


async def open_pool(settings: Settings) -> AsyncConnectionPool:
    """A new pool that checks its connections (so it survives a database restart)."""
    pool = AsyncConnectionPool(
        settings.conninfo(),
        min_size=1,
        max_size=settings.db_pool_max,
        timeout=5.0,  # a missing database shows up as a retry within seconds
        check=AsyncConnectionPool.check_connection,
        kwargs=connection_kwargs(settings),
        open=False,
    )
    await pool.open(wait=False)
    return pool


async def get_pool(settings: Settings) -> AsyncConnectionPool:
    """The process-wide pool, opened on first use."""
    global _pool
    async with _lock:
        if _pool is None:
            _pool = await open_pool(settings)
    return _pool


async def get_writer(settings: Settings) -> BatchWriter:
    """A batch writer on the process-wide pool, with the configured write method."""
    return BatchWriter(await get_pool(settings), method=settings.db_write_method)


async def close_pool() -> None:
    """Close the pool (worker shutdown)."""
    global _pool
    if _pool is not None:
        await _pool.close()
        _pool = None
