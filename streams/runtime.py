"""The worker process: its garbage collector set for a stream processor, and what its
SIGUSR2 does.

CPython's cyclic collector runs its youngest generation every 700 allocations; a worker
allocates several objects per record, so at tens of thousands of records per second it
collects hundreds of times a second, each time scanning the records still buffered, and a
profile shows a third of the normalize stage's time in collections (charged to whatever
allocation set them off). After start-up, the modules, the city pack and the configuration
are frozen out of the collector's sight (`gc.freeze`) and collections run 70 times less
often; reference counting still frees nearly everything at once, the collector only finds
cycles.

mode's worker answers SIGUSR2 by entering pdb on the event loop, which a service run by a
supervisor has no terminal for; citybrain's logs every task of every event loop with where
it waits instead (`kill -USR2 <pid>`; the chaos scenarios do it to a worker that did not
finish).

At a stop, mode waits 1 s for the tasks left once the services have stopped, cancels them,
and sleeps 1 s more before it closes the loop: two seconds on every stop, at every restart
after a stall and in every test that stops a worker. Here the tasks left get at most
`LAST_TASKS_GRACE`, and cancelled ones one short pass to unwind.
"""

from __future__ import annotations

import asyncio
import gc
import time

import faust

from citybrain.streams.watchdog import log_every_task

#: allocations between young collections, young collections between middle ones, middle
#: ones between full ones (CPython's defaults: 700, 10, 10)
THRESHOLDS = (50_000, 20, 100)
#: seconds the tasks left at a stop may take to end before they are cancelled (mode: 1)
LAST_TASKS_GRACE = 0.2


def tune_gc() -> tuple[int, int, int]:
    """Freeze what is alive now and collect less often; returns the old thresholds."""
    old = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    return old


class Worker(faust.Worker):
    """faust's worker; SIGUSR2 logs every task with where it waits (see the module doc)."""

    def _on_sigusr2(self) -> None:
        log_every_task()

    def _gather_all(self) -> None:
        """The tasks left once the services stopped: awaited `LAST_TASKS_GRACE` at most,
        then cancelled."""
        deadline = time.monotonic() + LAST_TASKS_GRACE
        while asyncio.all_tasks(self.loop) and time.monotonic() < deadline:
            self.loop.run_until_complete(asyncio.sleep(0.02))
        for task in asyncio.all_tasks(self.loop):
            task.cancel()

    async def _sentinel_task(self) -> None:
        """The last pass before the loop closes: the cancelled tasks unwind (mode: 1 s)."""
        await asyncio.sleep(0.05)
