"""Timer `maintenance`: plain-PostgreSQL housekeeping from inside the worker.

Every `maintenance_interval` seconds one worker (whichever takes the advisory lock) creates
partitions ahead, drops expired ones and refreshes the dashboard views. In TimescaleDB mode
its own job scheduler does this, and the timer does nothing.
"""

from __future__ import annotations

import asyncio

from citybrain.db.connect import connect
from citybrain.db.maintain import maintain
from citybrain.db.migrate import recorded_mode
from citybrain.logs import get_logger
from citybrain.settings import Settings, get_settings
from citybrain.streams.app import app

log = get_logger(__name__)
_LOCK_ID = 0x4D41494E  # "MAIN"


def run_maintenance(settings: Settings) -> str:
    """One maintenance pass; returns what happened (for the log)."""
    with connect(settings, autocommit=True, connect_timeout=5) as conn:
        mode = recorded_mode(conn)
        if mode != "plain":
            return f"skipped ({mode or 'not migrated'} mode)"
        got = conn.execute("SELECT pg_try_advisory_lock(%s)", (_LOCK_ID,)).fetchone()
        if not got or not got[0]:
            return "skipped (another worker holds the lock)"
        try:
            report = maintain(conn, mode, settings)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
    return (
        f"partitions +{report.partitions_created} -{report.partitions_dropped}, "
        f"refreshed {len(report.refreshed)} aggregates ({report.ranges_recomputed} bucket ranges)"
    )


@app.timer(interval=get_settings().maintenance_interval)
async def maintenance() -> None:
    """Run a pass off the event loop; a failure is logged and retried next time."""
    try:
        outcome = await asyncio.to_thread(run_maintenance, get_settings())
        log.info("maintenance", outcome=outcome)
    except Exception as exc:
        log.warning("maintenance failed", error=f"{type(exc).__name__}: {exc}")
