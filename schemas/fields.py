"""The rules that config files and messages share, each written once: the strict base model,
durations (`30s`, `5m`, `2h`, `3d`), time-zone names and timezone-aware instants.

The `Annotated` types validate a field with pydantic and keep its value as written (a
duration stays the string `5m`; `parse_duration` turns it into seconds where it is used).
Code that is not pydantic calls the same functions (`parse_duration`, `require_aware`);
pydantic models take aware instants as pydantic's own `AwareDatetime`.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict

DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h|d)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class Strict(BaseModel):
    """A config schema that refuses unknown keys (a typo is an error, not a silent default)."""

    model_config = ConfigDict(extra="forbid")


@functools.lru_cache(maxsize=256)
def parse_duration(text: str) -> float:
    """'5m' -> 300.0 seconds (cached: alarm rules ask for every reading)."""
    m = DURATION.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a duration like 30s, 5m, 2h")
    return float(m[1]) * _UNITS[m[2]]


def check_duration(value: str) -> str:
    """`value` if it is a duration, else ValueError."""
    parse_duration(value)
    return value


def check_positive_duration(value: str) -> str:
    """`value` if it is a duration longer than zero, else ValueError."""
    if parse_duration(value) <= 0:
        raise ValueError(f"{value!r} must be longer than zero")
    return value


def check_time_zone(value: str) -> str:
    """`value` if zoneinfo knows the zone (e.g. Asia/Shanghai), else ValueError."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


def is_aware(at: datetime) -> bool:
    """Whether `at` names one instant (it carries a UTC offset)."""
    return at.tzinfo is not None and at.utcoffset() is not None


def require_aware(at: datetime, what: str | None = None) -> datetime:
    """`at` if it carries a UTC offset, else ValueError naming `what` (default: the value);
    a naive datetime is refused because its zone would be a guess."""
    if not is_aware(at):
        raise ValueError(f"{what or at.isoformat()} has no time zone (give an offset: Z, +08:00)")
    return at


#: A duration such as `30s`, `5m`, `2h` or `3d`, kept as written.
Duration = Annotated[str, AfterValidator(check_duration)]
#: A duration longer than zero.
PositiveDuration = Annotated[str, AfterValidator(check_positive_duration)]
#: An IANA time-zone name that zoneinfo knows, e.g. `Asia/Shanghai`.
TimeZoneName = Annotated[str, AfterValidator(check_time_zone)]
