"""The monitor stage's store: counter increments added to `pipeline_counts`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from citybrain.settings import Settings
from citybrain.streams.db import get_pool


async def add_counts(settings: Settings, batch: Sequence[tuple[Any, ...]]) -> None:
    """(bucket, stage, outcome, reason, n) rows, added to what is stored."""
    pool = await get_pool(settings)
    async with pool.connection() as conn, conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO pipeline_counts (bucket, stage, outcome, reason, n)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (bucket, stage, outcome, reason)"
            " DO UPDATE SET n = pipeline_counts.n + EXCLUDED.n",
            batch,
        )
