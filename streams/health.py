"""The worker's probes, served by its Faust web server (`CITYBRAIN_WORKER_WEB_HOST`,
`CITYBRAIN_WORKER_WEB_PORT`), for Kubernetes or any supervisor:

- `/healthz` (liveness): answered on the worker's event loop, so a blocked loop shows as
  no answer; 503 when the stall watchdog (`streams.watchdog`) names a phase waiting
  without progress past `CITYBRAIN_STALL_TIMEOUT` (the watchdog ends the process then).
- `/readyz` (readiness): the database answers `SELECT 1` on a connection of its own (a
  pool busy with a storm does not make the worker unready) and the Kafka broker answers
  a metadata request on the worker's producer; each within `probes.READY_TIMEOUT_S`.

The decisions are `citybrain.probes`' (pure); this module only gathers what they need.
"""

from __future__ import annotations

import math
from typing import Any

from faust.web import Request, Response, View

from citybrain.probes import READY_TIMEOUT_S, liveness, readiness
from citybrain.settings import Settings
from citybrain.streams.app import App
from citybrain.streams.watchdog import Watchdog, overdue


def install_probes(app: App, settings: Settings) -> None:
    """Add `/healthz` and `/readyz` to the app's web server."""

    @app.page("/healthz")
    async def healthz(web: View, request: Request) -> Response:
        watchdog = app.watchdog
        limit = watchdog.limit if watchdog is not None else 0.0
        verdict = liveness(stall_of(watchdog), limit)
        return web.json(verdict.body(), status=verdict.status_code)

    @app.page("/readyz")
    async def readyz(web: View, request: Request) -> Response:
        async def database() -> None:
            await database_answers(settings)

        async def kafka() -> None:
            await broker_answers(app)

        verdict = await readiness({"database": database, "kafka": kafka})
        return web.json(verdict.body(), status=verdict.status_code)


def stall_of(watchdog: Watchdog | None) -> tuple[str, float] | None:
    """The phase the watchdog stopped the worker for, or one now waiting past its limit
    (read on the event loop, where the phases are marked)."""
    if watchdog is None or watchdog.limit <= 0:
        return None
    stall = watchdog.stalled or overdue(
        list(watchdog.waits.values()), watchdog.clock(), watchdog.limit
    )
    return None if stall is None else (stall.phase, stall.waited)


async def database_answers(settings: Settings, timeout: float = READY_TIMEOUT_S) -> None:
    """`SELECT 1` on a new connection as the writer role (raises when it cannot)."""
    import psycopg

    from citybrain.db.connect import connection_kwargs

    kwargs = connection_kwargs(settings) | {"application_name": f"{settings.app_id}-readyz"}
    # libpq counts whole seconds, at least 2; the probe's own timeout bounds it anyway
    connect_timeout = max(2, math.ceil(timeout))
    async with await psycopg.AsyncConnection.connect(
        settings.conninfo(), connect_timeout=connect_timeout, **kwargs
    ) as conn:
        await conn.execute("SELECT 1")


async def broker_answers(app: App) -> None:
    """A metadata request on the worker's producer (its connections and credentials)."""
    producer: Any = app.producer
    client = producer._producer  # aiokafka's producer, once Faust has started it
    if client is None:
        raise RuntimeError("the producer has not started")
    await client.client.fetch_all_metadata()
