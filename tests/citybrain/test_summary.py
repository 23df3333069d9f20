"""The live summary line of `citybrain run`."""

from __future__ import annotations

from citybrain.summary import Snapshot, counters, summary_line

METRICS = """# HELP citybrain_records_total Records handled per stage and outcome.
# TYPE citybrain_records_total counter
citybrain_records_total{outcome="ok",stage="normalize"} 1200.0
citybrain_records_total{outcome="dead_letter",stage="normalize"} 30.0
citybrain_records_total{outcome="ok",stage="correlate"} 99.0
# TYPE citybrain_dead_letters_total counter
citybrain_dead_letters_total{reason="malformed_json",stage="normalize"} 20.0
citybrain_dead_letters_total{reason="unknown_device",stage="normalize"} 10.0
"""


def test_counters_take_the_normalize_stage_and_every_dead_letter() -> None:
    assert counters(METRICS) == (1230.0, 30.0)


def test_the_line_shows_the_rate_between_two_snapshots() -> None:
    before = Snapshot(10.0, 1000.0, 5.0, 3, 4, 4, 0)
    now = Snapshot(15.0, 6000.0, 7.0, 5, 9, 8, 1)
    line = summary_line(before, now)
    assert "records/s   1,000" in line
    assert "open incidents      5" in line
    assert "tasks      9" in line and "delivered       8 (queued 1)" in line
    assert line.endswith("dead letters 7")


def test_the_first_line_and_a_silent_worker_show_dashes() -> None:
    line = summary_line(None, Snapshot(1.0, float("nan"), float("nan"), 0, 0, 0, 0))
    assert "records/s       -" in line and line.endswith("dead letters -")
