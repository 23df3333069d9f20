"""The schema of the SLA policy file (YAML) and of a holiday calendar file: acknowledge and
resolve deadlines per category and priority, the working hours and the holidays they skip.

Durations are written like `15m`, `4h`, `3d`. With the `calendar` clock every hour counts and
a day is 24 hours; with the `working` clock only working hours count and a day (`d`) is one
working day (the length of the working hours, e.g. 8h30m), so `3d` means three working days.
"""

from __future__ import annotations

import datetime as dt
import re
from datetime import time, timedelta
from itertools import pairwise
from typing import Annotated, Literal, cast, get_args

from pydantic import Field, ValidationInfo, field_validator, model_validator

from citybrain.schemas.fields import (
    DURATION,
    PositiveDuration,
    Strict,
    TimeZoneName,
    parse_duration,
)

ClockKind = Literal["calendar", "working"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Priority = Annotated[int, Field(ge=1, le=4)]
PRIORITIES = (1, 2, 3, 4)  # 1 = most urgent

Category = Literal[
    "fire_smoke",
    "flooding",
    "water_level",
    "gas_leak",
    "manhole",
    "streetlight_out",
    "cable_theft",
    "noise",
    "air_quality",
    "road_damage",
    "garbage",
    "device_fault",
    "device_offline",
]
CATEGORIES: tuple[str, ...] = get_args(Category)

PERIOD = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
# Skip deferred checks when the loader runs them itself (to point at the line of the problem).
DEFER_CHECKS = "sla_policy_defer_checks"


def duration(text: str, clock: ClockKind, working_day: timedelta) -> timedelta:
    """'3d' -> 3 days of 24h (calendar clock) or 3 working days (working clock)."""
    m = DURATION.match(text.strip())
    if m is not None and m[2] == "d" and clock == "working":
        return float(m[1]) * working_day
    return timedelta(seconds=parse_duration(text))


def parse_period(text: str) -> tuple[time, time]:
    """'09:00-17:30' -> (09:00, 17:30)."""
    m = PERIOD.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a period like 09:00-17:30")
    start, end = time(int(m[1]), int(m[2])), time(int(m[3]), int(m[4]))
    if start >= end:
        raise ValueError(f"{text!r} ends before it starts")
    return start, end


# --- holiday calendar -------------------------------------------------------------------------


class Days(Strict):
    """One named day (`date`) or an inclusive span (`first` .. `last`)."""

    name: str
    date: dt.date | None = None
    first: dt.date | None = None
    last: dt.date | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Days:
        if (self.date is None) == (self.first is None and self.last is None):
            raise ValueError("give either date, or first and last")
        if self.date is None and (self.first is None or self.last is None):
            raise ValueError("a span needs both first and last")
        if self.first is not None and self.last is not None and self.last < self.first:
            raise ValueError("last is before first")
        return self

    def dates(self) -> list[dt.date]:
        if self.date is not None:
            return [self.date]
        assert self.first is not None and self.last is not None
        count = (self.last - self.first).days + 1
        return [self.first + timedelta(days=i) for i in range(count)]


class HolidayDays(Strict):
    """The schema of a holiday calendar file (`holidays/<region>-<year>.yaml`).

    `holidays` are days off that would be working days; `working_days` are the adjusted
    working days (调休) on which work happens although they fall on a weekend.
    """

    source: str | None = Field(None, description="Where the dates come from.")
    holidays: list[Days] = Field(default_factory=list)
    working_days: list[Days] = Field(default_factory=list)

    @model_validator(mode="after")
    def _disjoint(self) -> HolidayDays:
        both = self.holiday_dates() & self.working_dates()
        if both:
            listed = ", ".join(d.isoformat() for d in sorted(both))
            raise ValueError(f"both a holiday and a working day: {listed}")
        return self

    def holiday_dates(self) -> set[dt.date]:
        return {d for days in self.holidays for d in days.dates()}

    def working_dates(self) -> set[dt.date]:
        return {d for days in self.working_days for d in days.dates()}

    def merged(self, other: HolidayDays) -> HolidayDays:
        return HolidayDays(
            source=self.source,
            holidays=[*self.holidays, *other.holidays],
            working_days=[*self.working_days, *other.working_days],
        )


# --- working hours ----------------------------------------------------------------------------


class WorkingHoursSpec(Strict):
    timezone: TimeZoneName = "Asia/Shanghai"
    days: list[Weekday] = Field(["mon", "tue", "wed", "thu", "fri"], min_length=1)
    hours: list[str] = Field(["09:00-17:30"], min_length=1, description="Local periods.")

    @field_validator("hours")
    @classmethod
    def _ordered_periods(cls, value: list[str]) -> list[str]:
        periods = [parse_period(p) for p in value]
        for (_, end), (start, _) in pairwise(periods):
            if start < end:
                raise ValueError("periods must be in order and must not overlap")
        return value

    def periods(self) -> list[tuple[time, time]]:
        return [parse_period(p) for p in self.hours]

    def weekdays(self) -> frozenset[int]:
        """Python weekday numbers (Monday = 0)."""
        return frozenset(WEEKDAYS.index(d) for d in self.days)

    @property
    def working_day(self) -> timedelta:
        """How long one working day is (what `1d` means with the working clock)."""
        total = timedelta()
        for start, end in self.periods():
            total += timedelta(hours=end.hour - start.hour, minutes=end.minute - start.minute)
        return total


# --- targets ----------------------------------------------------------------------------------


class Target(Strict):
    """Deadlines for one category and priority, after applying its overrides."""

    ack: PositiveDuration
    resolve: PositiveDuration
    clock: ClockKind = "calendar"


class Override(Strict):
    """Per-priority changes to a category's deadlines."""

    ack: PositiveDuration | None = None
    resolve: PositiveDuration | None = None
    clock: ClockKind | None = None


class CategoryPolicy(Strict):
    ack: PositiveDuration
    resolve: PositiveDuration
    clock: ClockKind = "calendar"
    priorities: dict[Priority, Override] = Field(default_factory=dict)

    def target(self, priority: int) -> Target:
        o = self.priorities.get(priority, Override())
        return Target(
            ack=o.ack or self.ack,
            resolve=o.resolve or self.resolve,
            clock=o.clock or self.clock,
        )


class Escalation(Strict):
    """When reminders and escalations fire, as fractions of the time a deadline allows.

    At `reminder_at` the department is reminded; at the deadline (1.0) the department's
    supervisor is told; at `operations_center_at` the city operations center takes over.
    """

    reminder_at: float = Field(0.8, gt=0, lt=1)
    operations_center_at: float = Field(1.5, gt=1)


class SlaPolicy(Strict):
    """The schema of `sla.yaml`."""

    working_hours: WorkingHoursSpec = WorkingHoursSpec()
    holiday_files: list[str] = Field([], description="Holiday calendars, next to the file.")
    calendar: HolidayDays = Field(
        HolidayDays(), description="Local extra days; the loader merges holiday_files in."
    )
    escalation: Escalation = Escalation()
    default: CategoryPolicy
    categories: dict[Category, CategoryPolicy] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> SlaPolicy:
        if not (info.context or {}).get(DEFER_CHECKS):
            problems = self.problems()
            if problems:
                raise ValueError("; ".join(f"{'.'.join(map(str, p))}: {m}" for p, m in problems))
        return self

    def policy_of(self, category: str) -> CategoryPolicy:
        return self.categories.get(cast(Category, category), self.default)

    def target(self, category: str, priority: int) -> Target:
        if priority not in PRIORITIES:
            raise ValueError(f"priority {priority} is not one of {PRIORITIES}")
        return self.policy_of(category).target(priority)

    def durations(self, target: Target) -> tuple[timedelta, timedelta]:
        """(ack, resolve) of a target, with `d` meaning a working day on the working clock."""
        day = self.working_hours.working_day
        return duration(target.ack, target.clock, day), duration(target.resolve, target.clock, day)

    def problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Checks that need the working day's length: resolve >= ack, and a more urgent
        priority never allows longer than a less urgent one (on the same clock)."""
        found: list[tuple[tuple[str | int, ...], str]] = []
        entries: list[tuple[tuple[str, ...], CategoryPolicy]] = [(("default",), self.default)]
        entries += [(("categories", name), policy) for name, policy in self.categories.items()]
        for where, policy in entries:
            previous: tuple[int, Target] | None = None
            for priority in PRIORITIES:
                target = policy.target(priority)
                loc: tuple[str | int, ...] = where
                if priority in policy.priorities:
                    loc = (*where, "priorities", priority)
                ack, resolve = self.durations(target)
                if resolve < ack:
                    found.append((loc, f"priority {priority}: resolve is shorter than ack"))
                if previous is not None and previous[1].clock == target.clock:
                    p_ack, p_resolve = self.durations(previous[1])
                    if p_ack > ack or p_resolve > resolve:
                        found.append(
                            (
                                loc,
                                f"priority {previous[0]} allows longer than priority {priority}",
                            )
                        )
                previous = (priority, target)
        return found
