"""The rebalance's seek to the committed offsets (`streams.transport.Consumer.perform_seek`):
no stream record is fetched while it runs, and a fetch never asks aiokafka for "every
partition" because the active set was emptied in the meantime. (The race itself, a
worker killed with a backlog and a new one catching up: tests/faults.)"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

from faust.transport.consumer import ThreadDelegateConsumer
from faust.types import TP

from citybrain.streams.transport import Consumer

RAW = [TP("raw.iot.smoke-alarm", p) for p in range(2)]
CHANGELOG = TP("app-alarm-state-smoke-alarm-changelog", 0)


def bare(active: set[TP]) -> Any:
    """A consumer with the state the seek reads and a consumer thread that records what
    each fetch and the seek see."""
    c = Consumer.__new__(Consumer)
    c._active_partitions = set(active)
    c._paused_partitions = set()
    c._buffered_partitions = {RAW[1]}  # paused before the rebalance
    c._read_offset = defaultdict(lambda: None)
    c._committed_offset = defaultdict(lambda: None)
    c._first_read = {RAW[0]: 3}
    c._seeks = 0
    c.app = SimpleNamespace(
        consumer_generation_id=7,
        tables=SimpleNamespace(changelog_topics={CHANGELOG.topic}),
    )
    c.seen: list[tuple[str, set[TP]]] = []

    async def seek_to_committed() -> dict[TP, int]:
        c.seen.append(("seek", set(c._active_partitions)))
        await asyncio.sleep(0)
        return {RAW[0]: 10, RAW[1]: 20}

    c.seek_to_committed = seek_to_committed
    return c


def test_stream_partitions_are_held_back_while_the_seek_runs() -> None:
    c = bare({*RAW, CHANGELOG})
    asyncio.run(c.perform_seek())
    assert c.seen == [("seek", {CHANGELOG})]  # the changelog goes on being read
    assert c._active_partitions == {*RAW, CHANGELOG}  # fetched again afterwards
    assert dict(c._read_offset) == {RAW[0]: 10, RAW[1]: 20}
    assert c._first_read == {} and c._seeks == 1
    assert RAW[1] not in c._buffered_partitions  # no stale pause to hand records over


def test_a_rebalance_during_the_seek_keeps_its_own_partitions() -> None:
    c = bare({*RAW})

    async def scenario() -> None:
        seek = asyncio.ensure_future(c.perform_seek())
        await asyncio.sleep(0)
        c.app.consumer_generation_id = 8  # revoked and assigned again meanwhile
        c._active_partitions.clear()
        await seek

    asyncio.run(scenario())
    assert c._active_partitions == set()


def test_a_fetch_asks_for_the_partitions_active_when_it_was_made() -> None:
    asked: list[set[TP] | None] = []

    async def thread_getmany(active: set[TP] | None, timeout: float) -> dict[TP, list[Any]]:
        await asyncio.sleep(0)  # the consumer's thread runs it later
        asked.append(None if active is None else set(active))
        return {}

    async def scenario() -> None:
        c = Consumer.__new__(Consumer)
        c._thread = SimpleNamespace(getmany=thread_getmany)
        active = {RAW[0]}
        fetch = asyncio.ensure_future(c._getmany(active, 0.1))
        await asyncio.sleep(0)
        active.clear()  # held back, or the last one paused: aiokafka would fetch them all
        await fetch

    asyncio.run(scenario())
    assert asked == [{RAW[0]}]
    assert issubclass(Consumer, ThreadDelegateConsumer)  # the _getmany that calls the thread
