"""`operator_commands`: each operator's command, answered by the stage that applied it
(applied or refused, and what came of it); written in the transaction that applies it."""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

#: a command answered; the API's `accepted` row becomes `applied` or `refused` once, and a
#: command whose API row was lost (the API died after sending it) is stored whole
UPSERT_COMMAND = (
    "INSERT INTO operator_commands (command_id, command, incident_id, dispatch_id, actor,"
    " reason, payload, status, result, requested_at, applied_at)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())"
    " ON CONFLICT (command_id) DO UPDATE SET status = EXCLUDED.status,"
    " result = EXCLUDED.result, applied_at = EXCLUDED.applied_at,"
    " incident_id = COALESCE(operator_commands.incident_id, EXCLUDED.incident_id)"
    " WHERE operator_commands.status = 'accepted'"
)
#: the API's record of a command it accepted (a command sent twice keeps its first row)
INSERT_ACCEPTED = (
    "INSERT INTO operator_commands (command_id, command, incident_id, dispatch_id, actor,"
    " reason, payload, status, requested_at)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, 'accepted', %s)"
    " ON CONFLICT (command_id) DO NOTHING"
)


def command_row(
    command: Any, status: str, result: str, incident_id: str | None = None
) -> tuple[Any, ...]:
    """The values of `UPSERT_COMMAND` for a command answered `status`."""
    return (
        command.command_id,
        command.command,
        incident_id or getattr(command, "incident_id", None),
        getattr(command, "dispatch_id", None),
        command.actor,
        command.reason,
        Jsonb(command.model_dump(by_alias=True, mode="json")),
        status,
        result,
        command.at,
    )


async def answered(pool: Any, command_ids: list[str]) -> set[str]:
    """Which of these commands were applied or refused already (one query for a batch)."""
    if not command_ids:
        return set()
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT command_id FROM operator_commands"
            " WHERE command_id = ANY(%s) AND status <> 'accepted'",
            (command_ids,),
        )
        return {r[0] for r in await cur.fetchall()}
