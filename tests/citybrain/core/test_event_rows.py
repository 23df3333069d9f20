"""The persist stage's decision (pure): an events.v1 message as a row of `events`."""

from __future__ import annotations

from typing import Any

import pytest

from citybrain.core.event_rows import event_of_row, event_row, event_row_of
from citybrain.schemas.tables import EVENTS
from tests.citybrain.correlation.test_core import ev


def test_an_event_becomes_a_row_of_the_events_table() -> None:
    event = ev("e1", device="SM-1")
    row = event_row_of(event.to_json())
    assert len(row) == len(EVENTS.columns)
    assert row[0] == "e1"
    assert row[-1]["kind"] == "report"


@pytest.mark.parametrize("value", [b"{oops", b"{}", b'{"event_id": 1}'])
def test_a_message_that_is_not_an_event_raises(value: bytes) -> None:
    with pytest.raises((ValueError, KeyError, TypeError)):  # the stage helper: schema_violation
        event_row_of(value)


@pytest.mark.parametrize(
    "event",
    [
        ev("e1", device="SM-1", source="iot", kind="alarm"),
        ev("e2", status="needs_location", address="浦东新区锦绣苑3号楼", text="有烟"),
    ],
)
def test_a_stored_row_gives_back_the_event_correlation_uses(event: Any) -> None:
    row = dict(zip(EVENTS.names, event_row(event), strict=True))
    again = event_of_row(row)
    assert again.to_dict() == {**event.to_dict(), "raw_ref": again.to_dict()["raw_ref"]}
