"""Timer `maintenance`: plain-PostgreSQL housekeeping from inside the worker.

Every `maintenance_interval` seconds one worker (whichever takes the advisory lock) creates
partitions ahead, drops expired ones and refreshes the dashboard views (`store.py`), a few
buckets a transaction. Before each step it waits until the worker's report path has left
the database alone for `maintenance_quiet` seconds (at most `YIELD_MAX_S` a step, so it
never waits forever): housekeeping yields to reports. In TimescaleDB mode its own job
scheduler does this, and the timer does nothing.
"""

from __future__ import annotations

import asyncio
import time

from citybrain.agents.context import StageContext
from citybrain.agents.maintenance.store import run_maintenance
from citybrain.logs import get_logger
from citybrain.streams.db import Lanes, get_pool

log = get_logger(__name__)
#: longest a maintenance step waits for the report path to be quiet
YIELD_MAX_S = 10.0


def yielding(lanes: Lanes, quiet: float, most: float = YIELD_MAX_S) -> float:
    """Wait (in the maintenance thread) until the report path was quiet for `quiet`
    seconds, or `most` seconds passed; returns the seconds waited."""
    started = time.monotonic()
    while not lanes.quiet_for(quiet) and time.monotonic() - started < most:
        time.sleep(0.01)
    return time.monotonic() - started


def install(ctx: StageContext) -> None:
    settings = ctx.settings

    async def maintenance() -> None:
        """Run a pass off the event loop; a failure is logged and retried next time."""
        try:
            lanes = (await get_pool(settings)).lanes
            waited: list[float] = []

            def pause() -> None:
                waited.append(yielding(lanes, settings.maintenance_quiet))

            outcome = await asyncio.to_thread(run_maintenance, settings, pause)
            log.info("maintenance", outcome=outcome, yielded_s=round(sum(waited), 2))
        except Exception as exc:
            log.warning("maintenance failed", error=f"{type(exc).__name__}: {exc}")

    ctx.app.timer(interval=settings.maintenance_interval)(maintenance)
