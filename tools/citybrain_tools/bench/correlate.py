"""`citybrain bench correlate`: memory per million live correlation keys, and add() speed.

A live correlation key is a report the correlator must remember to stay idempotent: every
report of every incident still inside its window. The bench fills a correlator with
`keys` reports of a realistic mix (about five reports per incident, spread over the city,
hotline calls with addresses, sensor alarms with devices, all inside one window so that
nothing expires) and measures the Python heap it holds with tracemalloc: everything
allocated from before the events were made, the events themselves dropped, so what the
incidents keep of their reports counts too. The add() rate is measured apart, untraced,
on up to 200,000 reports.
"""

from __future__ import annotations

import gc
import random
import time
import tracemalloc
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from citybrain.correlation.core import Correlator
from citybrain.schemas.events import CanonicalEvent, Location, RawRef
from citybrain_tools.sim.scenario import load_vocabulary

_WORDS = load_vocabulary()
PLACE_NAMES = [
    a + b for a, b in zip(_WORDS["syllables"][::2], _WORDS["syllables"][1::2], strict=False)
]
ESTATES = _WORDS["estates"]

REPORTS_PER_INCIDENT = 5
DISTRICTS = [f"3101{n:02d}" for n in (1, 4, 5, 6, 7, 9, 10, 12, 13, 14, 15, 16, 17, 18, 20, 51)]
T0 = datetime(2026, 11, 24, tzinfo=UTC)


@dataclass
class CorrelateBenchResult:
    keys: int
    incidents: int
    cells: int
    heap_mib: float
    mib_per_million_keys: float
    bytes_per_key: float
    adds_per_s: float


def _events(keys: int, seed: int) -> list[CanonicalEvent]:
    rng = random.Random(seed)
    out = []
    for i in range(keys):
        incident = i // REPORTS_PER_INCIDENT
        # incidents ~1.2 km apart on a grid (800 a row, as far north as it takes), reports
        # within ~100 m of their incident
        lon = 120.9 + (incident % 800) * 0.012 + rng.uniform(-0.001, 0.001)
        lat = 30.7 + (incident // 800) * 0.011 + rng.uniform(-0.001, 0.001)
        sensor = i % REPORTS_PER_INCIDENT == 0
        estate = PLACE_NAMES[incident % len(PLACE_NAMES)] + ESTATES[incident % len(ESTATES)]
        district = DISTRICTS[incident % len(DISTRICTS)]
        out.append(
            CanonicalEvent(
                event_id=(
                    f"water-level:WL-{incident:08d}:{i}" if sensor else f"hotline-12345:T{i:012d}"
                ),
                source_kind="iot" if sensor else "hotline",
                feed="water-level" if sensor else "hotline-12345",
                kind="alarm" if sensor else "report",
                category="flooding",
                severity=2,
                observed_at=T0 + timedelta(seconds=rng.uniform(0, 1800)),
                received_at=T0,
                location=Location(
                    status="located",
                    lon=lon,
                    lat=lat,
                    district=district,
                    device_id=f"WL-{incident:08d}" if sensor else None,
                    address=None if sensor else f"{estate}{incident % 40}号楼",
                ),
                raw_ref=RawRef("raw", 0, i),
            )
        )
    return out


def run_correlate_bench(keys: int = 1_000_000, seed: int = 11) -> CorrelateBenchResult:
    gc.collect()
    correlator = Correlator()  # its rules and indexes are there before the first key
    # traced from before the events exist: what the incidents keep of them (times, places,
    # names) is counted, then the events themselves are dropped
    tracemalloc.start()
    events = _events(keys, seed)
    for e in events:
        correlator.add(e)
    del events, e
    gc.collect()
    heap, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    adds_per_s = _add_rate(min(keys, 200_000), seed)
    live = sum(i.report_count for i in correlator.incidents())
    incidents = sum(1 for _ in correlator.incidents())
    return CorrelateBenchResult(
        keys=live,
        incidents=incidents,
        cells=len(correlator.by_cell),
        heap_mib=round(heap / 2**20, 1),
        mib_per_million_keys=round(heap / 2**20 * 1_000_000 / max(1, live), 1),
        bytes_per_key=round(heap / max(1, live), 1),
        adds_per_s=round(adds_per_s),
    )


def _add_rate(keys: int, seed: int) -> float:
    """Reports added per second, untraced (tracemalloc slows every allocation down)."""
    events = _events(keys, seed)
    correlator = Correlator()
    started = time.perf_counter()
    for e in events:
        correlator.add(e)
    return keys / (time.perf_counter() - started)


def as_dict(result: CorrelateBenchResult) -> dict[str, Any]:
    return asdict(result)
