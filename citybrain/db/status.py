"""`citybrain db status`: schema version, storage mode, table sizes and chunk counts."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from citybrain.db.migrate import current_version, pending, recorded_mode, timescale_available
from citybrain.db.policies import time_tables
from citybrain.settings import Settings


@dataclass
class TableStat:
    name: str
    rows_estimate: int
    total_bytes: int
    chunks: int  # hypertable chunks or partitions (0 for plain tables)


@dataclass
class DbStatus:
    version: int
    pending: list[str]
    mode: str
    timescale_available: bool
    timescale_version: str | None
    tables: list[TableStat]


def _is_partitioned(conn: psycopg.Connection, name: str) -> bool:
    row = conn.execute("SELECT relkind FROM pg_class WHERE oid = %s::regclass", (name,)).fetchone()
    return row is not None and row[0] == "p"


def read_status(conn: psycopg.Connection, settings: Settings) -> DbStatus:
    """Collect the status (read-only)."""
    mode = recorded_mode(conn) or "not migrated"
    ts_row = conn.execute(
        "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
    ).fetchone()
    names = [t.name for t in time_tables(settings)] + [
        "incidents",
        "incident_reports",
        "dispatches",
        "devices",
        "boundaries",
        "personal_contacts",
    ]
    tables: list[TableStat] = []
    for name in names:
        if conn.execute("SELECT to_regclass(%s)", (name,)).fetchone() == (None,):
            continue
        if mode == "timescale" and name in {t.name for t in time_tables(settings)}:
            size_row = conn.execute(
                "SELECT hypertable_size(%s::regclass), "
                "(SELECT count(*) FROM timescaledb_information.chunks "
                " WHERE hypertable_name = %s), "
                "(SELECT coalesce(sum(c.reltuples), 0)::bigint FROM pg_class c "
                " JOIN pg_inherits i ON i.inhrelid = c.oid WHERE i.inhparent = %s::regclass)",
                (name, name, name),
            ).fetchone()
        elif _is_partitioned(conn, name):
            size_row = conn.execute(
                "SELECT coalesce(sum(pg_total_relation_size(relid)), 0)::bigint, "
                "count(*) FILTER (WHERE level > 0), "
                "coalesce(sum(greatest(c.reltuples, 0)), 0)::bigint "
                "FROM pg_partition_tree(%s::regclass) t JOIN pg_class c ON c.oid = t.relid",
                (name,),
            ).fetchone()
        else:
            size_row = conn.execute(
                "SELECT pg_total_relation_size(%s::regclass), 0, "
                "greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = %s::regclass",
                (name, name),
            ).fetchone()
        assert size_row is not None
        total, chunks, rows = size_row
        tables.append(TableStat(name, int(rows or 0), int(total or 0), int(chunks or 0)))
    return DbStatus(
        version=current_version(conn),
        pending=[m.filename for m in pending(conn)],
        mode=mode,
        timescale_available=timescale_available(conn),
        timescale_version=ts_row[0] if ts_row else None,
        tables=tables,
    )
