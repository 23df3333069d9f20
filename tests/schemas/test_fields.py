"""The shared field rules (schemas/fields.py): durations, time-zone names, aware instants and
the strict base, alone and as every schema that uses them reports them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel, ValidationError

from citybrain.correlation.rules import Family
from citybrain.schemas.feed_definition import RateRule, SilenceRule, Timestamp
from citybrain.schemas.fields import (
    Duration,
    PositiveDuration,
    Strict,
    TimeZoneName,
    is_aware,
    parse_duration,
    require_aware,
)
from citybrain.schemas.sla_policy import CategoryPolicy, Override, Target, WorkingHoursSpec


class Fields(Strict):
    duration: Duration = "0s"
    positive: PositiveDuration = "1s"
    zone: TimeZoneName = "UTC"


def error_of(model: type[BaseModel], data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    (error,) = info.value.errors()
    return f"{'.'.join(map(str, error['loc']))}: {error['msg']}"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0s", 0.0),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1.5h", 5400.0),
        ("3d", 259200.0),
        (" 2h ", 7200.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "m", "-5m", "5 m", "5w", "5min", "1e3s"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration like 30s, 5m, 2h"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"duration": "soon"}, "duration: Value error, 'soon' is not a duration like 30s, 5m, 2h"),
        ({"positive": "0m"}, "positive: Value error, '0m' must be longer than zero"),
        ({"positive": "later"}, "positive: Value error, 'later' is not a duration like 30s"),
        ({"zone": "Mars/Olympus"}, "zone: Value error, unknown time zone 'Mars/Olympus'"),
        ({"zone": "../etc/passwd"}, "zone: Value error, unknown time zone '../etc/passwd'"),
        ({"zone": ""}, "zone: Value error, unknown time zone ''"),
        ({"extra": 1}, "extra: Extra inputs are not permitted"),
    ],
)
def test_field_errors(data: dict[str, Any], expected: str) -> None:
    assert error_of(Fields, data).startswith(expected)


@pytest.mark.parametrize(
    "data",
    [
        {"duration": "0s", "positive": "1s", "zone": "UTC"},
        {"duration": "90m", "positive": "0.5s", "zone": "Asia/Shanghai"},
        {"duration": "2d", "positive": "3d", "zone": "Europe/Berlin"},
    ],
)
def test_fields_keep_the_value_as_written(data: dict[str, str]) -> None:
    assert Fields.model_validate(data).model_dump() == data


# Every schema field that takes a shared type reports its errors the same way.
@pytest.mark.parametrize(
    ("model", "data", "expected"),
    [
        (Timestamp, {"path": "t", "timezone": "Mars/Olympus"}, "unknown time zone"),
        (WorkingHoursSpec, {"timezone": "Mars/Olympus"}, "unknown time zone"),
        (Timestamp, {"path": "t", "max_future": "soon"}, "is not a duration"),
        (
            RateRule,
            {"rule": "rate_of_change", "metric": "m", "rise": 1, "within": "x", "category": "c"},
            "is not a duration",
        ),
        (SilenceRule, {"rule": "silence", "after": "x"}, "is not a duration"),
        (Family, {"radius_m": 100, "window": "x"}, "is not a duration"),
        (Target, {"ack": "0m", "resolve": "1h"}, "must be longer than zero"),
        (Override, {"resolve": "0h"}, "must be longer than zero"),
        (CategoryPolicy, {"ack": "5m", "resolve": "x"}, "is not a duration"),
    ],
)
def test_schemas_share_the_rules(
    model: type[BaseModel], data: dict[str, Any], expected: str
) -> None:
    assert expected in error_of(model, data)


@pytest.mark.parametrize(
    ("at", "aware"),
    [
        (datetime(2026, 1, 1, 8, 0), False),
        (datetime(2026, 1, 1, 8, 0, tzinfo=UTC), True),
        (datetime(2026, 1, 1, 8, 0, tzinfo=timezone(timedelta(hours=8))), True),
        (datetime(2026, 1, 1, 8, 0, tzinfo=ZoneInfo("Asia/Shanghai")), True),
    ],
)
def test_is_aware_and_require_aware(at: datetime, aware: bool) -> None:
    assert is_aware(at) is aware
    if aware:
        assert require_aware(at, "now") is at
    else:
        with pytest.raises(ValueError, match=r"^now has no time zone \(give an offset"):
            require_aware(at, "now")
        with pytest.raises(ValueError, match=r"^2026-01-01T08:00:00 has no time zone"):
            require_aware(at)
