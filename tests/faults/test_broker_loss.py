"""broker-loss at CI size on the cluster of three (`citybrain chaos -s broker-loss` runs it
at full size): the active controller killed under load, back, then a rolling restart of
all three; nothing lost, nothing doubled, every replica in sync at the end."""

from __future__ import annotations

import pytest

from citybrain.settings import Settings
from citybrain_tools.chaos.cluster import broker_loss

pytestmark = [
    pytest.mark.faults,
    pytest.mark.integration,
    pytest.mark.cluster_faults,
    pytest.mark.timeout(600),
]


def test_the_controller_lost_then_a_rolling_restart_loses_nothing(cluster: Settings) -> None:
    r = broker_loss(
        cluster,
        victim="controller",
        events=1500,
        rate=100.0,
        kill_after=5.0,
        down_for=6.0,
        per_site=50,
        timeout=360,  # the whole scenario; the test's own limit is 600 s
    )
    assert r.killed_pid > 0 and r.leader_moved and r.rolled, r
    assert r.settled, (r.waited_out, r.diagnosis)
    assert r.waited_out == [], r
    assert (r.lost, r.constraint_duplicate_rows, r.duplicate_dispatches) == (0, 0, 0), r
    assert (r.duplicate_tasks, r.redelivered_messages) == (0, 0), r
    assert r.under_replicated_partitions == 0, r
