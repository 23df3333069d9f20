"""Stage `ping`: raw pings -> parse -> one upsert per batch -> pipeline_pings.

A batch's offsets are acknowledged after the transaction; bad records go to
`pipeline.ping.v1.dlq` with their reason (the stage helper, `citybrain.streams.stage`).
"""

from __future__ import annotations

from faust.types import Message

from citybrain.agents.context import StageContext
from citybrain.agents.ping.store import write_pings
from citybrain.core.ping import Ping, parse_ping
from citybrain.streams.dlq import declare_dead_letter_topics
from citybrain.streams.stage import Batch, Stage
from citybrain.streams.topics import TOPICS, topic

STAGE = "ping"


def decode(record: Message) -> Ping:
    return parse_ping(record.value)


def install(ctx: StageContext) -> None:
    app, settings = ctx.app, ctx.settings
    declare_dead_letter_topics(app, TOPICS.ping.name)

    async def record_pings(batch: Batch[Ping]) -> None:
        await write_pings(settings, batch.items)

    Stage(app, STAGE).agent(
        topic(app, TOPICS.ping),
        name="ping-recorder",
        decode=decode,
        process=record_pings,
        max_records=500,
        within=settings.batch_wait,
    )
