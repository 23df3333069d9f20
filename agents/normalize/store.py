"""The normalize stage's store: readings and callers' contacts (one transaction per
batch), and the feeds' device registries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from citybrain.feeds.pipeline import BatchOutput
from citybrain.schemas.tables import PERSONAL_CONTACTS, READINGS
from citybrain.settings import Settings
from citybrain.streams.db import get_pool, get_writer


async def write_readings(settings: Settings, out: BatchOutput, bulk: bool) -> None:
    """A batch's readings and contacts, upserted in one transaction; a telemetry batch
    (`bulk`) on the pool's bulk lane, behind the report path."""
    writer = await get_writer(settings, bulk=bulk)
    await writer.write_many([(READINGS, out.readings), (PERSONAL_CONTACTS, out.contacts)])


async def register_devices(settings: Settings, rows: Sequence[tuple[Any, ...]]) -> None:
    """(device_id, feed, asset_type, lon, lat, installed_on) rows, upserted."""
    pool = await get_pool(settings)
    async with pool.connection() as conn, conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO devices (device_id, feed, asset_type, lon, lat, installed_on)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (device_id) DO UPDATE SET"
            " feed = EXCLUDED.feed, asset_type = EXCLUDED.asset_type, lon = EXCLUDED.lon,"
            " lat = EXCLUDED.lat, installed_on = EXCLUDED.installed_on, updated_at = now()",
            rows,
        )
