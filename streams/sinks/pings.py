"""Writes probe pings: one idempotent upsert per batch, keyed by ping_id."""

from __future__ import annotations

from collections.abc import Sequence

from citybrain.core.ping import Ping
from citybrain.settings import Settings
from streams.db import get_pool


async def write_pings(settings: Settings, pings: Sequence[Ping]) -> None:
    """Insert the batch in one transaction; a ping seen before is left as it is."""
    pool = await get_pool(settings)
    async with pool.connection() as conn, conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO pipeline_pings (ping_id, sent_at, note) VALUES (%s, %s, %s) "
            "ON CONFLICT (ping_id) DO NOTHING",
            [(p.ping_id, p.sent_at, p.note) for p in pings],
        )
