"""Housekeeping that plain PostgreSQL mode needs and TimescaleDB does by itself.

Plain mode: create partitions ahead of time, drop those past retention, refresh the
dashboard aggregates (the buckets the inserts since the last refresh touched: migration
0007's invalidation log), a few buckets a transaction (migration 0015) with a pause between
the steps for the worker's report path to go first. TimescaleDB mode: its policies do all
this; here only a manual refresh of the continuous aggregates is offered.
"""

from __future__ import annotations

from collections.abc import Callable
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
    ingest_keys_expired: int = 0  # ingestion requests' Idempotency-Keys past their time


def maintain(
    conn: psycopg.Connection,
    mode: Mode,
    settings: Settings,
    ahead_days: int = 7,
    pause: Callable[[], None] | None = None,
) -> MaintenanceReport:
    """Run the plain-mode housekeeping (no-op parts in TimescaleDB mode). Autocommit conn.
    `pause` runs before each step (a worker's waits for the report path to be quiet)."""
    step = pause or (lambda: None)
    report = MaintenanceReport()
    report.contacts_expired = expire_contacts(conn, settings)  # both modes
    report.ingest_keys_expired = expire_ingest_keys(conn, settings)  # both modes
    if mode == "timescale":
        return report
    for t in time_tables(settings):
        step()
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
        step()
        if incremental and incremental[0] is not None:
            report.ranges_recomputed += refresh_aggregate(
                conn,
                agg.name,
                agg.bucket,
                pause,
                until_ago=agg.end_offset if agg.closed_only else None,
            )
        else:  # a database not yet migrated to 0007: still materialised views
            refresh_view(conn, agg.name)
        report.refreshed.append(agg.name)
    return report


def expire_ingest_keys(conn: psycopg.Connection, settings: Settings) -> int:
    """Delete the Idempotency-Key records of ingestion requests older than
    CITYBRAIN_INGEST_IDEMPOTENCY_HOURS; how many (0 before migration 0017)."""
    if conn.execute("SELECT to_regclass('ingest_requests')").fetchone() == (None,):
        return 0
    cur = conn.execute(
        "DELETE FROM ingest_requests WHERE started_at < now() - make_interval(secs => %s)",
        (settings.ingest_idempotency_hours * 3600,),
    )
    return cur.rowcount


def refresh_view(conn: psycopg.Connection, name: str) -> None:
    """Before migration 0007: refresh a materialised view (concurrently once populated)."""
    row = conn.execute(
        "SELECT relispopulated FROM pg_class WHERE oid = %s::regclass", (name,)
    ).fetchone()
    concurrently = sql.SQL("CONCURRENTLY ") if row and row[0] else sql.SQL("")
    conn.execute(
        sql.SQL("REFRESH MATERIALIZED VIEW {}{}").format(concurrently, sql.Identifier(name))
    )


#: most buckets an aggregate's refresh recomputes in one transaction
PIECE_BUCKETS = 12


def refresh_aggregate(
    conn: psycopg.Connection,
    name: str,
    bucket: str,
    pause: Callable[[], None] | None = None,
    max_buckets: int = PIECE_BUCKETS,
    until_ago: str | None = None,
) -> int:
    """Plain mode: recompute the buckets of one aggregate table that inserts made stale
    since its last refresh, at most `max_buckets` buckets a transaction, calling `pause`
    before each piece after the first (housekeeping yields to the report path between
    pieces); returns the pieces recomputed. What a stopped pass left stays logged. With
    `until_ago` (an interval), buckets that have not ended that long ago stay logged too."""
    pieces = 0
    while True:
        if pieces and pause is not None:
            pause()
        with conn.transaction():
            row = conn.execute(
                "SELECT citybrain_refresh_aggregate_piece(%s, %s::interval, %s,"
                " now() - %s::interval)",
                (name, bucket, max_buckets, until_ago),
            ).fetchone()
        done = int(row[0]) if row and row[0] is not None else 0
        pieces += done > 0
        if done < 2:  # 0: nothing was stale; 1: that was the last piece
            return pieces


def refresh_continuous_aggregates(conn: psycopg.Connection) -> list[str]:
    """TimescaleDB mode: refresh every continuous aggregate over all time (autocommit)."""
    for agg in AGGREGATES:
        conn.execute(
            sql.SQL("CALL refresh_continuous_aggregate({}, NULL, NULL)").format(
                sql.Literal(agg.name)
            )
        )
    return [a.name for a in AGGREGATES]
