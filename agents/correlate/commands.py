"""Stage `correlate`, its forwarding agent: operators' commands that change correlation
state (place, merge, dismiss a suggestion, split), from commands.v1 to the single owner on
correlate.v1 (named by the `citybrain.message: command` header), so that the owner applies
them in order with the events. The dispatch stage applies the other commands."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from faust.types import Message

from citybrain.agents.context import StageContext
from citybrain.correlation.batch import CorrelationCommand
from citybrain.logs import get_logger
from citybrain.schemas.commands import OWNED_BY_CORRELATION, Command
from citybrain.schemas.incident_status import MESSAGE_HEADER
from citybrain.streams.publish import COMMAND_KIND, CORRELATE_KEY
from citybrain.streams.stage import Batch, Stage, value_of
from citybrain.streams.topics import TOPICS, topic

log = get_logger(__name__)


def decode(record: Message) -> CorrelationCommand:
    """A command forwarded to correlate.v1 (one of the owner's, or a ValueError)."""
    command = Command.model_validate_json(value_of(record)).root
    if command.command not in OWNED_BY_CORRELATION:
        raise ValueError(f"{command.command} is not a correlation command")
    return command  # type: ignore[return-value]


def locator(ctx: StageContext) -> Callable[[float, float], str | None]:
    """The district of a point an operator placed an incident at."""

    def locate(lon: float, lat: float) -> str | None:
        index = ctx.geotagger.index
        return index.code_of(index.tag([lon], [lat]), "district", 0)

    return locate


def install(ctx: StageContext) -> None:
    app, settings = ctx.app, ctx.settings
    correlate_topic = topic(app, TOPICS.correlate)

    async def forward_commands(batch: Batch[Message]) -> None:
        """Operators' commands that change correlation state, to its single owner."""
        pending = []
        for m in batch.items:
            try:
                command = Command.model_validate_json(value_of(m)).root
            except ValueError:
                continue  # not ours to judge: the dispatch stage dead-letters it
            if command.command in OWNED_BY_CORRELATION:
                pending.append(
                    await correlate_topic.send(
                        key=CORRELATE_KEY, value=m.value, headers=[(MESSAGE_HEADER, COMMAND_KIND)]
                    )
                )
        await asyncio.gather(*pending)

    Stage(app, "correlate-commands").agent(  # counted apart: it only forwards
        topic(app, TOPICS.commands),
        name="correlate-commands",
        process=forward_commands,
        max_records=200,
        within=settings.batch_wait,
    )


def log_answers(answers: list[tuple[Any, str, str]]) -> None:
    """One log line per command the owner answered."""
    for command, status, result in answers:
        log.info(
            "command " + status,
            command=command.command,
            command_id=command.command_id,
            actor=command.actor,
            result=result,
        )
