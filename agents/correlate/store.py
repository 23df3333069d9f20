"""The correlate stage's store: incidents, reports, history, merge suggestions and the
operators' commands it applied, in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg.rows import dict_row

from citybrain.core.event_rows import event_of_row
from citybrain.correlation.batch import CorrelateOutput
from citybrain.db.commands import UPSERT_COMMAND, answered, command_row
from citybrain.schemas.commands import SplitCommand
from citybrain.schemas.events import CanonicalEvent
from citybrain.schemas.tables import (
    INCIDENT_HISTORY,
    INCIDENT_REPORTS,
    INCIDENTS,
    MERGE_SUGGESTIONS,
)
from citybrain.settings import Settings
from citybrain.streams.db import get_pool, get_writer


async def stored_reports(
    settings: Settings, incident_ids: list[str]
) -> dict[str, list[CanonicalEvent]]:
    """The reports of these incidents as the events they were (for a split)."""
    out: dict[str, list[CanonicalEvent]] = {i: [] for i in incident_ids}
    if not incident_ids:
        return out
    pool = await get_pool(settings)
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT r.incident_id AS owner, e.* FROM incident_reports r JOIN events e"
            " ON e.event_id = r.event_id AND e.observed_at = r.observed_at"
            " WHERE r.incident_id = ANY(%s) ORDER BY r.observed_at",
            (incident_ids,),
        )
        for row in await cur.fetchall():
            out[row["owner"]].append(event_of_row(row))
    return out


async def command_inputs(
    settings: Settings, items: Sequence[Any]
) -> tuple[set[str], dict[str, list[CanonicalEvent]]]:
    """What the commands of a batch need: the ids of those answered already, and the stored
    reports of the incidents split (nothing is read for a batch without commands)."""
    ids = [i.command_id for i in items if hasattr(i, "command_id")]
    splits = [i.incident_id for i in items if isinstance(i, SplitCommand)]
    done = await answered(await get_pool(settings), ids)
    return done, await stored_reports(settings, splits) if splits else {}


async def write_incidents(settings: Settings, out: CorrelateOutput) -> list[dict[str, Any]]:
    """Upsert the batch's rows. An incident's status belongs to the dispatch stage once it
    is dispatched; this stage only sets it on a reopening, and closes an incident merged
    into another. Returns the rows of incidents placed while no longer held (their
    incidents.v1 messages are made from them)."""
    placed: list[dict[str, Any]] = []

    async def before_commit(conn: Any) -> None:
        placed.clear()  # a transaction retried after a transient error starts again
        if out.reopened:
            await conn.execute(
                "UPDATE incidents SET status = 'reopened' WHERE incident_id = ANY(%s)",
                (out.reopened,),
            )
        for source, target, _at in out.merged_away:
            await conn.execute(
                "UPDATE incidents SET status = 'closed', merged_into = %s, closed_at = now(),"
                " updated_at = now(), version = version + 1 WHERE incident_id = %s",
                (target, source),
            )
            await conn.execute(
                "UPDATE incident_reports SET incident_id = %s WHERE incident_id = %s",
                (target, source),
            )
        for event_ids, new_id in out.moved:
            await conn.execute(
                "UPDATE incident_reports SET incident_id = %s WHERE event_id = ANY(%s)",
                (new_id, event_ids),
            )
        for incident_id, candidate_id, status, actor, at in out.decided:
            await conn.execute(
                "UPDATE incident_merge_suggestions SET status = %s, decided_by = %s,"
                " decided_at = %s WHERE incident_id = %s AND candidate_id = %s",
                (status, actor, at, incident_id, candidate_id),
            )
        async with conn.cursor(row_factory=dict_row) as cur:
            for command, district in out.placed_unheld:
                await cur.execute(
                    "UPDATE incidents SET lon = %s, lat = %s, location_status = 'located',"
                    " district = COALESCE(%s, district), updated_at = now(),"
                    " version = version + 1 WHERE incident_id = %s RETURNING *",
                    (command.lon, command.lat, district, command.incident_id),
                )
                row = await cur.fetchone()
                if row is not None:
                    placed.append(row)
        if out.commands:
            async with conn.cursor() as cur:
                await cur.executemany(
                    UPSERT_COMMAND, [command_row(c, status, r) for c, status, r in out.commands]
                )

    writer = await get_writer(settings)
    writer.before_commit = before_commit
    await writer.write_many(
        [
            # in incident id order, as the dispatch stage updates them: no lock-order deadlock
            (INCIDENTS, sorted(out.incidents, key=lambda row: row[0])),
            (INCIDENT_REPORTS, out.reports),
            (INCIDENT_HISTORY, out.history),
            (MERGE_SUGGESTIONS, out.suggestions),
        ]
    )
    return placed
