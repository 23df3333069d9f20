"""The worker process: what is alive at start-up is frozen, collections are rarer; a stop
does not wait on tasks that will not end."""

from __future__ import annotations

import asyncio
import gc
from types import SimpleNamespace

from citybrain.streams.runtime import LAST_TASKS_GRACE, THRESHOLDS, Worker, tune_gc


def test_start_up_objects_are_frozen_and_collections_rarer() -> None:
    before = gc.get_threshold()
    try:
        old = tune_gc()
        assert old == before
        assert gc.get_threshold() == THRESHOLDS
        assert THRESHOLDS[0] > 50 * 700  # the young generation: far fewer collections
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_at_a_stop_the_tasks_left_may_end_and_the_rest_are_cancelled() -> None:
    """mode's stop waits a fixed 2 s; here a task that ends within the grace ends on its
    own, one that would not is cancelled, and the loop then closes cleanly."""
    loop = asyncio.new_event_loop()
    try:
        ending = loop.create_task(asyncio.sleep(LAST_TASKS_GRACE / 4, result="ended"))
        endless = loop.create_task(asyncio.Event().wait())
        stub = SimpleNamespace(loop=loop)
        Worker._gather_all(stub)  # type: ignore[arg-type]
        loop.run_until_complete(Worker._sentinel_task(stub))  # type: ignore[arg-type]
        assert ending.result() == "ended"
        assert endless.cancelled()
        assert not asyncio.all_tasks(loop)
    finally:
        loop.close()
