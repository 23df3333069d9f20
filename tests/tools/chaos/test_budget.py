"""The broker-loss scenario's one time budget: waits in a row never add up past it, and the
waits that ran out are named (a scenario that ran out says where, not only that it failed)."""

from __future__ import annotations

import time

from citybrain_tools.chaos.cluster import Budget
from citybrain_tools.chaos.report import table


def test_waits_in_a_row_share_one_budget() -> None:
    budget = Budget(0.3)
    started = time.monotonic()
    assert not budget.wait("first", lambda: False, 10.0, 0.05)
    assert not budget.wait("second", lambda: False, 10.0, 0.05)
    assert budget.wait("third", lambda: True, 10.0, 0.05)  # checked once even when spent
    assert time.monotonic() - started < 2.0
    assert budget.ran_out == ["first", "second"]


def test_a_condition_met_in_time_is_not_named() -> None:
    budget = Budget(5.0)
    calls = iter([False, False, True])
    assert budget.wait("stored", lambda: next(calls), 5.0, 0.01)
    assert budget.ran_out == []


def test_a_diagnosis_is_a_block_of_its_own_in_the_table() -> None:
    text = table(
        [
            {
                "scenario": "broker-loss-controller",
                "ok": False,
                "lost": 3,
                "diagnosis": "stored 1497/1500\n--- worker-0.log\nlast line",
            }
        ]
    )
    assert "  diagnosis:\n    stored 1497/1500\n    --- worker-0.log\n    last line" in text
