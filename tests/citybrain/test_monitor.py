"""Counters to pipeline_counts rows."""

from __future__ import annotations

from datetime import UTC, datetime

from citybrain.metrics import DEAD_LETTERS, RECORDS
from citybrain.monitor import counts, rows


def test_rows_carry_the_growth_since_the_last_flush_in_its_minute() -> None:
    at = datetime(2026, 11, 25, 8, 30, 42, 5, tzinfo=UTC)
    before = {("normalize", "ok", ""): 10.0, ("normalize", "dead_letter", "bad_json"): 2.0}
    now = {
        ("normalize", "ok", ""): 25.0,
        ("normalize", "dead_letter", "bad_json"): 2.0,
        ("correlate", "ok", ""): 3.0,
    }
    minute = datetime(2026, 11, 25, 8, 30, tzinfo=UTC)
    assert sorted(rows(before, now, at)) == [
        (minute, "correlate", "ok", "", 3),
        (minute, "normalize", "ok", "", 15),
    ]


def test_counts_read_the_process_counters() -> None:
    before = counts()
    RECORDS.labels("test-stage", "ok").inc(4)
    DEAD_LETTERS.labels("test-stage", "schema_violation").inc()
    grown = rows(before, counts(), datetime.now(UTC))
    assert {(r[1], r[2], r[3], r[4]) for r in grown} == {
        ("test-stage", "ok", "", 4),
        ("test-stage", "dead_letter", "schema_violation", 1),
    }
