"""Alarm rules: held thresholds, rates of change, silence; clears; deterministic ids."""

from __future__ import annotations

import random
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


def _rate_events_by_brute_force(series: list[tuple[int, float]]) -> list[tuple[int, str]]:
    """The rate rule as its definition reads: the value rose by 0.3 m or more over the
    lowest reading of the last 10 minutes (the water-level feed's rule #1)."""
    out, active = [], False
    for k, (minute, level) in enumerate(series):
        window = [v for m, v in series[: k + 1] if m >= minute - 10]
        firing = level - min(window) >= 0.3
        if firing != active:
            active = firing
            out.append((minute, "alarm" if firing else "clear"))
    return out


def test_rate_window_is_kept_small_and_agrees_with_the_definition(
    feeds: dict[str, Feed],
) -> None:
    rng = random.Random(7)
    for _ in range(50):
        minute, level, series = 0, 0.3, []
        for _ in range(300):
            minute += rng.choice([0, 1, 1, 2, 3])
            level = max(0.0, level + rng.uniform(-0.12, 0.12))
            series.append((minute, round(level, 3)))
        state, events = run(feeds["water-level"], series)
        rate = [(m, kind) for m, kind, rule in events if rule.startswith("rate")]
        assert rate == _rate_events_by_brute_force(series)
        window = state["rules"]["1"]["window"]
        assert [v for _, v in window] == sorted(v for _, v in window)  # rising: a min-queue
        # exactly the readings of the last 10 minutes lower than every reading after them
        recent = [v for m, v in series if m >= series[-1][0] - 10]
        lows = [v for i, v in enumerate(recent) if all(v < w for w in recent[i + 1 :])]
        assert [v for _, v in window] == lows


def test_a_window_stored_before_it_was_kept_rising_still_gives_its_minimum(
    feeds: dict[str, Feed],
) -> None:
    # a state written by an earlier version: every point of the window, not only rising ones
    t0 = T0.timestamp()
    old = {
        "last_seen": t0 + 240,
        "offline": False,
        "rules": {"1": {"since": None, "active": False, "window": [[t0, 0.2], [t0 + 240, 0.5]]}},
    }
    old["rules"]["1"]["window"].insert(1, [t0 + 120, 0.05])  # the lowest in the middle
    _, events = evaluate(
        feeds["water-level"].definition,
        old,
        "WL1",
        T0 + timedelta(minutes=5),
        [("level_m", 0.4, "m")],
    )
    # 0.4 - 0.05 >= 0.3 (the first point, 0.2, would not have fired it)
    assert [(e.kind, e.rule) for e in events] == [("alarm", "rate#1")]
