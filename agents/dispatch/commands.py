"""Stage `status`, its second agent: operators' task commands (commands.v1: a deadline
extension, assign, urge, close, reopen, a callback) applied to the dispatch stage's
tables, each in one transaction with its answer in `operator_commands`. One the state does
not allow is answered `refused` with the reason; one answered already is not applied
again; the correlation owner's commands (place, merge, dismiss, split) are its own. A
changed incident status is told to the correlation owner, as for a department's report."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from faust.types import Message

from citybrain.agents.context import StageContext
from citybrain.agents.dispatch.store import (
    DispatchCommand,
    apply_command,
    refuse_command,
)
from citybrain.db.commands import answered
from citybrain.dispatch.commands import CommandRefused
from citybrain.logs import get_logger
from citybrain.schemas.commands import OWNED_BY_CORRELATION, Command
from citybrain.schemas.incident_status import MESSAGE_HEADER, MESSAGE_KIND, IncidentStatusModel
from citybrain.streams.db import get_pool
from citybrain.streams.publish import CORRELATE_KEY
from citybrain.streams.retry import TRANSIENT
from citybrain.streams.stage import Batch, Stage, value_of
from citybrain.streams.topics import TOPICS, topic

log = get_logger(__name__)


def decode_command(record: Message) -> DispatchCommand | None:
    """A command of commands.v1; None for the correlation owner's (it applies them)."""
    command = Command.model_validate_json(value_of(record)).root
    if command.command in OWNED_BY_CORRELATION:
        return None
    return command  # type: ignore[return-value]


def install(ctx: StageContext) -> None:
    app, settings = ctx.app, ctx.settings
    correlate_topic = topic(app, TOPICS.correlate)

    async def apply_commands(batch: Batch[DispatchCommand | None]) -> None:
        pool = await get_pool(settings)
        done = await answered(pool, [c.command_id for c in batch.items if c is not None])
        for command in batch.items:
            if command is None:
                continue  # the correlation owner's
            if command.command_id in done:
                log.info("command already answered", command_id=command.command_id)
                continue
            done.add(command.command_id)  # answered below, whatever comes of it
            try:
                plan, incident_id, before = await apply_command(
                    pool,
                    command,
                    ctx.dispatch,
                    ctx.channels.of_department,
                    settings.delivery_max_attempts,
                    datetime.now(UTC),
                )
            except TRANSIENT:
                raise  # the database is away: the batch is retried
            except (CommandRefused, LookupError, PermissionError) as exc:
                await refuse_command(pool, command, str(exc))
                log.info("command refused", command=command.command, reason=str(exc))
                continue
            except Exception as exc:  # a bug must not stop the stage: answered, logged
                await refuse_command(pool, command, f"internal error: {exc}")
                log.exception("command failed", command=command.command)
                continue
            log.info(
                "command applied",
                command=command.command,
                command_id=command.command_id,
                actor=command.actor,
            )
            if plan.incident_status and before is not None and plan.incident_status != before:
                assert incident_id is not None
                change = IncidentStatusModel(incident_id=incident_id, status=plan.incident_status)
                await correlate_topic.send(
                    key=CORRELATE_KEY,
                    value=orjson.dumps(change.model_dump(by_alias=True)),
                    headers=[(MESSAGE_HEADER, MESSAGE_KIND)],
                )
        ctx.outbox_wake.set()

    Stage(app, "dispatch-commands").agent(
        topic(app, TOPICS.commands),
        name="dispatch-commands",
        decode=decode_command,
        process=apply_commands,
        max_records=200,
        within=settings.batch_wait,
    )
