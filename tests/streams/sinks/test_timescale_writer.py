"""The batch writer on the real PostgreSQL: idempotent, atomic, survives a broken connection
and a database restart."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from citybrain.schemas.tables import EVENTS, READINGS, TableSpec
from citybrain.settings import Settings
from citybrain.stack import PostgresService
from citybrain.streams.retry import retry_transient
from citybrain.streams.sinks.timescale import BatchWriter, Method

pytestmark = pytest.mark.integration
METHODS: list[Method] = ["copy", "insert"]


def event_rows(run: str, n: int) -> list[tuple[Any, ...]]:
    now = datetime.now(UTC)
    return [
        (
            f"{run}:{i}",
            now - timedelta(seconds=i),
            now,
            "iot",
            "bench",
            "smoke",
            2,
            121.47 + i * 1e-5,
            31.23,
            "WGS-84",
            "located",
            "310101",
            None,
            None,
            "g1",
            "fire",
            f"dev-{i % 50}",
            None,
            None,
            {"reading": i, "phone_free": True},
            {"offset": i},
        )
        for i in range(n)
    ]


def count(settings: Settings, table: str, prefix_col: str, run: str) -> tuple[int, int]:
    with psycopg.connect(settings.conninfo()) as conn:
        row = conn.execute(
            f"SELECT count(*), count(DISTINCT {prefix_col}) FROM {table} "
            f"WHERE {prefix_col} LIKE %s",
            (f"{run}%",),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def _with_pool(settings: Settings, body: Any) -> Any:
    async with AsyncConnectionPool(
        settings.conninfo(),
        min_size=1,
        max_size=2,
        check=AsyncConnectionPool.check_connection,
        open=False,
    ) as pool:
        return await body(pool)


@pytest.mark.parametrize("size", [5, 1000])  # copy: small batches take the one-trip upsert
@pytest.mark.parametrize("method", METHODS)
def test_writing_the_same_batch_twice_leaves_one_copy(
    stack: Settings, method: Method, size: int
) -> None:
    run = f"w-{uuid.uuid4().hex[:8]}"
    rows = event_rows(run, size)

    async def body(pool: AsyncConnectionPool) -> tuple[list[int], int]:
        writer = BatchWriter(pool, method=method)
        first = await writer.write(EVENTS, rows)
        second = await writer.write(EVENTS, rows)
        return [first.written, second.written], writer.fallbacks

    written, fallbacks = asyncio.run(_with_pool(stack, body))
    assert written == [size, 0]
    # the large COPY met its own keys the second time; a small batch never tries COPY
    assert fallbacks == (1 if method == "copy" and size > 32 else 0)
    assert count(stack, "events", "event_id", run) == (size, size)


@pytest.mark.parametrize("method", METHODS)
def test_duplicate_keys_in_one_batch_keep_the_last(stack: Settings, method: Method) -> None:
    spec = TableSpec(READINGS.table, READINGS.columns, READINGS.key, update=("value",))
    device = f"r-{uuid.uuid4().hex[:8]}"
    ts = datetime.now(UTC).replace(microsecond=0)
    rows = [(device, "level_m", ts, 0.5, "m", "water"), (device, "level_m", ts, 0.9, "m", "water")]

    async def body(pool: AsyncConnectionPool) -> None:
        await BatchWriter(pool, method=method).write(spec, rows)

    asyncio.run(_with_pool(stack, body))
    with psycopg.connect(stack.conninfo()) as conn:
        values = conn.execute(
            "SELECT value FROM readings WHERE device_id = %s", (device,)
        ).fetchall()
    assert values == [(0.9,)]


def test_a_connection_broken_mid_batch_lands_the_batch_exactly_once(stack: Settings) -> None:
    run = f"b-{uuid.uuid4().hex[:8]}"
    rows = event_rows(run, 2000)
    admin = PostgresService(stack).superuser_conninfo()
    attempts: list[int] = []

    async def kill_own_backend_once(conn: psycopg.AsyncConnection[Any]) -> None:
        attempts.append(conn.info.backend_pid)
        if len(attempts) == 1:  # the COPY and upsert ran; the commit has not happened yet
            with psycopg.connect(admin, autocommit=True) as killer:
                killer.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
            await asyncio.sleep(0.2)

    async def body(pool: AsyncConnectionPool) -> None:
        writer = BatchWriter(pool, method="copy", before_commit=kill_own_backend_once)
        await retry_transient(lambda: writer.write(EVENTS, rows), what="test")

    asyncio.run(_with_pool(stack, body))
    assert len(attempts) == 2, "the first attempt failed and was retried"
    assert attempts[0] != attempts[1], "the retry used a fresh connection"
    assert count(stack, "events", "event_id", run) == (2000, 2000)


def test_the_pool_recovers_from_a_database_restart(stack: Settings) -> None:
    run = f"r-{uuid.uuid4().hex[:8]}"
    before, after = event_rows(run + "a", 100), event_rows(run + "b", 100)
    service = PostgresService(stack)

    async def body(pool: AsyncConnectionPool) -> None:
        writer = BatchWriter(pool)
        await writer.write(EVENTS, before)
        await asyncio.to_thread(service.down)
        await asyncio.to_thread(service.up)
        await retry_transient(lambda: writer.write(EVENTS, after), what="test")

    asyncio.run(_with_pool(stack, body))
    assert count(stack, "events", "event_id", run) == (200, 200)


def test_a_batch_overlapping_stored_rows_takes_the_upsert_path(stack: Settings) -> None:
    run = f"o-{uuid.uuid4().hex[:8]}"
    rows = event_rows(run, 400)

    async def body(pool: AsyncConnectionPool) -> tuple[int, int]:
        writer = BatchWriter(pool)
        await writer.write(EVENTS, rows[:200])
        result = await writer.write(EVENTS, rows[100:])  # 100 old keys, 200 new ones
        return result.written, writer.fallbacks

    written, fallbacks = asyncio.run(_with_pool(stack, body))
    assert (written, fallbacks) == (200, 1)
    assert count(stack, "events", "event_id", run) == (400, 400)
