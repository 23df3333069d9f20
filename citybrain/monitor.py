"""The worker's record and dead-letter counters as rows for `pipeline_counts` (pure).

`counts()` reads the Prometheus counters of this process; `rows()` turns the growth since
the last flush into (minute, stage, outcome, reason, n) rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from citybrain.metrics import DEAD_LETTERS, RECORDS

Key = tuple[str, str, str]  # stage, outcome, reason


def counts() -> dict[Key, float]:
    """Records handled (ok) and dead letters (by reason), per stage, since start."""
    out: dict[Key, float] = {}
    for metric in RECORDS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and sample.labels.get("outcome") == "ok":
                out[(sample.labels["stage"], "ok", "")] = sample.value
    for metric in DEAD_LETTERS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                key = (sample.labels["stage"], "dead_letter", sample.labels["reason"])
                out[key] = sample.value
    return out


def rows(
    before: Mapping[Key, float], now: Mapping[Key, float], at: datetime
) -> list[tuple[datetime, str, str, str, int]]:
    """The growth of each counter since `before`, in the minute of `at`."""
    minute = at.replace(second=0, microsecond=0)
    out = []
    for key, value in now.items():
        grown = round(value - before.get(key, 0.0))
        if grown > 0:
            out.append((minute, *key, grown))
    return out
