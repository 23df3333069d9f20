"""The shipped public-holiday files agree, day by day, with the maintained
`chinesecalendar` package for every year it knows; a missing year is said at start."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import chinese_calendar
import pytest

from citybrain.dispatch.sla import SLA_FILE, HolidayCalendar, WorkingHours, load_sla_policy

HOLIDAYS = sorted((SLA_FILE.parent / "holidays").glob("cn-*.yaml"))
KNOWN = {d.year for d in chinese_calendar.constants.holidays}


@pytest.mark.parametrize("path", HOLIDAYS, ids=[p.stem for p in HOLIDAYS])
def test_every_day_of_a_year_file_agrees_with_chinesecalendar(path: Path) -> None:
    year = int(path.stem.split("-")[1])
    if year not in KNOWN:
        pytest.skip(f"chinesecalendar does not know {year} yet")
    policy = load_sla_policy(SLA_FILE)
    hours = WorkingHours(policy.working_hours, HolidayCalendar.load(path))
    day = dt.date(year, 1, 1)
    wrong = []
    while day.year == year:
        if hours.is_working_day(day) != chinese_calendar.is_workday(day):
            wrong.append(day.isoformat())
        day += dt.timedelta(days=1)
    assert not wrong, f"{path.name} disagrees with chinesecalendar on {wrong}"


def test_the_policy_loads_every_shipped_year() -> None:
    calendar = WorkingHours.of(load_sla_policy(SLA_FILE)).calendar
    assert {int(p.stem.split("-")[1]) for p in HOLIDAYS} <= calendar.years


@pytest.mark.parametrize(
    ("today", "missing"),
    [(dt.date(2026, 3, 1), [2027]), (dt.date(2025, 6, 1), []), (dt.date(2028, 1, 1), [2028, 2029])],
)
def test_the_years_without_a_calendar_are_named(today: dt.date, missing: list[int]) -> None:
    calendar = WorkingHours.of(load_sla_policy(SLA_FILE)).calendar
    assert calendar.missing_years(today) == missing
