"""Timer `maintenance`: plain-PostgreSQL housekeeping from inside the worker.

Every `maintenance_interval` seconds one worker (whichever takes the advisory lock) creates
partitions ahead, drops expired ones and refreshes the dashboard views (`store.py`). In
TimescaleDB mode its own job scheduler does this, and the timer does nothing.
"""

from __future__ import annotations

import asyncio

from citybrain.agents.context import StageContext
from citybrain.agents.maintenance.store import run_maintenance
from citybrain.logs import get_logger

log = get_logger(__name__)


def install(ctx: StageContext) -> None:
    settings = ctx.settings

    async def maintenance() -> None:
        """Run a pass off the event loop; a failure is logged and retried next time."""
        try:
            outcome = await asyncio.to_thread(run_maintenance, settings)
            log.info("maintenance", outcome=outcome)
        except Exception as exc:
            log.warning("maintenance failed", error=f"{type(exc).__name__}: {exc}")

    ctx.app.timer(interval=settings.maintenance_interval)(maintenance)
