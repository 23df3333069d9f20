"""Which events.v1 messages the correlation funnel still forwards: those without the
header the normalize stage puts on the copies it also sent to correlate.v1 itself."""

from __future__ import annotations

from typing import Any

import pytest

from citybrain.streams.publish import ROUTED, was_routed


@pytest.mark.parametrize(
    ("headers", "routed"),
    [
        (None, False),
        ([], False),
        ({}, False),
        ([("dlq.stage", b"normalize")], False),
        ([(ROUTED, b"1")], True),
        ([("trace", b"x"), (ROUTED, b"1")], True),
        ({ROUTED: b"1"}, True),
        ({"other": b"1"}, False),
    ],
)
def test_was_routed(headers: Any, routed: bool) -> None:
    assert was_routed(headers) is routed
