"""SLA deadlines of a dispatch (pure): the injectable clock, working hours with a holiday
calendar, the acknowledge and resolve deadlines from `config/sla.yaml`, tightening on a raised
priority, and which reminders and escalations are due.

Every instant going in must be timezone-aware; every instant coming out is in UTC. Working
hours are local (the policy's time zone) and computed through zoneinfo, so they are right
across daylight-saving changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from citybrain.config_errors import ConfigError, explain, line_of, load_yaml
from citybrain.schemas.fields import require_aware
from citybrain.schemas.sla_policy import (
    DEFER_CHECKS,
    ClockKind,
    Escalation,
    HolidayDays,
    SlaPolicy,
    WorkingHoursSpec,
)

SLA_FILE = Path(__file__).parent / "config" / "sla.yaml"
MAX_SEARCH_DAYS = 3660  # give up looking for working time after ten years


def utc(at: datetime) -> datetime:
    """The same instant in UTC; a naive datetime is refused (its zone would be a guess)."""
    return require_aware(at).astimezone(UTC)


# --- clocks -----------------------------------------------------------------------------------


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock for tests and replays: it stands still until set or advanced."""

    def __init__(self, at: datetime) -> None:
        self._at = utc(at)

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        self._at = utc(at)

    def advance(self, by: timedelta) -> datetime:
        self._at += by
        return self._at


# --- holidays and working hours ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HolidayCalendar:
    """Public holidays, and adjusted working days (调休: weekend days worked around a
    holiday, like Saturday 2026-10-10 after National Day)."""

    holidays: frozenset[date] = frozenset()
    working_days: frozenset[date] = frozenset()

    @classmethod
    def from_days(cls, days: HolidayDays) -> HolidayCalendar:
        return cls(frozenset(days.holiday_dates()), frozenset(days.working_dates()))

    @classmethod
    def load(cls, path: Path) -> HolidayCalendar:
        return cls.from_days(load_holiday_days(path))

    @property
    def years(self) -> frozenset[int]:
        """The years the calendar has holidays for."""
        return frozenset(d.year for d in self.holidays)

    def missing_years(self, today: date) -> list[int]:
        """This year and the next, when the calendar has no holidays for them (their
        deadlines would count public holidays as working days)."""
        return [y for y in (today.year, today.year + 1) if y not in self.years]


class WorkingHours:
    """Working time: the periods of the working days, minus holidays, plus adjusted days."""

    def __init__(self, spec: WorkingHoursSpec, calendar: HolidayCalendar | None = None) -> None:
        self.zone = ZoneInfo(spec.timezone)
        self.periods = spec.periods()
        self.weekdays = spec.weekdays()
        self.calendar = calendar or HolidayCalendar()

    @classmethod
    def of(cls, policy: SlaPolicy) -> WorkingHours:
        return cls(policy.working_hours, HolidayCalendar.from_days(policy.calendar))

    def is_working_day(self, day: date) -> bool:
        if day in self.calendar.working_days:
            return True
        return day.weekday() in self.weekdays and day not in self.calendar.holidays

    def periods_on(self, day: date) -> list[tuple[datetime, datetime]]:
        """The working periods of one local day, as UTC instants (none on a day off)."""
        if not self.is_working_day(day):
            return []
        return [
            (
                datetime.combine(day, start, tzinfo=self.zone).astimezone(UTC),
                datetime.combine(day, end, tzinfo=self.zone).astimezone(UTC),
            )
            for start, end in self.periods
        ]

    def _days_from(self, at: datetime) -> Iterator[date]:
        first = at.astimezone(self.zone).date()
        return (first + timedelta(days=i) for i in range(MAX_SEARCH_DAYS))

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The instant when `duration` of working time has passed since `start`. Time outside
        working hours does not count: a start at night counts from the next morning."""
        if duration < timedelta(0):
            raise ValueError("a negative duration")
        at, left = utc(start), duration
        for day in self._days_from(at):
            for begin, end in self.periods_on(day):
                if end <= at:
                    continue
                begin = max(begin, at)
                if left <= end - begin:
                    return begin + left
                left -= end - begin
        raise ValueError(f"no working time within {MAX_SEARCH_DAYS} days of {start}")

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Working time between two instants (zero if `end` is not after `start`)."""
        start, end = utc(start), utc(end)
        total = timedelta(0)
        last = end.astimezone(self.zone).date()
        day = start.astimezone(self.zone).date()
        while day <= last:
            for begin, finish in self.periods_on(day):
                overlap = min(finish, end) - max(begin, start)
                if overlap > timedelta(0):
                    total += overlap
            day += timedelta(days=1)
        return total


# --- deadlines --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Deadlines:
    """What is stored on a dispatch: by when it must be acknowledged and resolved, and which
    clock they were counted on (for placing reminders in working time)."""

    ack_at: datetime
    resolve_at: datetime
    clock: ClockKind = "calendar"


def deadlines(
    policy: SlaPolicy,
    category: str,
    priority: int,
    created_at: datetime,
    hours: WorkingHours | None = None,
) -> Deadlines:
    """Deadlines of a dispatch created at `created_at` (priority 1 = most urgent .. 4)."""
    target = policy.target(category, priority)
    ack, resolve = policy.durations(target)
    created = utc(created_at)
    if target.clock == "working":
        hours = hours or WorkingHours.of(policy)
        return Deadlines(hours.add(created, ack), hours.add(created, resolve), "working")
    return Deadlines(created + ack, created + resolve, "calendar")


