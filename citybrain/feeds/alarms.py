"""Alarm rules: readings of one device -> alarm and clear events (pure, state passed in).

State is a JSON-able dict per device, kept by the normalize agent in a Faust table keyed
by device id (the raw topics are keyed by device id, so state and records agree):

    {"last_seen": epoch_s, "offline": bool,
     "rules": {"<n>": {"since": epoch_s | None, "active": bool, "window": [[t, v], ...]}}}

- threshold: value above (or below) a bound for at least `held_for` -> alarm; back within
  the bound -> clear.
- rate_of_change: the value rose by `rise` or more within `within` -> alarm; no longer ->
  clear. The rule's window holds the points that may still be its minimum (a monotonic
  queue: each reading drops the older points that are not lower than itself).
- silence: no message for `after` -> device_offline (from `sweep`); the next message ->
  device_online.
Event ids are deterministic (feed, device, rule, kind, the reading's time), so replaying
the same readings from the same state emits the same events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from citybrain.schemas.feed_definition import (
    FeedDefinition,
    SilenceRule,
    ThresholdRule,
    parse_duration,
)


@dataclass(frozen=True)
class AlarmEvent:
    event_id: str
    kind: str  # alarm, clear, device_offline, device_online
    category: str
    severity: int
    device_id: str
    observed_at: datetime
    metric: str | None
    value: float | None
    rule: str


def _ts(t: datetime) -> float:
    return t.timestamp()


def _id(feed: str, device: str, rule: int | str, kind: str, at: datetime) -> str:
    return f"{feed}:{device}:r{rule}:{kind}:{int(_ts(at) * 1000)}"


def evaluate(
    definition: FeedDefinition,
    state: dict[str, Any] | None,
    device_id: str,
    observed_at: datetime,
    readings: Sequence[tuple[str, float, str]],
) -> tuple[dict[str, Any], list[AlarmEvent]]:
    """Apply one message's readings; return the new state and the events it causes.

    The state is updated in place (the caller owns it: `normalize_batch` copies a device's
    state once per batch)."""
    st: dict[str, Any] = (
        state if state is not None else {"last_seen": None, "offline": False, "rules": {}}
    )
    st.setdefault("rules", {})
    out: list[AlarmEvent] = []
    now = _ts(observed_at)
    feed = definition.feed
    if st.get("last_seen") is not None and now < float(st["last_seen"]):
        # a late, out-of-order message: store the reading, but do not move rule state back
        return st, out
    if st.get("offline"):
        silence = next((r for r in definition.alarms if isinstance(r, SilenceRule)), None)
        st["offline"] = False
        if silence is not None:
            out.append(
                AlarmEvent(
                    _id(feed, device_id, "s", "device_online", observed_at),
                    "device_online",
                    silence.category,
                    silence.severity,
                    device_id,
                    observed_at,
                    None,
                    None,
                    "silence",
                )
            )
    st["last_seen"] = now
    values = {metric: value for metric, value, _ in readings}
    for n, rule in enumerate(definition.alarms):
        if isinstance(rule, SilenceRule):
            continue
        if rule.metric not in values:
            continue
        value = values[rule.metric]
        rs = st["rules"].setdefault(str(n), {"since": None, "active": False, "window": []})
        label = f"{'threshold' if isinstance(rule, ThresholdRule) else 'rate'}#{n}"
        if isinstance(rule, ThresholdRule):
            breach = (rule.above is not None and value > rule.above) or (
                rule.below is not None and value < rule.below
            )
            rs["since"] = (rs["since"] if rs["since"] is not None else now) if breach else None
            firing = breach and now - rs["since"] >= parse_duration(rule.held_for)
            # once alarmed, the alarm holds until the value is back within the bound
            firing = firing or (breach and rs["active"])
        else:
            # the window keeps only points that can still be its minimum: values rise
            # along it, so the oldest point not expired is the lowest
            horizon = now - parse_duration(rule.within)
            window = rs["window"]
            while window and window[-1][1] >= value:
                window.pop()
            window.append([now, value])
            start = 0
            while window[start][0] < horizon:
                start += 1
            if start or len(window) > 200:
                window = rs["window"] = window[max(start, len(window) - 200) :]
            firing = value - min(p[1] for p in window) >= rule.rise  # window[0] but for
            # states written before the window was kept monotonic
        if firing != rs["active"]:
            rs["active"] = firing
            kind = "alarm" if firing else "clear"
            out.append(
                AlarmEvent(
                    _id(feed, device_id, n, kind, observed_at),
                    kind,
                    rule.category,
                    rule.severity,
                    device_id,
                    observed_at,
                    rule.metric,
                    value,
                    label,
                )
            )
    return st, out


def sweep(
    definition: FeedDefinition, state: dict[str, Any], device_id: str, now: datetime
) -> tuple[dict[str, Any], list[AlarmEvent]]:
    """The silence rule: called periodically for every known device."""
    silence = next((r for r in definition.alarms if isinstance(r, SilenceRule)), None)
    last = state.get("last_seen")
    if silence is None or last is None or state.get("offline"):
        return state, []
    if _ts(now) - float(last) < parse_duration(silence.after):
        return state, []
    new = dict(state)
    new["offline"] = True
    last_seen = datetime.fromtimestamp(float(last), tz=UTC)
    event = AlarmEvent(
        _id(definition.feed, device_id, "s", "device_offline", last_seen),
        "device_offline",
        silence.category,
        silence.severity,
        device_id,
        now,
        None,
        None,
        "silence",
    )
    return new, [event]
