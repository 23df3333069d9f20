"""Stage `ping`: the wiring probe. Raw pings -> parse -> one upsert per batch -> pipeline_pings.

Offsets of a batch are acknowledged by `take_ready` only after the loop body (and so the
database transaction) finished; bad records go to `pipeline.ping.v1.dlq`.
"""

from __future__ import annotations

import time
from functools import partial

import faust

from citybrain.core.ping import InvalidRecord, Ping, parse_ping
from citybrain.logs import get_logger
from citybrain.metrics import BATCH_SECONDS, RECORDS
from citybrain.settings import get_settings
from citybrain.streams.app import app
from citybrain.streams.dlq import declare_dead_letter_topics, send_dead_letter
from citybrain.streams.retry import retry_transient
from citybrain.streams.sinks.pings import write_pings
from citybrain.streams.take import take_ready
from citybrain.streams.topics import TOPICS, topic

STAGE = "ping"
log = get_logger(__name__)
ping_topic = topic(app, TOPICS.ping)
declare_dead_letter_topics(app, TOPICS.ping.name)


@app.agent(ping_topic, name="ping-recorder")
async def record_pings(stream: faust.StreamT[bytes]) -> None:
    """Store each batch of pings in one transaction."""
    settings = get_settings()
    # take_ready acks a batch's offsets only after this loop body has finished
    async for events in take_ready(stream, 500, within=settings.batch_wait):
        started = time.perf_counter()
        good: list[Ping] = []
        for event in events:
            try:
                good.append(parse_ping(event.value))
            except InvalidRecord as exc:
                await send_dead_letter(app, event, stage=STAGE, error=exc, reason=exc.reason)
            except Exception as exc:  # a poison pill must not stop the worker
                log.exception("unexpected error parsing ping")
                await send_dead_letter(app, event, stage=STAGE, error=exc, reason="internal_error")
        if good:
            write = partial(write_pings, settings, tuple(good))
            await retry_transient(write, what="write_pings")
            RECORDS.labels(STAGE, "ok").inc(len(good))
        BATCH_SECONDS.labels(STAGE).observe(time.perf_counter() - started)
