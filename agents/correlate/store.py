"""The correlate stage's store: incidents, reports and history in one transaction."""

from __future__ import annotations

from typing import Any

from citybrain.correlation.batch import CorrelateOutput
from citybrain.schemas.tables import (
    INCIDENT_HISTORY,
    INCIDENT_REPORTS,
    INCIDENTS,
    MERGE_SUGGESTIONS,
)
from citybrain.settings import Settings
from citybrain.streams.db import get_writer


async def write_incidents(settings: Settings, out: CorrelateOutput) -> None:
    """Upsert the batch's rows. An incident's status belongs to the dispatch stage once it
    is dispatched; this stage only sets it on a reopening."""

    async def reopen(conn: Any) -> None:
        if out.reopened:
            await conn.execute(
                "UPDATE incidents SET status = 'reopened' WHERE incident_id = ANY(%s)",
                (out.reopened,),
            )

    writer = await get_writer(settings)
    writer.before_commit = reopen
    await writer.write_many(
        [
            (INCIDENTS, out.incidents),
            (INCIDENT_REPORTS, out.reports),
            (INCIDENT_HISTORY, out.history),
            (MERGE_SUGGESTIONS, out.suggestions),
        ]
    )
