"""The status stage's refusals (pure): each check a report or command can fail has its
dead-letter reason; anything unforeseen is an internal error."""

from __future__ import annotations

import pytest

from citybrain.agents.dispatch.status import refusal
from citybrain.agents.dispatch.store import UnknownDispatch
from citybrain.dispatch.plan import TransitionError


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (UnknownDispatch("no dispatch d1"), "unknown_dispatch"),
        (PermissionError("not yours"), "not_your_task"),
        (TransitionError("resolved -> acknowledged"), "invalid_transition"),
        (KeyError("x"), "internal_error"),
    ],
)
def test_refusal_reasons(error: Exception, reason: str) -> None:
    assert refusal(error) == reason
