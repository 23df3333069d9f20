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
"""

from __future__ import annotations

import gc

import faust

from citybrain.streams.watchdog import log_every_task

#: allocations between young collections, young collections between middle ones, middle
#: ones between full ones (CPython's defaults: 700, 10, 10)
THRESHOLDS = (50_000, 20, 100)


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
