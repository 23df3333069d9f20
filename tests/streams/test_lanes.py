"""The pool's lanes (pure asyncio, no database): bulk holds at most its slots and waits while
a report waits; a report never waits for bulk; housekeeping sees when reports were quiet."""

from __future__ import annotations

import asyncio
import time

import pytest

from citybrain.settings import Settings
from citybrain.streams.db import Lanes, bulk_slots


async def _hold(lanes: Lanes, order: list[str], name: str, release: asyncio.Event) -> None:
    async with lanes.bulk():
        order.append(name)
        await release.wait()


def test_bulk_holds_at_most_its_slots() -> None:
    async def run() -> list[str]:
        lanes = Lanes(bulk_max=2)
        order: list[str] = []
        release = asyncio.Event()
        tasks = [asyncio.create_task(_hold(lanes, order, f"b{i}", release)) for i in range(3)]
        await asyncio.sleep(0.01)
        assert lanes.bulk_in_use == 2 and order == ["b0", "b1"]
        release.set()
        await asyncio.gather(*tasks)
        return order

    assert asyncio.run(run()) == ["b0", "b1", "b2"]


def test_bulk_waits_while_a_report_waits_and_goes_after_it() -> None:
    async def run() -> list[str]:
        lanes = Lanes(bulk_max=2)
        order: list[str] = []
        lanes.report_wait()  # a report queues for a connection
        release = asyncio.Event()
        release.set()
        bulk = asyncio.create_task(_hold(lanes, order, "bulk", release))
        await asyncio.sleep(0.01)
        assert order == []  # held back, though a slot is free
        order.append("report")
        await lanes.report_started(got=True)
        await asyncio.wait_for(bulk, 1)
        lanes.report_done()
        return order

    assert asyncio.run(run()) == ["report", "bulk"]


def test_a_report_that_gave_up_waiting_releases_bulk() -> None:
    async def run() -> None:
        lanes = Lanes(bulk_max=1)
        lanes.report_wait()
        order: list[str] = []
        release = asyncio.Event()
        release.set()
        bulk = asyncio.create_task(_hold(lanes, order, "bulk", release))
        await asyncio.sleep(0.01)
        await lanes.report_started(got=False)  # the pool timed out
        await asyncio.wait_for(bulk, 1)
        assert order == ["bulk"] and lanes.reports_active == 0

    asyncio.run(run())


def test_quiet_means_no_report_for_a_while() -> None:
    lanes = Lanes(bulk_max=1)
    assert lanes.quiet_for(0.05)
    lanes.report_wait()
    assert not lanes.quiet_for(0.0)

    async def got() -> None:
        await lanes.report_started(got=True)

    asyncio.run(got())
    assert not lanes.quiet_for(0.0)  # holds a connection
    lanes.report_done()
    assert not lanes.quiet_for(0.05)  # just now
    time.sleep(0.06)
    assert lanes.quiet_for(0.05)


@pytest.mark.parametrize(
    ("pool_max", "bulk", "slots"),
    # a pool of one: bulk still gets it (and still waits while a report waits)
    [(8, 2, 2), (2, 2, 1), (1, 3, 1), (10, 9, 9)],
)
def test_bulk_leaves_at_least_one_connection_to_reports(
    pool_max: int, bulk: int, slots: int
) -> None:
    s = Settings(_env_file=None, db_pool_max=pool_max, db_bulk_connections=bulk)  # type: ignore[call-arg]
    assert bulk_slots(s) == slots
