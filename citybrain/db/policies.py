"""Retention, compression and aggregate-refresh policies as data, rendered to SQL (pure).

TimescaleDB mode uses its own jobs (`add_*_policy`); plain PostgreSQL mode has no job
scheduler, so `citybrain db maintain` (and the worker's timer) drops old partitions and
refreshes the aggregate tables instead (only the buckets written since the last refresh,
migration 0007).
"""

from __future__ import annotations

from dataclasses import dataclass

from citybrain.settings import Settings


@dataclass(frozen=True)
class TimeTable:
    """A time-partitioned table and its policies."""

    name: str
    time_column: str
    partition_step: str  # plain mode partition size (interval literal)
    retention_days: int
    compress_after_days: int | None = None


@dataclass(frozen=True)
class Aggregate:
    """A dashboard aggregate (continuous aggregate or materialised view)."""

    name: str
    bucket: str  # the bucket width (interval literal)
    start_offset: str
    end_offset: str
    schedule: str
    #: plain mode materialises only the buckets that end by `end_offset` ago, as the
    #: TimescaleDB policy does (an aggregate of bulk telemetry, whose open bucket costs
    #: millions of rows a pass); the others stay live to the minute
    closed_only: bool = False


AGGREGATES: tuple[Aggregate, ...] = (
    Aggregate("incidents_hourly", "1 hour", "3 days", "1 hour", "5 minutes"),
    Aggregate("readings_5m", "5 minutes", "1 day", "5 minutes", "1 minute", closed_only=True),
    Aggregate("sla_daily", "1 day", "30 days", "1 day", "1 hour"),
)


def time_tables(settings: Settings) -> tuple[TimeTable, ...]:
    """The time-partitioned tables with the configured retention and compression."""
    return (
        TimeTable(
            "events",
            "observed_at",
            "1 day",
            settings.retention_events_days,
            settings.compress_events_after_days,
        ),
        TimeTable(
            "readings",
            "ts",
            "1 day",
            settings.retention_readings_days,
            settings.compress_readings_after_days,
        ),
        TimeTable("incident_history", "at", "7 days", settings.retention_history_days),
        TimeTable("dispatch_history", "at", "7 days", settings.retention_history_days),
        TimeTable("delivery_attempts", "at", "7 days", settings.retention_history_days),
    )


def timescale_policy_statements(settings: Settings) -> list[str]:
    """Idempotent statements that (re)install every TimescaleDB policy."""
    stmts: list[str] = []
    for t in time_tables(settings):
        stmts.append(f"SELECT remove_retention_policy('{t.name}', if_exists => true)")
        if t.retention_days > 0:
            stmts.append(
                f"SELECT add_retention_policy('{t.name}', "
                f"drop_after => INTERVAL '{int(t.retention_days)} days')"
            )
        if t.compress_after_days is not None:
            stmts.append(f"SELECT remove_compression_policy('{t.name}', if_exists => true)")
            if t.compress_after_days > 0:
                stmts.append(
                    f"SELECT add_compression_policy('{t.name}', "
                    f"compress_after => INTERVAL '{int(t.compress_after_days)} days')"
                )
    for a in AGGREGATES:
        stmts.append(f"SELECT remove_continuous_aggregate_policy('{a.name}', if_exists => true)")
        stmts.append(
            f"SELECT add_continuous_aggregate_policy('{a.name}', "
            f"start_offset => INTERVAL '{a.start_offset}', "
            f"end_offset => INTERVAL '{a.end_offset}', "
            f"schedule_interval => INTERVAL '{a.schedule}')"
        )
    return stmts
