"""The worker process's garbage collector, set for a stream processor.

CPython's cyclic collector runs its youngest generation every 700 allocations; a worker
allocates several objects per record, so at tens of thousands of records per second it
collects hundreds of times a second, each time scanning the records still buffered, and a
profile shows a third of the normalize stage's time in collections (charged to whatever
allocation set them off). After start-up, the modules, the city pack and the configuration
are frozen out of the collector's sight (`gc.freeze`) and collections run 70 times less
often; reference counting still frees nearly everything at once, the collector only finds
cycles.
"""

from __future__ import annotations

import gc

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
