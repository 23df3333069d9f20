"""The worker's async connection pool to PostgreSQL/TimescaleDB, opened once per process.

The pool checks connections before handing them out, so it recovers from a database
restart; callers retry their transaction on `psycopg.OperationalError`. A connection
returned less than `RECENTLY_USED_S` ago is handed out without the check's round trip (a
report's transactions follow each other closely: each ping was a wait for the database's
process on a busy machine); one that broke meanwhile fails its transaction, which is
retried on a fresh connection.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from weakref import WeakKeyDictionary

import orjson
from psycopg.types.json import set_json_dumps
from psycopg_pool import AsyncConnectionPool

from citybrain.db.connect import connection_kwargs
from citybrain.settings import Settings
from citybrain.streams.sinks.timescale import BatchWriter

set_json_dumps(orjson.dumps)

_pool: AsyncConnectionPool | None = None
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
