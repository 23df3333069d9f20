"""When a chaos scenario passes: every figure it lists must be 0 and every flag hold; the
side traffic's figures keep their names in the report."""

from __future__ import annotations

import dataclasses
from typing import Any, get_type_hints

import pytest

from citybrain.streams.watchdog import EXIT_STALLED
from citybrain_tools.chaos import scenarios
from citybrain_tools.chaos.report import as_dict
from citybrain_tools.chaos.side import SideLanded

#: a passing result of each scenario, beyond the common figures
PASSING: dict[type[scenarios.Common], dict[str, Any]] = {
    scenarios.WorkerKills: {},
    scenarios.BrokerKill: {"broker_killed_pid": 41, "broker_new_pid": 42},  # the proof
    scenarios.DatabaseStop: {"database_refused": True},
    scenarios.Rebalances: {"cycles": 3, "joins": 3, "leaves": 3, "alarms_to_the_end": True},
    scenarios.Poison: {"worker_alive": True, "good_behind": 40, "good_behind_stored": 40},
    scenarios.WebhookOutage: {},
    scenarios.SlowEventKill: {"slow_event_processed": True, "killed_during_sleep": True},
    scenarios.StalledRebalance: {
        "exit_status": EXIT_STALLED,
        "slow_record": "events.v1[2]@40",
        "waited_for": ["events.v1[2]@38"],
        "counted_after_restart": True,
    },
    scenarios.BridgeKill: {
        "events": 10,
        "published": 10,
        "kills": 1,
        "killed_pids": [7],  # the proof
        "event_rows": 10,
    },
}


def test_every_scenario_has_a_passing_example() -> None:
    made = {get_type_hints(run)["return"] for run in scenarios.SCENARIOS.values()}
    assert made == set(PASSING)


@pytest.mark.parametrize("cls", list(PASSING), ids=lambda c: c.__name__)
def test_a_scenario_fails_on_any_figure_not_0_or_flag_not_held(
    cls: type[scenarios.Common],
) -> None:
    passing = cls(settled=True, **PASSING[cls])
    assert passing.ok
    assert not dataclasses.replace(passing, settled=False).ok
    fields = {f.name for f in dataclasses.fields(cls)}
    for name in cls.MUST_BE_ZERO:
        assert not with_figure(passing, name, 1).ok, name
    for name in cls.MUST_HOLD:
        assert getattr(passing, name) is True, name
        if name in fields:
            assert not with_figure(passing, name, False).ok, name


def with_figure(result: scenarios.Common, name: str, value: object) -> scenarios.Common:
    changed = dataclasses.replace(result)
    setattr(changed, name, value)
    return changed


def test_flags_computed_from_figures() -> None:
    rebalances = scenarios.Rebalances(settled=True, cycles=3, joins=3, leaves=2)
    assert not rebalances.ok
    assert not dataclasses.replace(rebalances, leaves=3, side_error="stopped").ok
    poison = scenarios.Poison(settled=True, worker_alive=True, good_behind=40)
    assert not dataclasses.replace(poison, good_behind_stored=39).ok
    stalled = scenarios.StalledRebalance(settled=True, **PASSING[scenarios.StalledRebalance])
    assert not dataclasses.replace(stalled, exit_status=1).ok
    assert not dataclasses.replace(stalled, waited_for=["events.v1[2]@41"]).ok


def test_the_report_keeps_the_figures_and_not_the_rules() -> None:
    row = as_dict("rebalances", scenarios.Rebalances(settled=True, alarms_to_the_end=True))
    assert row["ok"] is True and "MUST_BE_ZERO" not in row and "every_cycle" not in row


def test_side_traffic_figures_keep_their_names() -> None:
    landed = SideLanded(
        sent={"pings": 5, "calls": 5, "acks": 2}, landed={"pings": 5, "calls": 4, "acks": 2}
    )
    assert landed.lost == 1
    assert landed.figures() == {
        "pings_sent": 5,
        "pings_stored": 5,
        "calls_sent": 5,
        "calls_stored": 4,
        "acks_sent": 2,
        "acks_applied": 2,
    }
