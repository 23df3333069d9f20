"""Which broker broker-loss kills (pure): the quorum's leader, or the leader of the first
events.v1 partition that another broker leads; neither found is a fault not injected."""

from __future__ import annotations

from typing import Any

import pytest

from citybrain_tools.chaos.cluster import choose_victim
from citybrain_tools.chaos.faults import FaultNotInjected


def _p(topic: str, partition: int, leader: int) -> dict[str, Any]:
    return {"topic": topic, "partition": partition, "leader": leader}


PARTS = [_p("events.v1", 1, 3), _p("events.v1", 0, 1), _p("raw.hotline", 0, 2)]


def test_the_controller() -> None:
    assert choose_victim("controller", 1, PARTS) == (1, "controller", None)


def test_a_leader_that_is_not_the_controller() -> None:
    assert choose_victim("leader", 1, PARTS) == (3, "leader of events.v1[1]", ("events.v1", 1))


@pytest.mark.parametrize(
    ("victim", "controller", "parts"),
    [("controller", None, PARTS), ("leader", 1, [_p("events.v1", 0, 1)])],
)
def test_nothing_to_kill_is_not_a_run(victim: Any, controller: int | None, parts: Any) -> None:
    with pytest.raises(FaultNotInjected):
        choose_victim(victim, controller, parts)
