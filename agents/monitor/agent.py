"""Timer `monitor`: every few seconds, the growth of this worker's record and dead-letter
counters goes to `pipeline_counts` (one upsert that adds), for the pipeline dashboard."""

from __future__ import annotations

from datetime import UTC, datetime

from citybrain.agents.context import StageContext
from citybrain.agents.monitor.store import add_counts
from citybrain.logs import get_logger
from citybrain.monitor import Key, counts, rows

log = get_logger(__name__)


def install(ctx: StageContext) -> None:
    flushed: dict[Key, float] = {}

    async def monitor() -> None:
        nonlocal flushed
        now = counts()
        batch = rows(flushed, now, datetime.now(UTC))
        if not batch:
            return
        try:
            await add_counts(ctx.settings, batch)
        except Exception as exc:  # counted again on the next flush
            log.warning("pipeline counts not stored", error=str(exc))
            return
        flushed = now

    ctx.app.timer(interval=10.0)(monitor)
