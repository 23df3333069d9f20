"""Timer `monitor`: every few seconds, the growth of this worker's record and dead-letter
counters goes to `pipeline_counts` (one upsert that adds), for the pipeline dashboard."""

from __future__ import annotations

from datetime import UTC, datetime

from citybrain.logs import get_logger
from citybrain.monitor import Key, counts, rows
from citybrain.settings import get_settings
from citybrain.streams.app import app
from citybrain.streams.db import get_pool

log = get_logger(__name__)
_flushed: dict[Key, float] = {}


@app.timer(interval=10.0)
async def monitor() -> None:
    global _flushed
    now = counts()
    batch = rows(_flushed, now, datetime.now(UTC))
    if not batch:
        return
    try:
        pool = await get_pool(get_settings())
        async with pool.connection() as conn, conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO pipeline_counts (bucket, stage, outcome, reason, n)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (bucket, stage, outcome, reason)"
                " DO UPDATE SET n = pipeline_counts.n + EXCLUDED.n",
                batch,
            )
    except Exception as exc:  # counted again on the next flush
        log.warning("pipeline counts not stored", error=str(exc))
        return
    _flushed = now
