"""The load generator's schedule (pure): each step's rate in turn, the messages due at any
moment, and the total a schedule offers."""

from __future__ import annotations

import pytest

from citybrain_tools.bench.load import due_by, scheduled_total


@pytest.mark.parametrize(
    ("elapsed", "due"),
    [(0.0, 0), (1.0, 100), (10.0, 1000), (10.5, 1150), (12.0, 1600), (13.0, 1700), (99, 1700)],
)
def test_a_schedule_offers_each_steps_rate_in_turn(elapsed: float, due: int) -> None:
    schedule = [(100.0, 10.0), (300.0, 2.0), (100.0, 1.0)]
    assert scheduled_total(schedule) == 1700
    assert due_by(schedule, elapsed) == due


def test_a_steps_readings_are_timed_when_made_and_distinct_per_device() -> None:
    """A step with more messages than devices: a device's second reading is a millisecond
    later, never the same reading (and never hours back, where it looks silent)."""
    import json

    from citybrain_tools.bench.load import messages

    devices = [b"WL-1", b"WL-2", b"WL-3"]
    at = 1_800_000_000_000
    docs = [json.loads(v) for _, v in messages(devices, 7, 8, at)]
    stamps = [(d["devId"], d["ts"]) for d in docs]
    assert len(set(stamps)) == 8
    assert {ts for _, ts in stamps} == {at, at + 1, at + 2}
