"""The fault-injection suite at CI size (`citybrain chaos` runs the same scenarios at full
size): against the stack the settings name, nothing lost, nothing doubled."""

from __future__ import annotations

import pytest

from citybrain.settings import Settings
from citybrain.streams.watchdog import EXIT_STALLED
from citybrain_tools.chaos import scenarios

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.timeout(400)]


def test_worker_kill9_loses_and_doubles_nothing(stack: Settings) -> None:
    r = scenarios.worker_kills(
        stack, events=2000, rate=200.0, every=(5.0, 7.0), per_site=50, max_kills=2, timeout=240
    )
    assert r.kills >= 1 and r.settled, r
    assert (r.lost, r.constraint_duplicate_rows, r.duplicate_dispatches, r.split_incidents) == (
        0,
        0,
        0,
        0,
    )
    assert r.duplicate_tasks == 0 and r.task_messages > 0, r
    assert r.recovery_p50_s is not None


def test_poison_pills_and_bad_input_become_dead_letters(stack: Settings) -> None:
    r = scenarios.poison(stack, good=20, per_site=10, timeout=180)
    assert r.worker_alive, r
    assert r.without_dead_letter == 0 and r.wrong_reason == 0, r.missing
    assert r.good_behind_stored == r.good_behind, r
    assert (r.lost, r.constraint_duplicate_rows, r.duplicate_dispatches) == (0, 0, 0), r


def test_postgres_stopped_loses_and_doubles_nothing(stack: Settings) -> None:
    r = scenarios.database_stop(
        stack, events=1500, rate=100.0, stop_after=4.0, down_for=6.0, per_site=50, timeout=240
    )
    assert r.settled and r.catch_up_s is not None, r
    assert (r.lost, r.constraint_duplicate_rows, r.duplicate_dispatches) == (0, 0, 0), r
    assert r.peak_lag > 0


def test_webhook_receiver_down_then_every_task_delivered_once(stack: Settings) -> None:
    r = scenarios.webhook_outage(stack, events=40, per_site=10, down_for=8.0, timeout=180)
    assert r.webhook_messages > 0, r
    assert (r.undelivered, r.duplicate_deliveries, r.bad_signatures, r.dead) == (0, 0, 0, 0), r
    assert (r.lost, r.constraint_duplicate_rows) == (0, 0), r


@pytest.mark.timeout(900)
def test_twenty_rebalances_with_traffic_on_every_topic_never_stall_and_lose_nothing(
    stack: Settings,
) -> None:
    """Issue 18: a second worker joins and leaves 20 times while smoke alarms, pings,
    hotline calls and task acknowledgements flow; the workers run supervised, so a stall
    the watchdog ends is counted, not hidden."""
    cycles, period, rate = 20, 1.0, 40.0
    r = scenarios.rebalances(
        stack,
        # the alarms flow until the last leave; at most this many (a cycle is 1 s, ~4 s to
        # join (most of it the second worker's start), 1 s, ~2 s to leave: twice that here)
        events=round(rate * 16 * cycles),
        rate=rate,
        period=period,
        cycles=cycles,
        per_site=50,
        timeout=240,
    )
    assert r.joins == r.leaves == cycles and r.settled and r.alarms_to_the_end, r
    assert (r.stall_exits, r.other_exits) == (0, 0), r
    assert (r.lost, r.constraint_duplicate_rows, r.duplicate_dispatches) == (0, 0, 0), r
    assert r.side_sent > 0 and r.side_lost == 0, r.side
    assert min(r.side["pings_sent"], r.side["calls_sent"], r.side["acks_sent"]) > 0, r.side
    assert r.unconsumed_partitions == 0, r.unconsumed


def test_a_worker_stuck_in_a_rebalance_exits_naming_the_record_and_loses_nothing(
    stack: Settings,
) -> None:
    """The stall watchdog on a real worker: its persist batch sleeps (the fault hook) when a
    second worker joins, so the revocation waits for it; past CITYBRAIN_STALL_TIMEOUT the
    worker logs the record it waits for and exits 75. Started again, it counts that exit,
    and every event is stored."""
    r = scenarios.stalled_rebalance(stack, events=30, stall_timeout=6.0, per_site=10, timeout=180)
    assert r.exit_status == EXIT_STALLED, r
    # the log names the sleeping record's partition and the oldest record of it in flight
    # (the sleeping batch may hold earlier records of the partition: the commit waits there)
    partition, offset = r.slow_record.split("@")
    named = [w.split("@") for w in r.waited_for if w.startswith(partition + "@")]
    assert named and int(named[0][1]) <= int(offset), r
    assert r.waited_s is not None and 6.0 < r.waited_s < 30.0, r
    assert r.counted_after_restart, r
    assert r.settled and (r.lost, r.constraint_duplicate_rows) == (0, 0), r


def test_broker_hard_killed_loses_nothing(stack: Settings) -> None:
    r = scenarios.broker_kill(
        stack, events=1500, rate=100.0, kill_after=4.0, down_for=5.0, per_site=50, timeout=240
    )
    assert r.settled, r
    assert (r.lost, r.constraint_duplicate_rows, r.duplicate_dispatches) == (0, 0, 0), r


def test_slow_event_under_concurrency_then_kill9_is_processed_after_restart(
    stack: Settings,
) -> None:
    """faust-streaming issue 606: later batches acked first must not commit past it."""
    r = scenarios.slow_event_then_kill(
        stack,
        events=400,
        concurrency=3,
        slow_seconds=40.0,
        commit_wait=4.0,
        per_site=50,
        timeout=150,
    )
    assert r.killed_during_sleep, r
    assert not r.committed_past_slow and r.slow_event_processed, r
    assert r.settled and (r.lost, r.constraint_duplicate_rows, r.duplicate_dispatches) == (
        0,
        0,
        0,
    ), r
