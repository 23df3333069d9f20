"""The worker's async connection pool to PostgreSQL/TimescaleDB, opened once per process.

The pool checks connections before handing them out, so it recovers from a database
restart; callers retry their transaction on `psycopg.OperationalError`.
"""

from __future__ import annotations

import asyncio

from psycopg_pool import AsyncConnectionPool

from citybrain.settings import Settings

_pool: AsyncConnectionPool | None = None
_lock = asyncio.Lock()


async def get_pool(settings: Settings) -> AsyncConnectionPool:
    """The process-wide pool, opened on first use."""
    global _pool
    async with _lock:
        if _pool is None:
            pool = AsyncConnectionPool(
                settings.conninfo(),
                min_size=1,
                max_size=settings.db_pool_max,
                check=AsyncConnectionPool.check_connection,
                kwargs={"application_name": f"{settings.app_id}-worker"},
                open=False,
            )
            await pool.open(wait=False)
            _pool = pool
    return _pool


async def close_pool() -> None:
    """Close the pool (worker shutdown)."""
    global _pool
    if _pool is not None:
        await _pool.close()
        _pool = None
