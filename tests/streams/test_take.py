"""take_ready: a batch is handed over as soon as the stream has nothing more queued."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import faust

from citybrain.streams.take import take_ready


async def _run(within: float, busy: float) -> tuple[list[list[int]], float]:
    """Send one event to an idle agent, then five while it is busy with the first batch:
    the batches it got, and how long the first event waited."""
    # a client-side app: nothing here connects to a broker
    app = faust.App("take-ready-test", broker="kafka://127.0.0.1:1")
    app.flow_control.resume()
    channel: Any = app.channel()
    stream = app.stream(channel.clone(is_iterator=True))
    batches: list[list[int]] = []

    async def agent() -> None:
        await stream.maybe_start()
        async for events in take_ready(stream, 100, within=within):
            batches.append([e.value for e in events])
            await asyncio.sleep(busy)
            if sum(map(len, batches)) >= 6:
                break

    task = asyncio.ensure_future(agent())
    await asyncio.sleep(0.05)  # the agent waits for its first batch
    sent = time.monotonic()
    await channel.send(value=0)
    while not batches:
        await asyncio.sleep(0.001)
    waited = time.monotonic() - sent
    for n in range(1, 6):
        await channel.send(value=n)
    await asyncio.wait_for(task, 5)
    await stream.stop()
    return batches, waited


def test_an_idle_agent_gets_an_event_at_once_and_a_busy_one_all_that_came_meanwhile() -> None:
    batches, waited = asyncio.run(_run(within=10, busy=0.05))
    assert batches == [[0], [1, 2, 3, 4, 5]]
    assert waited < 1  # not the 10 s of `within`
