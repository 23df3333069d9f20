"""SLA deadlines, table by table: calendar and working clocks (nights, weekends, holidays,
adjusted working days, daylight saving), tightening, reminders and escalations on an
injected clock, and policy files that point at the line of a mistake."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from citybrain.config_errors import ConfigError
from citybrain.dispatch.sla import (
    SLA_FILE,
    Action,
    Deadlines,
    DispatchState,
    FixedClock,
    HolidayCalendar,
    Status,
    SystemClock,
    WorkingHours,
    deadlines,
    due_actions,
    load_sla_policy,
    reminder_at,
    tighten,
    timetable,
)
from citybrain.schemas.sla_policy import (
    CATEGORIES,
    PRIORITIES,
    WEEKDAYS,
    SlaPolicy,
    WorkingHoursSpec,
)

SH = ZoneInfo("Asia/Shanghai")
CN_2026 = SLA_FILE.parent / "holidays" / "cn-2026.yaml"
HOURS = WorkingHours(WorkingHoursSpec(), HolidayCalendar.load(CN_2026))  # Mon-Fri 09:00-17:30


def sh(day: str, hhmm: str = "00:00") -> datetime:
    """'2026-11-24', '16:30' -> that wall time in Shanghai."""
    return datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=SH)


# A small policy of its own, so that these tests do not move when sla.yaml is tuned.
POLICY = SlaPolicy.model_validate(
    {
        "working_hours": {"timezone": "Asia/Shanghai", "days": ["mon", "tue", "wed", "thu", "fri"]},
        "calendar": {
            "holidays": [{"name": "National Day", "first": "2026-10-01", "last": "2026-10-07"}],
            "working_days": [{"name": "National Day", "date": "2026-10-10"}],
        },
        "default": {"ack": "1h", "resolve": "2d", "clock": "working"},
        "categories": {
            "fire_smoke": {
                "ack": "5m",
                "resolve": "2h",
                "priorities": {1: {"ack": "3m", "resolve": "1h"}},
            },
            "streetlight_out": {
                "ack": "4h",
                "resolve": "3d",
                "clock": "working",
                "priorities": {
                    1: {"ack": "30m", "resolve": "12h", "clock": "calendar"},
                    2: {"ack": "2h", "resolve": "1d"},
                },
            },
        },
    }
)

# Tuesday 2026-11-24, an ordinary week.
TUE, WED, FRI, SAT, MON = "2026-11-24", "2026-11-25", "2026-11-27", "2026-11-28", "2026-11-30"

ADD_CASES = [
    # (start, working time, deadline): all Shanghai wall time
    (sh(TUE, "10:00"), timedelta(hours=2), sh(TUE, "12:00")),
    (sh(TUE, "15:30"), timedelta(hours=2), sh(TUE, "17:30")),  # ends at closing, not next day
    (sh(TUE, "16:30"), timedelta(hours=2), sh(WED, "10:00")),  # across a night
    (sh(TUE, "07:00"), timedelta(minutes=30), sh(TUE, "09:30")),  # before opening
    (sh(TUE, "20:00"), timedelta(hours=1), sh(WED, "10:00")),  # after closing
    (sh(TUE, "20:00"), timedelta(0), sh(WED, "09:00")),
    (sh(FRI, "17:00"), timedelta(hours=1), sh(MON, "09:30")),  # across a weekend
    (sh(SAT, "10:00"), timedelta(hours=1), sh(MON, "10:00")),  # on a weekend
    (sh("2026-11-23", "09:00"), timedelta(hours=25.5), sh(WED, "17:30")),  # three whole days
    # National Day, Thursday 1 .. Wednesday 7 October: counting starts on Thursday the 8th
    (sh("2026-10-01", "10:00"), timedelta(hours=4), sh("2026-10-08", "13:00")),
    (sh("2026-09-30", "17:00"), timedelta(hours=1), sh("2026-10-08", "09:30")),
    # adjusted working days: Saturday 2026-10-10 and Sunday 2026-09-20 are worked
    (sh("2026-10-09", "17:00"), timedelta(hours=1), sh("2026-10-10", "09:30")),
    (sh("2026-09-19", "12:00"), timedelta(hours=1), sh("2026-09-20", "10:00")),
    # New Year (Thursday 1 .. Saturday 3 January), then Sunday the 4th is worked
    (sh("2025-12-31", "17:00"), timedelta(hours=1), sh("2026-01-04", "09:30")),
    # Spring Festival: Saturday 14 February is worked, 15 .. 23 are days off
    (sh("2026-02-13", "17:00"), timedelta(hours=1), sh("2026-02-14", "09:30")),
    (sh("2026-02-14", "17:00"), timedelta(hours=1), sh("2026-02-24", "09:30")),
]


@pytest.mark.parametrize(("start", "duration", "expected"), ADD_CASES)
def test_add_counts_only_working_time(
    start: datetime, duration: timedelta, expected: datetime
) -> None:
    end = HOURS.add(start, duration)
    assert end == expected
    assert end.tzinfo is UTC


@pytest.mark.parametrize(("start", "duration", "expected"), ADD_CASES)
def test_elapsed_is_the_inverse_of_add(
    start: datetime, duration: timedelta, expected: datetime
) -> None:
    assert HOURS.elapsed(start, expected) == duration


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (sh(FRI, "17:30"), sh(MON, "09:00"), timedelta(0)),  # a weekend
        (sh(MON, "12:00"), sh(MON, "10:00"), timedelta(0)),  # backwards
        (sh("2026-10-01"), sh("2026-10-08"), timedelta(0)),  # National Day
        (sh("2026-10-09", "12:00"), sh("2026-10-12", "12:00"), timedelta(hours=5.5 + 8.5 + 3)),
    ],
)
def test_elapsed(start: datetime, end: datetime, expected: timedelta) -> None:
    assert HOURS.elapsed(start, end) == expected


BERLIN = ZoneInfo("Europe/Berlin")
NIGHT_SHIFT = WorkingHours(
    WorkingHoursSpec(timezone="Europe/Berlin", days=list(WEEKDAYS), hours=["01:00-05:00"])
)


@pytest.mark.parametrize(
    ("start", "duration", "expected"),
    [
        # 2026-03-29: clocks jump from 02:00 to 03:00, the shift is three real hours
        (datetime(2026, 3, 29, 1, 0, tzinfo=BERLIN), timedelta(hours=3), (3, 29, 5, 0)),
        (datetime(2026, 3, 29, 1, 0, tzinfo=BERLIN), timedelta(hours=4), (3, 30, 2, 0)),
        # 2026-10-25: 02:00 .. 03:00 happens twice, the shift is five real hours
        (datetime(2026, 10, 25, 1, 0, tzinfo=BERLIN), timedelta(hours=5), (10, 25, 5, 0)),
    ],
)
def test_working_hours_across_daylight_saving(
    start: datetime, duration: timedelta, expected: tuple[int, int, int, int]
) -> None:
    end = NIGHT_SHIFT.add(start, duration)
    month, day, hour, minute = expected
    assert end.astimezone(BERLIN).replace(tzinfo=None) == datetime(2026, month, day, hour, minute)
    assert NIGHT_SHIFT.elapsed(start, end) == duration


def test_add_refuses_naive_instants_and_negative_durations() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        HOURS.add(datetime(2026, 11, 24, 10, 0), timedelta(hours=1))
    with pytest.raises(ValueError, match="negative"):
        HOURS.add(sh(TUE, "10:00"), timedelta(hours=-1))


# --- deadlines --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("category", "priority", "created", "ack", "resolve", "clock"),
    [
        # life safety on the calendar clock, at night and at weekends alike
        ("fire_smoke", 2, sh(SAT, "03:00"), sh(SAT, "03:05"), sh(SAT, "05:00"), "calendar"),
        ("fire_smoke", 1, sh(SAT, "03:00"), sh(SAT, "03:03"), sh(SAT, "04:00"), "calendar"),
        # working clock: 4h and 3 working days (of 8h30m) from Friday 16:00
        (
            "streetlight_out",
            3,
            sh(FRI, "16:00"),
            sh(MON, "11:30"),
            sh("2026-12-02", "16:00"),
            "working",
        ),
        ("streetlight_out", 2, sh(TUE, "10:00"), sh(TUE, "12:00"), sh(WED, "10:00"), "working"),
        # created on National Day: counts from 8 October, and Saturday the 10th is worked
        (
            "streetlight_out",
            3,
            sh("2026-10-01", "10:00"),
            sh("2026-10-08", "13:00"),
            sh("2026-10-10", "17:30"),
            "working",
        ),
        # priority 1 of a working-hours category runs on the calendar clock
        ("streetlight_out", 1, sh(SAT, "03:00"), sh(SAT, "03:30"), sh(SAT, "15:00"), "calendar"),
        # a category without a policy takes the default
        ("pigeons", 3, sh(TUE, "17:00"), sh(WED, "09:30"), sh("2026-11-26", "17:00"), "working"),
    ],
)
def test_deadlines(
    category: str,
    priority: int,
    created: datetime,
    ack: datetime,
    resolve: datetime,
    clock: str,
) -> None:
    due = deadlines(POLICY, category, priority, created)
    assert (due.ack_at, due.resolve_at, due.clock) == (ack, resolve, clock)
    assert due.ack_at.tzinfo is UTC


def test_deadlines_refuse_an_unknown_priority() -> None:
    with pytest.raises(ValueError, match="priority 5"):
        deadlines(POLICY, "fire_smoke", 5, sh(TUE, "10:00"))


@pytest.mark.parametrize(
    ("created", "old", "new", "ack", "resolve", "clock"),
    [
        # raised to 1: the calendar clock from the original creation time
        (sh(FRI, "16:00"), 3, 1, sh(FRI, "16:30"), sh(SAT, "04:00"), "calendar"),
        # raised to 2 on Monday afternoon: counted from Monday 09:00, so the new ack
        # deadline has already passed (and the dispatch is overdue at once)
        (sh(MON, "09:00"), 3, 2, sh(MON, "11:00"), sh(MON, "17:30"), "working"),
        # lowered: nothing loosens
        (sh(FRI, "16:00"), 1, 3, sh(FRI, "16:30"), sh(SAT, "04:00"), "calendar"),
        (sh(MON, "09:00"), 2, 2, sh(MON, "11:00"), sh(MON, "17:30"), "working"),
    ],
)
def test_tighten(
    created: datetime, old: int, new: int, ack: datetime, resolve: datetime, clock: str
) -> None:
    existing = deadlines(POLICY, "streetlight_out", old, created)
    tightened = tighten(existing, created, new, policy=POLICY, category="streetlight_out")
    assert (tightened.ack_at, tightened.resolve_at, tightened.clock) == (ack, resolve, clock)
    assert tightened.ack_at <= existing.ack_at and tightened.resolve_at <= existing.resolve_at


def test_tighten_keeps_each_earlier_deadline() -> None:
    created = sh(TUE, "10:00")
    existing = Deadlines(sh(TUE, "10:01"), sh(TUE, "23:00"), "calendar")  # set by hand
    tightened = tighten(existing, created, 1, policy=POLICY, category="fire_smoke")
    assert (tightened.ack_at, tightened.resolve_at) == (sh(TUE, "10:01"), sh(TUE, "11:00"))


# --- reminders and escalations ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("hours", "expected"),
    [
        # 80% of a 4-working-hour deadline from Friday 16:00: 3h12m of working time
        (HOURS, sh(MON, "10:42")),
        # in wall time: 80% of the 67h30m to Monday 11:30, Sunday night
        (None, sh("2026-11-29", "22:00")),
    ],
)
def test_reminder_at(hours: WorkingHours | None, expected: datetime) -> None:
    assert reminder_at(sh(MON, "11:30"), sh(FRI, "16:00"), 0.8, hours) == expected


def test_timetable_of_a_calendar_dispatch() -> None:
    created = sh(TUE, "10:00")
    due = deadlines(POLICY, "fire_smoke", 2, created)  # ack 5m, resolve 2h
    minutes = {
        action: (at - created) / timedelta(minutes=1)
        for action, at in timetable(created, due).items()
    }
    assert minutes == {
        Action.ACK_REMINDER: 4,
        Action.ACK_SUPERVISOR: 5,
        Action.ACK_OPERATIONS_CENTER: 7.5,
        Action.RESOLVE_REMINDER: 96,
        Action.RESOLVE_SUPERVISOR: 120,
        Action.RESOLVE_OPERATIONS_CENTER: 180,
    }


A = Action


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        # (minutes after creation, status then) -> what is sent at each check
        (
            [(1, "open"), (4, "open"), (4.5, "open"), (5, "open"), (6, "open"), (7.5, "open")],
            [[], [A.ACK_REMINDER], [], [A.ACK_SUPERVISOR], [], [A.ACK_OPERATIONS_CENTER]],
        ),
        # acknowledged in time: the ack ladder stops, the resolve ladder goes on
        (
            [(4, "open"), (4.5, "acknowledged"), (10, "acknowledged"), (96, "acknowledged")],
            [[A.ACK_REMINDER], [], [], [A.RESOLVE_REMINDER]],
        ),
        (
            [(120, "acknowledged"), (179, "acknowledged"), (180, "acknowledged")],
            [[A.RESOLVE_SUPERVISOR], [], [A.RESOLVE_OPERATIONS_CENTER]],
        ),
        # resolved: nothing more, whatever is overdue
        ([(4, "open"), (30, "resolved"), (500, "resolved")], [[A.ACK_REMINDER], [], []]),
        # first look after an outage: the escalation, not the stale reminder before it
        (
            [(8, "open"), (9, "open"), (100, "open")],
            [[A.ACK_OPERATIONS_CENTER], [], [A.RESOLVE_REMINDER]],
        ),
        ([(200, "open")], [[A.ACK_OPERATIONS_CENTER, A.RESOLVE_OPERATIONS_CENTER]]),
    ],
)
def test_due_actions_fire_once_and_stop(
    steps: list[tuple[float, Status]], expected: list[list[Action]]
) -> None:
    created = sh(TUE, "10:00")
    clock = FixedClock(created)
    due = deadlines(POLICY, "fire_smoke", 2, created)  # ack 5m, resolve 2h
    sent: frozenset[Action] = frozenset()
    got = []
    for minutes, status in steps:
        clock.set(created + timedelta(minutes=minutes))
        state = DispatchState(created, due, status, sent)
        actions = due_actions(state, clock.now())
        sent |= set(actions)
        got.append(actions)
    assert got == expected


def test_due_actions_in_working_time() -> None:
    created = sh(FRI, "16:00")
    due = deadlines(POLICY, "streetlight_out", 3, created)  # ack Monday 11:30
    state = DispatchState(created, due)
    # in wall time the reminder falls on Sunday night; in working time on Monday at 10:42
    clock = FixedClock(sh("2026-11-29", "23:00"))
    assert due_actions(state, clock.now()) == [Action.ACK_REMINDER]
    assert due_actions(state, clock.now(), hours=HOURS) == []
    clock.set(sh(MON, "10:41"))
    assert due_actions(state, clock.now(), hours=HOURS) == []
    clock.advance(timedelta(minutes=1))
    assert due_actions(state, clock.now(), hours=HOURS) == [Action.ACK_REMINDER]


def test_clocks() -> None:
    clock = FixedClock(sh(TUE, "10:00"))
    assert clock.now() == sh(TUE, "10:00") and clock.now().tzinfo is UTC
    assert clock.advance(timedelta(minutes=5)) == sh(TUE, "10:05") == clock.now()
    with pytest.raises(ValueError, match="no time zone"):
        FixedClock(datetime(2026, 11, 24, 10, 0))
    assert SystemClock().now().tzinfo is UTC


# --- the policy files -------------------------------------------------------------------------


def test_the_shipped_policy_covers_every_category_and_priority() -> None:
    policy = load_sla_policy()
    created = sh(TUE, "10:00")
    for category in (*CATEGORIES, "something_new"):
        for priority in PRIORITIES:
            due = deadlines(policy, category, priority, created)
            assert created < due.ack_at <= due.resolve_at
    fire = deadlines(policy, "fire_smoke", 2, created)
    assert (fire.ack_at - created, fire.resolve_at - created) == (
        timedelta(minutes=5),
        timedelta(hours=2),
    )


def test_the_2026_holidays_of_mainland_china() -> None:
    calendar = HolidayCalendar.load(CN_2026)
    assert len(calendar.holidays) == 3 + 9 + 3 + 5 + 3 + 3 + 7
    assert sorted(d.isoformat() for d in calendar.working_days) == [
        "2026-01-04",
        "2026-02-14",
        "2026-02-28",
        "2026-05-09",
        "2026-09-20",
        "2026-10-10",
    ]
    assert all(d.weekday() >= 5 for d in calendar.working_days)  # all on weekends


POLICY_HEAD = "working_hours: {timezone: Asia/Shanghai}\n"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (POLICY_HEAD + "default: {ack: 1x, resolve: 2d}\n", r"sla\.yaml:2: default\.ack: .*1x"),
        (
            POLICY_HEAD
            + "default: {ack: 1h, resolve: 2d}\ncategories:\n  fires: {ack: 5m, resolve: 1h}\n",
            r"sla\.yaml:4: categories\.fires\.\[key\]",
        ),
        (
            POLICY_HEAD + "default:\n  ack: 1h\n  resolve: 2d\n  priorities:\n    5: {ack: 5m}\n",
            r"sla\.yaml:6: default\.priorities\.5\.\[key\]",
        ),
        (
            POLICY_HEAD
            + "default:\n  ack: 1h\n  resolve: 2d\n  priorities:\n    2: {resolve: 30m}\n",
            r"sla\.yaml:6: default\.priorities\.2: priority 2: resolve is shorter than ack",
        ),
        # 1d on the working clock is 8h30m, shorter than the 10h ack
        (
            POLICY_HEAD + "default: {ack: 10h, resolve: 1d, clock: working}\n",
            r"sla\.yaml:2: default: priority 1: resolve is shorter than ack",
        ),
        (
            POLICY_HEAD
            + "default:\n  ack: 1h\n  resolve: 2d\n  priorities:\n    4: {ack: 5m, resolve: 1h}\n",
            r"sla\.yaml:6: default\.priorities\.4: priority 3 allows longer than priority 4",
        ),
        (
            "working_hours:\n  hours: ['17:30-09:00']\ndefault: {ack: 1h, resolve: 2d}\n",
            r"sla\.yaml:2: working_hours\.hours: .*ends before it starts",
        ),
        (
            "default: {ack: 1h, resolve: 2d}\nholiday_files:\n  - nowhere.yaml\n",
            r"sla\.yaml:3: holiday_files\.0: no such file",
        ),
        ("default: {ack: 1h, resolve: [2d\n", r"sla\.yaml:2: not valid YAML"),
    ],
)
def test_policy_errors_name_file_and_line(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "sla.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=error):
        load_sla_policy(path)


@pytest.mark.parametrize(
    ("holidays", "error"),
    [
        (
            "holidays:\n  - {name: x, first: 2026-10-07, last: 2026-10-01}\n",
            r"h\.yaml:2: holidays\.0: .*last is before first",
        ),
        ("working_days:\n  - {name: x}\n", r"h\.yaml:2: working_days\.0: .*give either date"),
    ],
)
def test_holiday_file_errors_name_file_and_line(tmp_path: Path, holidays: str, error: str) -> None:
    (tmp_path / "h.yaml").write_text(holidays, encoding="utf-8")
    (tmp_path / "sla.yaml").write_text(
        "holiday_files: [h.yaml]\ndefault: {ack: 1h, resolve: 2d}\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError, match=error):
        load_sla_policy(tmp_path / "sla.yaml")


def test_a_day_both_holiday_and_working_day_across_files(tmp_path: Path) -> None:
    (tmp_path / "sla.yaml").write_text(
        f"holiday_files: [{CN_2026}]\n"
        "calendar:\n  holidays: [{name: closed, date: 2026-10-10}]\n"
        "default: {ack: 1h, resolve: 2d}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"sla\.yaml:1: holiday_files\.0: .*2026-10-10"):
        load_sla_policy(tmp_path / "sla.yaml")