def tighten(
    existing: Deadlines,
    created_at: datetime,
    new_priority: int,
    *,
    policy: SlaPolicy,
    category: str,
    hours: WorkingHours | None = None,
) -> Deadlines:
    """Deadlines after a priority change: those of the new priority counted from the original
    creation time, but never later than the existing ones (a lowered priority loosens
    nothing)."""
    new = deadlines(policy, category, new_priority, created_at, hours)
    won = new.ack_at < existing.ack_at or new.resolve_at < existing.resolve_at
    return Deadlines(
        ack_at=min(existing.ack_at, new.ack_at),
        resolve_at=min(existing.resolve_at, new.resolve_at),
        clock=new.clock if won else existing.clock,
    )


# --- reminders and escalations ----------------------------------------------------------------


class Action(StrEnum):
    """A reminder or escalation; each is sent at most once per dispatch."""

    ACK_REMINDER = "ack_reminder"
    ACK_SUPERVISOR = "ack_supervisor"
    ACK_OPERATIONS_CENTER = "ack_operations_center"
    RESOLVE_REMINDER = "resolve_reminder"
    RESOLVE_SUPERVISOR = "resolve_supervisor"
    RESOLVE_OPERATIONS_CENTER = "resolve_operations_center"


ACK_LADDER = (Action.ACK_REMINDER, Action.ACK_SUPERVISOR, Action.ACK_OPERATIONS_CENTER)
RESOLVE_LADDER = (
    Action.RESOLVE_REMINDER,
    Action.RESOLVE_SUPERVISOR,
    Action.RESOLVE_OPERATIONS_CENTER,
)

Status = Literal["open", "acknowledged", "resolved"]


@dataclass(frozen=True, slots=True)
class DispatchState:
    """What the escalation timers need to know about one dispatch."""

    created_at: datetime
    deadlines: Deadlines
    status: Status = "open"
    sent: frozenset[Action] = frozenset()


def at_fraction(
    created_at: datetime,
    deadline: datetime,
    fraction: float,
    hours: WorkingHours | None = None,
) -> datetime:
    """The instant `fraction` of the way from creation to the deadline (past it when the
    fraction is above 1), in working time when `hours` are given, else in wall time."""
    created, due = utc(created_at), utc(deadline)
    if hours is not None:
        span = hours.elapsed(created, due)
        if span > timedelta(0):
            return hours.add(created, span * fraction)
    return created + (due - created) * fraction


def reminder_at(
    deadline: datetime,
    created_at: datetime,
    fraction: float = 0.8,
    hours: WorkingHours | None = None,
) -> datetime:
    """When to remind the department of a deadline: after `fraction` of the time it allows."""
    return at_fraction(created_at, deadline, fraction, hours)


def timetable(
    created_at: datetime,
    due: Deadlines,
    escalation: Escalation | None = None,
    hours: WorkingHours | None = None,
) -> dict[Action, datetime]:
    """When each reminder and escalation falls due. Working time is used only for deadlines
    counted on the working clock (and only when `hours` are given)."""
    esc = escalation or Escalation()
    working = hours if due.clock == "working" else None
    times: dict[Action, datetime] = {}
    for ladder, deadline in ((ACK_LADDER, due.ack_at), (RESOLVE_LADDER, due.resolve_at)):
        remind, supervisor, operations_center = ladder
        times[remind] = at_fraction(created_at, deadline, esc.reminder_at, working)
        times[supervisor] = utc(deadline)
        times[operations_center] = at_fraction(
            created_at, deadline, esc.operations_center_at, working
        )
    return times


def due_actions(
    state: DispatchState,
    now: datetime,
    escalation: Escalation | None = None,
    hours: WorkingHours | None = None,
) -> list[Action]:
    """Which reminders and escalations to send now. Acknowledging stops the ack ladder;
    resolving stops both. Of each ladder only the furthest step that is due is returned, and
    only if not sent yet: after an outage the escalation goes out, not a stale reminder."""
    if state.status == "resolved":
        return []
    times = timetable(state.created_at, state.deadlines, escalation, hours)
    ladders = [RESOLVE_LADDER] if state.status == "acknowledged" else [ACK_LADDER, RESOLVE_LADDER]
    actions = []
    for ladder in ladders:
        reached = [action for action in ladder if times[action] <= utc(now)]
        if reached and reached[-1] not in state.sent:
            actions.append(reached[-1])
    return actions


# --- loading ----------------------------------------------------------------------------------


def load_holiday_days(path: Path) -> HolidayDays:
    raw, text = load_yaml(path)
    try:
        return HolidayDays.model_validate(raw)
    except ValidationError as exc:
        raise explain(path, text, exc) from exc


def load_sla_policy(path: Path = SLA_FILE) -> SlaPolicy:
    """The SLA policy with its holiday files merged into `calendar`; errors name file:line."""
    raw, text = load_yaml(path)
    try:
        policy = SlaPolicy.model_validate(raw, context={DEFER_CHECKS: True})
    except ValidationError as exc:
        raise explain(path, text, exc) from exc
    problems = policy.problems()
    if problems:
        raise ConfigError(
            "\n".join(
                f"{path}:{line_of(text, loc) or 1}: {'.'.join(map(str, loc))}: {message}"
                for loc, message in problems
            )
        )
    calendar = policy.calendar
    for i, name in enumerate(policy.holiday_files):
        where = f"{path}:{line_of(text, ('holiday_files', i)) or 1}: holiday_files.{i}"
        file = path.parent / name
        if not file.is_file():
            raise ConfigError(f"{where}: no such file {file}")
        try:
            calendar = calendar.merged(load_holiday_days(file))
        except ValidationError as exc:
            raise ConfigError(f"{where}: {exc.errors()[0]['msg']}") from exc
    return policy.model_copy(update={"calendar": calendar})


@lru_cache(maxsize=1)
def default_sla_policy() -> SlaPolicy:
    return load_sla_policy()
