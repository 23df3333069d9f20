"""Alarm rules: held thresholds, rates of change, silence; clears; deterministic ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from citybrain.feeds.alarms import evaluate, sweep
from citybrain.feeds.definition import Feed

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def run(
    feed: Feed, series: list[tuple[int, float]], state: dict[str, Any] | None = None
) -> tuple[dict[str, Any], list[tuple[int, str, str]]]:
    out = []
    for minute, level in series:
        state, events = evaluate(
            feed.definition, state, "WL1", T0 + timedelta(minutes=minute), [("level_m", level, "m")]
        )
        out += [(minute, e.kind, e.rule) for e in events]
    assert state is not None
    return state, out


def test_threshold_must_hold_for_its_duration(feeds: dict[str, Feed]) -> None:
    # above 0.8 m from minute 1; the alarm fires only at minute 6 (held 5 minutes)
    _, events = run(
        feeds["water-level"], [(0, 0.5), (1, 0.81), (3, 0.85), (5, 0.84), (6, 0.86), (7, 0.9)]
    )
    assert [e for e in events if e[2].startswith("threshold")] == [(6, "alarm", "threshold#0")]


def test_a_dip_resets_the_hold_and_a_clear_follows_an_alarm(feeds: dict[str, Feed]) -> None:
    _, events = run(
        feeds["water-level"], [(0, 0.85), (3, 0.7), (4, 0.85), (8, 0.85), (9, 0.9), (12, 0.4)]
    )
    threshold = [e for e in events if e[2].startswith("threshold")]
    assert threshold == [(9, "alarm", "threshold#0"), (12, "clear", "threshold#0")]


def test_rate_of_change(feeds: dict[str, Feed]) -> None:
    # +0.35 m within 4 minutes -> alarm; falling back -> clear
    _, events = run(feeds["water-level"], [(0, 0.10), (2, 0.20), (4, 0.45), (30, 0.3)])
    rate = [e for e in events if e[2].startswith("rate")]
    assert rate == [(4, "alarm", "rate#1"), (30, "clear", "rate#1")]


def test_silence_gives_offline_then_online(feeds: dict[str, Feed]) -> None:
    definition = feeds["water-level"].definition
    state, _ = run(feeds["water-level"], [(0, 0.1)])
    state, none = sweep(definition, state, "WL1", T0 + timedelta(minutes=20))
    assert none == []
    state, offline = sweep(definition, state, "WL1", T0 + timedelta(minutes=31))
    assert [e.kind for e in offline] == ["device_offline"]
    _, again = sweep(definition, state, "WL1", T0 + timedelta(minutes=40))
    assert again == []  # reported once
    _, back = evaluate(
        definition, state, "WL1", T0 + timedelta(minutes=45), [("level_m", 0.1, "m")]
    )
    assert [e.kind for e in back] == ["device_online"]


def test_replaying_the_same_readings_gives_the_same_event_ids(feeds: dict[str, Feed]) -> None:
    definition = feeds["water-level"].definition
    ids = []
    for _ in range(2):
        state = None
        got = []
        for minute, level in [(0, 0.9), (5, 0.9), (6, 0.2)]:
            state, events = evaluate(
                definition, state, "WL1", T0 + timedelta(minutes=minute), [("level_m", level, "m")]
            )
            got += [e.event_id for e in events]
        ids.append(got)
    assert ids[0] == ids[1] and len(ids[0]) == 2


def test_a_late_message_does_not_move_state_back(feeds: dict[str, Feed]) -> None:
    state, _ = run(feeds["water-level"], [(10, 0.9)])
    late, events = evaluate(
        feeds["water-level"].definition,
        state,
        "WL1",
        T0 + timedelta(minutes=2),
        [("level_m", 0.1, "m")],
    )
    assert events == [] and late["last_seen"] == state["last_seen"]
