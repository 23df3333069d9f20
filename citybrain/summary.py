"""The live summary line of `citybrain run`: records/s, open incidents, tasks dispatched
and delivered, dead letters.

`read_snapshot` gathers the figures (the worker's Prometheus counters and a few counts in
the database); `summary_line` turns two snapshots into one line (pure).
"""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Snapshot:
    at: float  # monotonic seconds
    records: float  # raw records the normalize stage handled (all outcomes)
    dead_letters: float
    open_incidents: int
    tasks: int
    delivered: int
    pending: int


def counters(metrics_text: str) -> tuple[float, float]:
    """(normalize records, dead letters) from the worker's /metrics text."""
    records = dead = 0.0
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == "citybrain_records_total" and sample.labels.get("stage") == (
                "normalize"
            ):
                records += sample.value
            elif sample.name == "citybrain_dead_letters_total":
                dead += sample.value
    return records, dead


def read_snapshot(metrics_url: str, conn: Any, at: float) -> Snapshot:
    try:
        with urllib.request.urlopen(metrics_url, timeout=2) as response:  # noqa: S310
            records, dead = counters(response.read().decode())
    except OSError:
        records = dead = float("nan")
    row = conn.execute(
        "SELECT (SELECT count(*) FROM incidents"
        "        WHERE status IN ('open', 'dispatched', 'acknowledged', 'reopened')),"
        " (SELECT count(*) FROM dispatches),"
        " (SELECT count(*) FROM dispatch_outbox WHERE status = 'sent'),"
        " (SELECT count(*) FROM dispatch_outbox WHERE status IN ('pending', 'failed'))"
    ).fetchone()
    return Snapshot(at, records, dead, int(row[0]), int(row[1]), int(row[2]), int(row[3]))


def summary_line(before: Snapshot | None, now: Snapshot) -> str:
    rate = (
        (now.records - before.records) / (now.at - before.at)
        if before is not None and now.at > before.at
        else float("nan")
    )
    rate_text = "-" if rate != rate else f"{rate:,.0f}"  # NaN: the worker is not up yet
    dead_text = "-" if now.dead_letters != now.dead_letters else f"{now.dead_letters:,.0f}"
    return (
        f"records/s {rate_text:>7} | open incidents {now.open_incidents:>6,} | "
        f"tasks {now.tasks:>6,} | delivered {now.delivered:>7,} (queued {now.pending:,}) | "
        f"dead letters {dead_text}"
    )
