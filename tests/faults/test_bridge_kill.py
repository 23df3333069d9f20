"""bridge-kill at CI size (`citybrain chaos -s bridge-kill` runs it at full size): QoS 1
messages published to mosquitto while `citybrain bridge mqtt` is killed (-9) three times;
nothing lost, and every message written more than once absorbed by its event id."""

from __future__ import annotations

import pytest

from citybrain.settings import Settings
from citybrain_tools.chaos import scenarios

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.timeout(300)]


def test_the_bridge_killed_three_times_loses_nothing_and_repeats_are_absorbed(
    stack: Settings,
) -> None:
    r = scenarios.bridge_kill(
        stack,
        events=600,
        rate=40.0,
        kills=3,
        every=(2.5, 3.5),
        down_for=0.5,
        per_site=50,
        timeout=150,
    )
    assert r.kills == 3 and len(set(r.killed_pids)) == 3, r
    assert r.published == 600 and r.publish_error is None, r
    assert r.settled, r
    assert (r.lost, r.missing_on_raw_topic) == (0, 0), r
    assert r.on_raw_topic == 600 + r.repeats, r
    assert r.event_rows == 600 and r.constraint_duplicate_rows == 0, r  # repeats absorbed
    assert (r.duplicate_dispatches, r.duplicate_tasks, r.split_incidents) == (0, 0, 0), r
    assert r.ok, r
