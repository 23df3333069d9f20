"""The persist stage's decision (pure): an events.v1 message as a row of `events`."""

from __future__ import annotations

import pytest

from citybrain.core.event_rows import event_row_of
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
