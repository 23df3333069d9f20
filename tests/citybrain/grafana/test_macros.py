"""Grafana's PostgreSQL macros, expanded as Grafana expands them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from citybrain.grafana.macros import Context, MacroError, expand

CTX = Context(
    start=datetime(2026, 11, 25, 2, 0, tzinfo=UTC),
    end=datetime(2026, 11, 25, 8, 0, tzinfo=UTC),
    interval="5m",
    variables={"district": ["310115", "310104"], "category": ["o'brien"], "none": []},
)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (
            "WHERE $__timeFilter(observed_at)",
            "WHERE observed_at BETWEEN '2026-11-25T02:00:00Z' AND '2026-11-25T08:00:00Z'",
        ),
        (
            "SELECT $__timeFrom(), $__timeTo()",
            "SELECT '2026-11-25T02:00:00Z', '2026-11-25T08:00:00Z'",
        ),
        (
            "SELECT $__timeGroupAlias(ts, $__interval)",
            'SELECT floor(extract(epoch from ts)/300)*300 AS "time"',
        ),
        ("SELECT $__timeGroup(ts, '1h')", "SELECT floor(extract(epoch from ts)/3600)*3600"),
        ("SELECT $__time(at)", 'SELECT at AS "time"'),
        ("district IN ($district)", "district IN ('310115','310104')"),
        ("district IN (${district})", "district IN ('310115','310104')"),
        ("category IN ([[category]])", "category IN ('o''brien')"),
        ("x IN ($none)", "x IN (NULL)"),
        ("$__interval_ms", "300000"),
    ],
)
def test_expansion(sql: str, expected: str) -> None:
    assert expand(sql, CTX) == expected


@pytest.mark.parametrize("sql", ["$__timeShift(x)", "x IN ($nope)", "$__timeGroup(ts)"])
def test_what_cannot_be_expanded_is_an_error(sql: str) -> None:
    with pytest.raises(MacroError):
        expand(sql, CTX)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT $__timeGroupAlias(ts, $__interval)", "SELECT time_bucket('300s', ts) AS \"time\""),
        ("SELECT $__timeGroup(ts, '1h')", "SELECT time_bucket('3600s', ts)"),
    ],
)
def test_a_timescaledb_datasource_groups_with_time_bucket(sql: str, expected: str) -> None:
    from dataclasses import replace

    assert expand(sql, replace(CTX, timescaledb=True)) == expected
