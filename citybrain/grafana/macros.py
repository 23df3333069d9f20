"""Grafana's PostgreSQL macros and template variables, expanded the way Grafana expands
them (pure), so that every panel's SQL can be run on the real database in tests.

Supported (what the dashboards use): `$__time(col)`, `$__timeFilter(col)`,
`$__timeFrom()`, `$__timeTo()`, `$__timeGroup(col, interval)`,
`$__timeGroupAlias(col, interval)` (as `time_bucket` when the datasource has the
`timescaledb` flag, as Grafana does), `$__unixEpochFilter(col)`, `$__interval`, and template
variables as `$name`, `${name}` or `[[name]]` (multi-value variables become a quoted,
comma-separated list, as Grafana's SQL data sources do). An unknown macro is an error, not
left in place: the test would otherwise pass SQL Grafana cannot run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_MACRO = re.compile(r"\$__(\w+)\(([^()]*)\)")


class MacroError(ValueError):
    """SQL with a macro or variable this expander (and so the test) does not know."""


def interval_seconds(text: str) -> float:
    """'5m', '1h', '30s', "'5m'" -> seconds."""
    m = re.fullmatch(r"'?\s*(\d+(?:\.\d+)?)(ms|s|m|h|d|w)\s*'?", text.strip())
    if not m:
        raise MacroError(f"not an interval: {text!r}")
    return float(m[1]) * _UNITS[m[2]]


def _iso(t: datetime) -> str:
    return "'" + t.strftime("%Y-%m-%dT%H:%M:%SZ") + "'"


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class Context:
    start: datetime  # UTC
    end: datetime
    interval: str = "1m"
    variables: Mapping[str, Sequence[str]] | None = None
    #: the datasource's `timescaledb` flag: $__timeGroup becomes time_bucket (TimescaleDB
    #: mode), else an epoch expression (plain PostgreSQL has no time_bucket)
    timescaledb: bool = False


def expand(sql: str, ctx: Context) -> str:
    """The SQL Grafana would send for this time range, interval and variable values."""
    text = sql.replace("$__interval_ms", str(int(interval_seconds(ctx.interval) * 1000)))
    text = text.replace("$__interval", ctx.interval)

    def macro(m: re.Match[str]) -> str:
        name, args = m[1], [a.strip() for a in m[2].split(",")] if m[2].strip() else []
        if name == "timeFilter":
            return f"{args[0]} BETWEEN {_iso(ctx.start)} AND {_iso(ctx.end)}"
        if name == "timeFrom":
            return _iso(ctx.start)
        if name == "timeTo":
            return _iso(ctx.end)
        if name == "time":
            return f'{args[0]} AS "time"'
        if name == "unixEpochFilter":
            return (
                f"{args[0]} >= {int(ctx.start.timestamp())} AND "
                f"{args[0]} <= {int(ctx.end.timestamp())}"
            )
        if name in ("timeGroup", "timeGroupAlias"):
            if len(args) < 2:
                raise MacroError(f"$__{name} needs a column and an interval")
            step = int(interval_seconds(args[1]))
            if ctx.timescaledb:
                grouped = f"time_bucket('{step}s', {args[0]})"
            else:
                grouped = f"floor(extract(epoch from {args[0]})/{step})*{step}"
            return grouped + (' AS "time"' if name == "timeGroupAlias" else "")
        raise MacroError(f"unknown macro $__{name}")

    text = _MACRO.sub(macro, text)
    if "$__" in text:
        raise MacroError(f"unexpanded macro in: {text[text.index('$__') :][:60]}")
    variables = ctx.variables or {}

    def variable(m: re.Match[str]) -> str:
        name = m[1] or m[2] or m[3]
        if name not in variables:
            raise MacroError(f"unknown template variable ${name}")
        values = list(variables[name])
        if not values:
            return "NULL"  # Grafana sends an empty list as no match
        return ",".join(_quote(v) for v in values)

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)", variable, text)
