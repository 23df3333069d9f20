"""Housekeeping that plain PostgreSQL mode needs and TimescaleDB does by itself.

Plain mode: create partitions ahead of time, drop those past retention, refresh the
dashboard aggregates (the buckets the inserts since the last refresh touched: migration
0007's invalidation log). TimescaleDB mode: its policies do all this; here only a manual refresh of
the continuous aggregates is offered.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from citybrain.db.modes import Mode
from citybrain.db.policies import AGGREGATES, time_tables
from citybrain.db.privacy import expire_contacts
from citybrain.settings import Settings


@dataclass
class MaintenanceReport:
    """What one maintenance run did."""

    partitions_created: int = 0
    partitions_dropped: int = 0
    refreshed: list[str] = field(default_factory=list)
    ranges_recomputed: int = 0
    contacts_expired: int = 0  # personal_contacts rows past their retention


def maintain(
    conn: psycopg.Connection, mode: Mode, settings: Settings, ahead_days: int = 7
) -> MaintenanceReport:
    """Run the plain-mode housekeeping (no-op parts in TimescaleDB mode). Autocommit conn."""
    report = MaintenanceReport()
    report.contacts_expired = expire_contacts(conn, settings)  # both modes
    if mode == "timescale":
        return report
    for t in time_tables(settings):
        row = conn.execute(
            "SELECT citybrain_ensure_partitions(%s::regclass, %s::interval, "
            "now() - interval '2 days', now() + make_interval(days => %s))",
            (t.name, t.partition_step, ahead_days),
        ).fetchone()
        report.partitions_created += int(row[0]) if row else 0
        if t.retention_days > 0:
            row = conn.execute(
                "SELECT citybrain_drop_partitions_before(%s::regclass, "
                "now() - make_interval(days => %s))",
                (t.name, t.retention_days),
            ).fetchone()
            report.partitions_dropped += int(row[0]) if row else 0
    incremental = conn.execute("SELECT to_regclass('aggregate_invalidations')").fetchone()
    for agg in AGGREGATES:
        if incremental and incremental[0] is not None:
            report.ranges_recomputed += refresh_aggregate(conn, agg.name, agg.bucket)
        else:  # a database not yet migrated to 0007: still materialised views
            refresh_view(conn, agg.name)
        report.refreshed.append(agg.name)
    return report


def refresh_view(conn: psycopg.Connection, name: str) -> None:
    """Before migration 0007: refresh a materialised view (concurrently once populated)."""
    row = conn.execute(
        "SELECT relispopulated FROM pg_class WHERE oid = %s::regclass", (name,)
    ).fetchone()
    concurrently = sql.SQL("CONCURRENTLY ") if row and row[0] else sql.SQL("")
    conn.execute(
        sql.SQL("REFRESH MATERIALIZED VIEW {}{}").format(concurrently, sql.Identifier(name))
    )


def refresh_aggregate(conn: psycopg.Connection, name: str, bucket: str) -> int:
    """Plain mode: recompute the buckets of one aggregate table that inserts made stale
    since its last refresh (one transaction); returns the merged ranges recomputed."""
    with conn.transaction():
        row = conn.execute(
            "SELECT citybrain_refresh_aggregate(%s, %s::interval)", (name, bucket)
        ).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def refresh_continuous_aggregates(conn: psycopg.Connection) -> list[str]:
    """TimescaleDB mode: refresh every continuous aggregate over all time (autocommit)."""
    for agg in AGGREGATES:
        conn.execute(
            sql.SQL("CALL refresh_continuous_aggregate({}, NULL, NULL)").format(
                sql.Literal(agg.name)
            )
        )
    return [a.name for a in AGGREGATES]
